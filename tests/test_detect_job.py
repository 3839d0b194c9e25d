"""The server's detect job: footage in over ZeroMQ, a tracked landmark sequence back."""
import cv2
import numpy as np
import pytest
from skimage import data

from livingportrait_backend.detectors import get_detector
from livingportrait_wire.client import BackendClient, DetectJob
from livingportrait_wire.errors import BadInput


@pytest.fixture(scope="module")
def moving_frames():
    """Five frames of the astronaut sliding right 3 px per frame, as PNG bytes, plus the truth."""
    img = data.astronaut()
    truth = get_detector("mediapipe").detect(img)[0].points
    frames, expected = [], []
    for i in range(5):
        m = np.float32([[1, 0, 3 * i], [0, 1, 0]])
        moved = cv2.warpAffine(img, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
        frames.append(cv2.imencode(".png", moved[:, :, ::-1])[1].tobytes())
        expected.append(truth + [3 * i, 0])
    return frames, np.stack(expected)


def test_detect_job_returns_the_tracked_performance(backend, moving_frames):
    frames, expected = moving_frames
    with BackendClient(backend.address) as client:
        stream = client.submit(DetectJob(images=frames, frames=[101, 102, 103, 104, 105],
                                         settings={"smoothing": "off"}))
        stream.wait()
    seq = stream.result
    assert list(seq.frames) == [101, 102, 103, 104, 105] and seq.image_size == (512, 512)
    assert np.abs(seq.landmarks - expected).mean() < 2.0
    assert "raw_landmarks" in seq.extras


def movie_of(frames, path):
    """The PNG frames as an MJPG movie file; returns its bytes."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24, (512, 512))
    for png in frames:
        writer.write(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
    writer.release()
    return path.read_bytes()


def test_detect_job_on_a_movie_file(backend, moving_frames, tmp_path):
    frames, expected = moving_frames
    movie = movie_of(frames, tmp_path / "clip.avi")
    with BackendClient(backend.address) as client:
        stream = client.submit(DetectJob(video=movie))
        stream.wait()
    assert list(stream.result.frames) == [1, 2, 3, 4, 5]
    assert np.abs(stream.result.landmarks - expected).mean() < 3.0


def test_footage_without_a_face_is_a_clear_error(backend):
    blank = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    with BackendClient(backend.address) as client:
        stream = client.submit(DetectJob(images=[blank, blank], frames=[1, 2]))
        with pytest.raises(BadInput, match="not found in any of the 2 frames"):
            stream.wait()


def test_detect_job_on_a_movie_tracks_only_the_frames_asked_for(backend, moving_frames, tmp_path):
    frames, expected = moving_frames
    movie = movie_of(frames, tmp_path / "clip.avi")
    with BackendClient(backend.address) as client:
        stream = client.submit(DetectJob(video=movie, frames=[2, 4]))
        stream.wait()
    assert list(stream.result.frames) == [2, 4]
    assert np.abs(stream.result.landmarks - expected[[1, 3]]).mean() < 3.0
