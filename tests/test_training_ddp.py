"""Two processes under torchrun (gloo on CPU) train as replicas that stay identical."""
import json
import os
import subprocess
import sys

from livingportrait_backend.training.trainer import latest_checkpoint


def test_two_gloo_processes_stay_identical(tmp_path):
    run = str(tmp_path / "ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "livingportrait_backend.cli", "train", "--config", "tiny", "--data", "synthetic:8:8",
           "--batch-size", "4", "--steps", "4", "--checkpoint-every", "2", "--out", run, "--threads", "1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(os.path.join(latest_checkpoint(run), "trainer.json")) as f:
        saved = json.load(f)["trainer"]
    assert saved["world_size"] == 2 and saved["step"] == 4
    sums = saved["replica_checksums"]  # every parameter and buffer, gathered from both ranks at the save
    assert len(sums) == 2 and sums[0] == sums[1]
