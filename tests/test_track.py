"""Tracking a performance from real footage: driver videos and frame folders made from the astronaut
with known motion, through the library and through `livingportrait track`."""
import subprocess
import sys

import cv2
import numpy as np
import pytest
from landmark_videos import known_positions, make_driver_video, still_photo

from livingportrait_backend.detectors import get_detector
from livingportrait_backend.landmarks.smoothing import SmoothingOptions
from livingportrait_backend.landmarks.tracking import TrackOptions, load_driver, track_frames, track_video
from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import load_sequence
from livingportrait_wire.layout import interocular_distance


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    return make_driver_video(tmp_path_factory.mktemp("video") / "actor.avi", count=32, kind="moving")


@pytest.fixture(scope="module")
def reference():
    """The still photo's landmarks: carried through each frame's affine, the known positions."""
    return get_detector("mediapipe").detect(still_photo())[0].points


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "livingportrait_backend", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_a_video_is_tracked_near_the_known_positions(moving, reference):
    seq = track_video(moving.path)
    assert seq.frames.tolist() == list(range(1, 33))  # a video's frames count from 1
    assert seq.image_size == moving.size
    known = known_positions(reference, moving.affines)
    error = np.linalg.norm(seq.landmarks - known, axis=2) / interocular_distance(reference)
    assert np.median(error[:, 17:]) < 0.05
    assert np.median(error[:, :17]) < 0.1
    assert seq.extras["missing_frames"].size == 0
    assert seq.extras["raw_landmarks"].shape == seq.landmarks.shape
    assert np.all(seq.confidence > 0.5)


def write_frames(folder, names, images):
    folder.mkdir()
    for name, image in zip(names, images):
        cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_a_frame_folder_keeps_its_frame_numbers_and_fills_a_frame_without_a_face(tmp_path):
    photo = still_photo()
    shifted = [np.roll(photo, 3 * k, axis=1) for k in range(5)]
    shifted[2] = np.full_like(photo, 128)  # a frame where the actor is out of shot
    write_frames(tmp_path / "shot", [f"shot.{n:04d}.png" for n in range(101, 106)], shifted)
    seq = track_video(tmp_path / "shot", TrackOptions(smoothing=SmoothingOptions(0.0)))
    assert seq.frames.tolist() == [101, 102, 103, 104, 105]
    assert seq.extras["missing_frames"].tolist() == [103]
    assert np.all(seq.confidence[2] == 0) and np.all(seq.confidence[[0, 1, 3, 4]] > 0)
    np.testing.assert_allclose(seq.landmarks[2], (seq.landmarks[1] + seq.landmarks[3]) / 2, atol=1e-3)


def test_a_folder_without_numbers_is_numbered_in_order(tmp_path):
    photo = still_photo()
    write_frames(tmp_path / "clip", ["b.png", "a.png", "c.jpg"], [photo, np.roll(photo, 5, axis=1), photo])
    seq = track_video(tmp_path / "clip", TrackOptions(smoothing=SmoothingOptions(0.0)))
    assert seq.frames.tolist() == [1, 2, 3]
    # a.png (shifted right by 5 px) comes first
    assert seq.landmarks[0, 30, 0] - seq.landmarks[1, 30, 0] == pytest.approx(5.0, abs=1.0)


def test_face_index_picks_the_second_face_and_keeps_it(tmp_path):
    photo = still_photo(384)
    small = cv2.resize(photo, (288, 288), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(4):
        canvas = np.full((400, 720, 3), 90, np.uint8)
        canvas[8:392, 0:384] = photo
        canvas[60 + 4 * k:348 + 4 * k, 420:708] = small  # the smaller face drifts down
        frames.append((k + 1, canvas))
    seq = track_frames(frames, "mediapipe", face_index=1, smoothing=SmoothingOptions(0.0))
    assert np.all(seq.landmarks[:, :, 0] > 400)  # the right-hand (smaller) face on every frame
    assert np.diff(seq.landmarks[:, 30, 1]).mean() == pytest.approx(4.0, abs=1.0)


def test_track_frames_reports_progress_per_frame(moving):
    done = []
    frames = ((n, cv2.cvtColor(img, cv2.COLOR_BGR2RGB)) for n, img in read_video(moving.path))
    seq = track_frames(frames, get_detector("mediapipe"), on_progress=done.append)
    assert done == list(range(1, 33)) and len(seq) == 32


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    number = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        number += 1
        yield number, image
    capture.release()


def test_no_face_anywhere_is_a_clear_error(tmp_path):
    write_frames(tmp_path / "sky", ["0001.png", "0002.png"], [np.full((200, 200, 3), 40, np.uint8)] * 2)
    with pytest.raises(BadInput, match=r"sky: a face was not found in any of the 2 frames"):
        track_video(tmp_path / "sky")


def test_load_driver_reads_files_and_tracks_videos(tmp_path, moving):
    tracked = load_driver(moving.path, TrackOptions(smoothing=SmoothingOptions(0.0)))
    assert len(tracked) == 32
    from livingportrait_wire.landmarks import save_sequence
    save_sequence(tracked, tmp_path / "perf.npz")
    np.testing.assert_array_equal(load_driver(tmp_path / "perf.npz").landmarks, tracked.landmarks)


def test_cli_track_writes_a_performance_with_the_raw_track_inside(tmp_path, moving):
    out = tmp_path / "perf.npz"
    result = run_cli("track", moving.path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "track:" in result.stderr and "100%" in result.stderr  # plain progress lines off a TTY
    assert f"wrote {out}: 32 frames (1-32), 384x384, detector mediapipe, smoothing 1" in result.stdout
    seq = load_sequence(out)
    assert seq.extras["raw_landmarks"].shape == (32, 68, 2)
    assert not np.array_equal(seq.extras["raw_landmarks"], seq.landmarks)


def test_cli_track_with_smoothing_off_keeps_the_raw(tmp_path, moving):
    out = tmp_path / "raw.npz"
    result = run_cli("track", moving.path, "--out", out, "--smoothing", "off")
    assert result.returncode == 0, result.stderr
    seq = load_sequence(out)
    np.testing.assert_array_equal(seq.extras["raw_landmarks"], seq.landmarks)


def test_cli_track_reports_frames_without_a_face(tmp_path):
    photo = still_photo()
    images = [photo, np.full_like(photo, 60), np.full_like(photo, 60), photo]
    write_frames(tmp_path / "shot", [f"f{n}.png" for n in (10, 11, 12, 13)], images)
    result = run_cli("track", tmp_path / "shot", "--out", tmp_path / "perf.npz")
    assert result.returncode == 0, result.stderr
    assert "no face found on 2 frame(s): 11-12; filled by interpolation with confidence 0" in result.stderr


@pytest.mark.parametrize("make_source, message", [
    (lambda d: d / "missing.mp4", "missing.mp4: no such video file or folder of frames"),
    (lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4", "notes.mp4: not a readable video"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "empty: no image files"),
])
def test_cli_track_bad_sources(tmp_path, make_source, message):
    result = run_cli("track", make_source(tmp_path), "--out", tmp_path / "perf.npz")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "perf.npz").exists()


def test_cli_track_output_folder_that_does_not_exist(tmp_path, moving):
    result = run_cli("track", moving.path, "--out", tmp_path / "no" / "such" / "perf.npz")
    assert result.returncode == 2 and "cannot write there" in result.stderr
    assert not (tmp_path / "no").exists()


def test_cli_track_bad_options(tmp_path, moving):
    result = run_cli("track", moving.path, "--out", tmp_path / "p.npz", "--smoothing", "lots")
    assert result.returncode == 2 and "--smoothing: 'lots'" in result.stderr
    result = run_cli("track", moving.path, "--out", tmp_path / "p.npz", "--face-index", "3")
    assert result.returncode == 2 and "face 3 (0 = the largest) was not found in any of the 32 frames" in result.stderr
