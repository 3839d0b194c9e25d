"""mediapipe's C++ start-up lines stay out of users' terminals; our own warnings do not."""
import subprocess
import sys

import cv2
import numpy as np
from skimage import data

CHATTER = ("inference_feedback_manager", "XNNPACK", "absl::InitializeLog", "landmark_projection_calculator")


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_track_prints_our_warnings_and_none_of_mediapipes_chatter(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    for number, image in ((1, face), (2, np.full_like(face, 128)), (3, face)):
        cv2.imwrite(str(frames / f"shot_{number:04d}.png"), image)
    result = run("-m", "livingportrait_backend", "track", frames, "--out", tmp_path / "perf.npz")
    assert result.returncode == 0, result.stderr
    assert "no face found on 1 frame(s): 2" in result.stdout + result.stderr  # ours, still there
    for word in CHATTER:
        assert word not in result.stderr, result.stderr


def test_render_prints_none_of_mediapipes_chatter(tmp_path):
    # Rendering detects the portrait's face and segments the person: two mediapipe graphs start.
    portrait = tmp_path / "astronaut.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    from livingportrait_backend.landmarks.performance import builtin_performance
    from livingportrait_wire.landmarks import save_sequence

    save_sequence(builtin_performance(seconds=0.25), tmp_path / "perf.npz")
    result = run("-m", "livingportrait_backend", "render", "--portrait", portrait, "--driver", tmp_path / "perf.npz",
                 "--frames", "1", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for word in CHATTER:
        assert word not in result.stderr, result.stderr


def test_lines_written_while_filtering_pass_through_and_only_the_chatter_goes(tmp_path):
    script = """
import logging, os, sys, threading
from livingportrait_backend.native_logs import without_native_chatter
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
with without_native_chatter():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    print("ours: before the C++ line", file=sys.stderr, flush=True)
    os.write(2, b"W0000 00:00:1796107717.924913   11916 inference_feedback_manager.cc:114] Feedback manager\\n")
    worker = threading.Thread(target=logging.warning, args=("ours: from another thread",))
    worker.start()
    worker.join()
    os.write(2, b"E0000 00:00:1796107717.9 11916 graph.cc:1] a native error stays\\n")
print("ours: after", file=sys.stderr, flush=True)
"""
    result = run("-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["ours: before the C++ line", "WARNING ours: from another thread",
                                          "E0000 00:00:1796107717.9 11916 graph.cc:1] a native error stays",
                                          "ours: after"]
