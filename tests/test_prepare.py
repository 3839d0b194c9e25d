"""``livingportrait prepare``: real video files in, aligned crops + landmarks per video out, resumable."""
import os

import cv2
import numpy as np

from livingportrait_backend.cli import main
from livingportrait_backend.data.prepared import PreparedVideos
from livingportrait_backend.data.synthetic import SyntheticTalkingHeads


def _write_video(path, heads, video, frames=10, size=160):
    """A talking head moving inside a larger, wider frame: the crop has real work to do."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size + 60, size))
    assert writer.isOpened()
    truth = []
    for t in range(frames):
        img, pts = heads.frame(video, t * 3)
        canvas = np.full((size, size + 60, 3), 40, np.uint8)
        dx = 10 + 4 * t  # the head drifts right
        canvas[:, dx:dx + size] = img
        writer.write(canvas[:, :, ::-1].copy())
        truth.append(pts + np.array([dx, 0], np.float32))
    writer.release()
    return np.stack(truth)


def test_prepare_crops_tracks_and_resumes(tmp_path, capsys):
    heads = SyntheticTalkingHeads(3, 160, seed=4)
    videos = tmp_path / "videos"
    (videos / "speaker_b").mkdir(parents=True)
    truth_a = _write_video(videos / "a.avi", heads, 0)
    _write_video(videos / "speaker_b" / "b.avi", heads, 1)
    (videos / "notes.txt").write_text("not a video")
    data = tmp_path / "data"

    assert main(["prepare", str(videos), "--out", str(data), "--size", "64", "--frames", "6"]) == 0
    assert sorted(os.listdir(data)) == ["a.npz", "speaker_b__b.npz"]
    with np.load(data / "a.npz") as z:
        frames, landmarks, numbers, crop = z["frames"], z["landmarks"], z["source_frames"], z["crop"]
    assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
    assert landmarks.shape == (6, 68, 2)
    assert list(numbers) == [1, 3, 5, 6, 8, 10]
    # The stored landmarks are the detector's points mapped into the crop: close to the truth mapped the same way.
    truth = truth_a[numbers - 1]
    mapped = truth @ crop[:, :, :2].transpose(0, 2, 1) + crop[:, None, :, 2]
    assert np.abs(mapped - landmarks).mean() < 2.0  # pixels of the 64 px crop
    # The face is centred and fills the crop whatever its place in the source frame.
    assert np.abs(landmarks.mean(axis=1) - [32, 38]).max() < 8

    mtime = os.path.getmtime(data / "a.npz")
    assert main(["prepare", str(videos), "--out", str(data), "--size", "64", "--frames", "6"]) == 0
    assert "0 prepared, 2 already done" in capsys.readouterr().out
    assert os.path.getmtime(data / "a.npz") == mtime

    dataset = PreparedVideos(data)
    assert len(dataset) == 2 and dataset.resolution == 64
    image, points = dataset.frame(1, 2)
    assert image.shape == (64, 64, 3) and points.shape == (68, 2)


def test_prepare_without_videos_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "d")]) == 2
    assert "no videos" in capsys.readouterr().err
