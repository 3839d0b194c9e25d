"""`render --driver VIDEO` tracks the video on the fly with the same options as `track`: the frames it
writes are the very frames `track` + `render --driver PERF.npz` write."""
import subprocess
import sys

import cv2
from landmark_videos import make_driver_video
from skimage import data


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "livingportrait_backend", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_render_with_a_video_driver_equals_track_then_render(tmp_path):
    video = make_driver_video(tmp_path / "actor.avi", count=12, kind="moving")
    portrait = tmp_path / "astronaut.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    options = ["--smoothing", "2", "--frames", "3-5"]

    tracked = run_cli("track", video.path, "--out", tmp_path / "perf.npz", "--smoothing", "2")
    assert tracked.returncode == 0, tracked.stderr
    from_file = run_cli("render", "--portrait", portrait, "--driver", tmp_path / "perf.npz",
                        "--out", tmp_path / "a", *options)
    assert from_file.returncode == 0, from_file.stderr
    from_video = run_cli("render", "--portrait", portrait, "--driver", video.path, "--out", tmp_path / "b",
                         *options)
    assert from_video.returncode == 0, from_video.stderr
    assert "track driver:" in from_video.stderr  # it tracked, with progress

    names = sorted(p.name for p in (tmp_path / "a").glob("*.exr"))
    assert names == ["portrait.0003.exr", "portrait.0004.exr", "portrait.0005.exr"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_render_with_an_unreadable_video_driver_says_so(tmp_path):
    portrait = tmp_path / "astronaut.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (tmp_path / "clip.mov").write_bytes(b"\x00" * 100)
    result = run_cli("render", "--portrait", portrait, "--driver", tmp_path / "clip.mov", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert "clip.mov: not a readable video" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
