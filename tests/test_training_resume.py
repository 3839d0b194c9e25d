"""Ctrl-C stops training cleanly with a checkpoint, and resuming reproduces the uninterrupted run exactly."""
import os
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

from livingportrait_backend.cli import main
from livingportrait_backend.training.trainer import latest_checkpoint

ARGS = ["train", "--config", "tiny", "--data", "synthetic:6:8", "--batch-size", "2", "--threads", "1",
        "--log-every", "1", "--checkpoint-every", "1000", "--image-every", "3"]
STEPS = 12


def _tensors(run):
    return load_file(os.path.join(latest_checkpoint(run), "model.safetensors"))


def test_interrupt_then_resume_matches_the_uninterrupted_run(tmp_path):
    straight = str(tmp_path / "straight")
    assert main(ARGS + ["--out", straight, "--steps", str(STEPS)]) == 0

    stopped = str(tmp_path / "stopped")
    proc = subprocess.Popen([sys.executable, "-m", "livingportrait_backend.cli", *ARGS, "--out", stopped,
                             "--steps", str(STEPS)], stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(stopped, "metrics.jsonl")
    deadline = time.monotonic() + 120
    # Interrupt once the first steps are logged (Ctrl-C arrives as SIGINT).
    while not (os.path.exists(metrics) and '"step": 2' in open(metrics).read()):
        assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "checkpoint saved" in err
    stop_step = int(os.path.basename(latest_checkpoint(stopped)).split("_")[1])
    assert 2 <= stop_step < STEPS

    assert main(ARGS + ["--out", stopped, "--steps", str(STEPS)]) == 0
    a, b = _tensors(straight), _tensors(stopped)
    assert a.keys() == b.keys()
    different = [k for k in a if not (a[k] == b[k]).all()]
    assert not different, different[:5]
    assert os.path.basename(latest_checkpoint(stopped)) == f"step_{STEPS:08d}"
