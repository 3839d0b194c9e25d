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


def test_a_movie_larger_than_the_buffer_limit_goes_in_parts_within_the_window(moving_frames, tmp_path):
    """Footage of any size: a backend taking 32 KiB per buffer gets the movie in parts, acknowledges each,
    and the client never has more than FOOTAGE_WINDOW parts unacknowledged."""
    from backend_process import BackendProcess
    from livingportrait_wire.events import ProgressEvent
    from livingportrait_wire.protocol import FOOTAGE_WINDOW

    frames, expected = moving_frames
    path = tmp_path / "clip.avi"
    size = len(movie_of(frames, path))
    limit = 32 * 1024
    assert size > 4 * limit
    backend = BackendProcess("--max-buffer-bytes", str(limit))
    try:
        with BackendClient(backend.address) as client:
            stream = client.submit(DetectJob(video_path=str(path), frames=[2, 4]))
            uploads, ahead = [], []
            while not stream.finished:
                acks = [(e.done, e.total) for e in stream.poll(200)
                        if isinstance(e, ProgressEvent) and e.stage == "upload"]
                uploads += acks
                if acks:  # what the client has sent beyond the parts the backend acknowledged so far
                    ahead.append(stream.parts_sent - max(done for done, _ in acks))
            if stream.error:
                raise stream.error
    finally:
        backend.stop()
    parts = -(-size // limit)
    assert uploads == [(i, parts) for i in range(1, parts + 1)]
    assert max(ahead) <= FOOTAGE_WINDOW
    assert list(stream.result.frames) == [2, 4]
    assert np.abs(stream.result.landmarks - expected[[1, 3]]).mean() < 3.0


def test_footage_parts_out_of_order_or_too_many_are_refused(backend, moving_frames, tmp_path):
    """A client that lies about its parts gets a typed error, never a half-written movie tracked."""
    import zmq

    from livingportrait_wire.codec import bytes_buffer, decode, encode
    from livingportrait_wire.protocol import PART, SERVER_TYPES, SUBMIT

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(backend.address)
    try:
        header = {"kind": "detect", "settings": {}, "video_parts": 3, "video_bytes": 30}
        sock.send_multipart(encode(SUBMIT, "liar", header, [bytes_buffer("video", b"x" * 10, "video")]))
        sock.send_multipart(encode(PART, "liar", {"index": 2}, [bytes_buffer("video", b"x" * 10, "video")]))
        errors = []
        while not errors:
            assert sock.poll(20000), "no answer"
            msg = decode(sock.recv_multipart(), expect=SERVER_TYPES)
            if msg.type == "error":
                errors.append(msg.header)
    finally:
        sock.close(0)
    assert errors[0]["code"] == "bad_message" and "part 2 came where part 1 was due" in errors[0]["message"]
