"""`livingportrait demo` (what `make demo` runs): a real portrait through a real backend process."""
import os
import subprocess
import sys

import cv2


def test_demo_writes_frames_contact_sheet_and_movie(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "livingportrait_backend", "demo", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    frames = sorted(os.listdir(out / "frames"))
    assert frames == [f"astronaut.{f:04d}.exr" for f in range(1, 49)]
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 200
    movie = cv2.VideoCapture(str(out / "astronaut.mp4"))
    assert int(movie.get(cv2.CAP_PROP_FRAME_COUNT)) == 48
    for line in ("EXR frames:", "contact sheet:", "movie:", "backend started at tcp://127.0.0.1:"):
        assert line in result.stdout
