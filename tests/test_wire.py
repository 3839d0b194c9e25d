"""The wire: message encoding, strict decoding, and the landmark sequence file."""
import json

import numpy as np
import pytest

from livingportrait_wire.codec import array_buffer, bytes_buffer, decode, encode
from livingportrait_wire.errors import BadInput, ProtocolError
from livingportrait_wire.landmarks import LandmarkSequence, load_sequence, save_sequence
from livingportrait_wire.naming import frame_filename, parse_frame_range
from livingportrait_wire.protocol import CREDIT, FRAME, HELLO, SERVER_TYPES, SUBMIT, ErrorCode, Limits


def header_of(frames):
    return json.loads(frames[0])


def test_array_and_bytes_buffers_round_trip():
    arr = np.arange(68 * 2 * 3, dtype=np.float32).reshape(3, 68, 2)
    frames = encode(SUBMIT, "job1", {"kind": "render"},
                    [array_buffer("landmarks", arr), bytes_buffer("portrait", b"\x89PNG...", "image")])
    msg = decode(frames)
    assert msg.type == SUBMIT and msg.id == "job1"
    np.testing.assert_array_equal(msg.one("landmarks"), arr)
    assert msg.one("portrait") == b"\x89PNG..."


def test_received_buffers_are_read_only_views_that_outlive_the_socket():
    import gc

    import zmq

    arr = np.arange(200_000, dtype=np.float32).reshape(1000, 100, 2)  # past pyzmq's copy threshold
    blob = bytes(range(256)) * 4096
    ctx = zmq.Context()
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    pull.connect(f"tcp://127.0.0.1:{port}")
    push.send_multipart(encode(SUBMIT, "job1", {"kind": "render"},
                               [array_buffer("landmarks", arr), bytes_buffer("video", blob, "video")]))
    frames = pull.recv_multipart(copy=False)
    assert isinstance(frames[1], zmq.Frame)
    msg = decode(frames)
    landmarks, video = msg.one("landmarks"), msg.one("video")
    del frames, msg
    push.close(linger=0)
    pull.close(linger=0)
    ctx.term()
    gc.collect()
    np.testing.assert_array_equal(landmarks, arr)  # the views keep the received frames alive
    assert video == blob and bytes(video[:4]) == blob[:4]
    assert not landmarks.flags.writeable and video.readonly
    assert landmarks.copy().flags.writeable  # a consumer that must write takes its own copy


def test_invalid_json_is_a_bad_message():
    with pytest.raises(ProtocolError) as err:
        decode([b"{not json"])
    assert err.value.code == ErrorCode.BAD_MESSAGE and "JSON" in err.value.message


def test_other_protocol_version_is_refused_with_its_own_code():
    frames = encode(HELLO, "h")
    h = header_of(frames)
    h["v"] = 2
    with pytest.raises(ProtocolError) as err:
        decode([json.dumps(h).encode()])
    assert err.value.code == ErrorCode.BAD_VERSION and "version 2" in err.value.message


def test_buffer_that_lies_about_its_size_is_refused():
    frames = encode(SUBMIT, "j", {"kind": "render"}, [array_buffer("frames", np.arange(4, dtype=np.int32))])
    with pytest.raises(ProtocolError, match="declares 16 bytes but carries 12"):
        decode([frames[0], frames[1][:12]])


def test_shape_that_disagrees_with_bytes_is_refused():
    h = {"v": 1, "type": SUBMIT, "id": "j", "kind": "render",
         "buffers": [{"name": "frames", "kind": "array", "dtype": "int32", "shape": [5], "nbytes": 16}]}
    with pytest.raises(ProtocolError, match="needs 20 bytes"):
        decode([json.dumps(h).encode(), b"\0" * 16])


def test_missing_buffers_and_unknown_types_are_refused():
    h = {"v": 1, "type": SUBMIT, "id": "j", "kind": "render", "buffers": [{"name": "x", "kind": "bytes",
                                                                         "encoding": "image", "nbytes": 3}]}
    with pytest.raises(ProtocolError, match="describes 1 buffers but 0"):
        decode([json.dumps(h).encode()])
    with pytest.raises(ProtocolError, match="unknown message type"):
        decode([json.dumps({"v": 1, "type": "explode", "id": "x"}).encode()])


def test_fields_are_type_checked_and_booleans_are_not_numbers():
    with pytest.raises(ProtocolError, match="'credits' has the wrong type"):
        decode(encode(CREDIT, "j", {"credits": True}))
    with pytest.raises(ProtocolError, match="lacks field 'kind'"):
        decode(encode(SUBMIT, "j"))


def test_limits_bound_header_buffers_and_sizes():
    small = Limits(max_header_bytes=100, max_buffers=2, max_buffer_bytes=10)
    with pytest.raises(ProtocolError) as err:
        decode(encode(SUBMIT, "j", {"kind": "render", "pad": "x" * 200}), small)
    assert err.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(ProtocolError, match="limit is 2"):
        decode(encode(SUBMIT, "j", {"kind": "render"}, [bytes_buffer("a", b"1", "image")] * 3), small)
    with pytest.raises(ProtocolError, match="limit is 10"):
        decode(encode(SUBMIT, "j", {"kind": "render"}, [bytes_buffer("a", b"1" * 11, "image")]), small)


def test_a_client_only_accepts_server_messages():
    with pytest.raises(ProtocolError):
        decode(encode(SUBMIT, "j", {"kind": "render"}), expect=SERVER_TYPES)
    assert decode(encode(FRAME, "j", {"frame": 3, "filename": "a.0003.exr"}), expect=SERVER_TYPES).type == FRAME


def sequence(t=3):
    return LandmarkSequence(np.random.default_rng(0).random((t, 68, 2)) * 100, np.arange(10, 10 + t), (640, 480))


def test_landmark_file_round_trips(tmp_path):
    seq = sequence()
    seq.confidence = np.ones((3, 68), np.float32)
    path = tmp_path / "perf.npz"
    save_sequence(seq, path)
    back = load_sequence(path)
    np.testing.assert_array_equal(back.landmarks, seq.landmarks)
    np.testing.assert_array_equal(back.frames, [10, 11, 12])
    assert back.image_size == (640, 480) and back.confidence.shape == (3, 68)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(landmarks=np.zeros((3, 5, 2), np.float32)), "shape \\[T, 68, 2\\]"),
    (lambda a: a["landmarks"].__setitem__((1, 4, 0), np.nan), "NaN"),
    (lambda a: a.update(frames=np.array([1, 3, 3], np.int32)), "strictly increasing"),
    (lambda a: a.pop("frames"), "missing array"),
])
def test_bad_landmark_files_are_refused_by_name(tmp_path, change, message):
    arrays = sequence().to_arrays()
    arrays["landmarks"] = arrays["landmarks"].copy()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(BadInput, match=message) as err:
        load_sequence(path)
    assert str(path) in err.value.message


def test_a_file_that_is_not_npz_is_refused(tmp_path):
    path = tmp_path / "perf.npz"
    path.write_text("hello")
    with pytest.raises(BadInput, match="not a readable .npz"):
        load_sequence(path)


def test_frame_names_and_ranges():
    assert frame_filename("shot", 7) == "shot.0007.exr"
    assert frame_filename("shot", 12345) == "shot.12345.exr"
    assert parse_frame_range("5-9") == (5, 9) and parse_frame_range("12") == (12, 12)
    for bad in ("9-5", "a-b", ""):
        with pytest.raises(BadInput):
            parse_frame_range(bad)
    for bad in ("../evil", "a/b", "x.y", ""):
        with pytest.raises(BadInput):
            frame_filename(bad, 1)
