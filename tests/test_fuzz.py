"""Property-based fuzzing of the wire: the decoder refuses every bad message with a ProtocolError (never
another exception), and a live backend answers malformed, truncated, oversized and lying messages with
typed errors, as documented, while it keeps serving an honest client."""
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livingportrait_wire.client import BackendClient
from livingportrait_wire.codec import ALLOWED_DTYPES, array_buffer, decode, encode
from livingportrait_wire.errors import ProtocolError
from livingportrait_wire.protocol import CLIENT_TYPES, SERVER_TYPES, SUBMIT, Limits

from backend_process import BackendProcess
from hostile_messages import MAKERS, HostileClient, hostile_message
from small_render_job import render_job

SMALL = Limits(max_header_bytes=8192, max_buffers=8, max_buffer_bytes=300_000, max_image_pixels=40_000,
               max_frames_per_job=200)
SMALL_FLAGS = ["--max-header-bytes", "8192", "--max-buffers", "8", "--max-buffer-bytes", "300000",
               "--max-image-pixels", "40000", "--max-frames-per-job", "200"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
header_keys = st.sampled_from(["v", "type", "id", "buffers", "kind", "credits", "window", "name", "shape",
                               "nbytes", "dtype", "encoding", "frame_range", "settings"])
headers = st.dictionaries(header_keys, json_values | st.sampled_from([1, "ping", "submit", "credit", "x"]),
                          max_size=8)


def decode_or_refuse(frames, limits=SMALL, expect=CLIENT_TYPES):
    """Decode; a ProtocolError is a correct refusal. Anything else escapes and fails the test."""
    try:
        return decode(frames, limits, expect=expect)
    except ProtocolError as err:
        assert err.code in ("bad_message", "bad_version", "too_large") and err.message
        return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_decoder_refuses_arbitrary_bytes_with_protocol_errors_only(frames):
    decode_or_refuse(frames)
    decode_or_refuse(frames, expect=SERVER_TYPES)


@settings(max_examples=300, deadline=None)
@given(headers, st.lists(st.binary(max_size=64), max_size=3))
def test_decoder_refuses_arbitrary_json_headers_with_protocol_errors_only(header, buffers):
    decode_or_refuse([json.dumps(header).encode()] + buffers)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_decoder_refuses_hostile_messages_with_protocol_errors_only(rng):
    decode_or_refuse(hostile_message(rng, SMALL))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(ALLOWED_DTYPES)), st.lists(st.integers(0, 5), max_size=4), st.data())
def test_arrays_round_trip_and_any_truncation_is_refused(dtype, shape, data):
    array = (np.arange(int(np.prod(shape))) % 100).astype(dtype).reshape(shape)
    frames = encode(SUBMIT, "j", {"kind": "render"}, [array_buffer("a", array)])
    np.testing.assert_array_equal(decode(frames).one("a"), array)
    if len(frames[1]):
        cut = data.draw(st.integers(0, len(frames[1]) - 1))
        with pytest.raises(ProtocolError):
            decode([frames[0], frames[1][:cut]])


def test_every_kind_of_hostile_message_is_generated():
    """The fuzzers below reach every maker (a maker that never runs tests nothing)."""
    rng = random.Random(1)
    names = {m.__name__ for m in MAKERS}
    seen = set()
    for _ in range(2000):
        maker = rng.choice(MAKERS)
        maker(rng, SMALL)
        seen.add(maker.__name__)
    assert seen == names


@pytest.fixture(scope="module")
def small_limits_backend():
    proc = BackendProcess(*SMALL_FLAGS)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def hostile(small_limits_backend):
    client = HostileClient(small_limits_backend.address)
    yield client
    client.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False))
def test_live_backend_answers_each_hostile_message_as_documented(hostile, rng):
    hostile.send_and_check(hostile_message(rng, hostile.limits))


def test_each_kind_of_hostile_message_is_answered_and_an_honest_client_is_still_served(
        small_limits_backend, hostile, tmp_path):
    rng = random.Random(7)
    outcomes = {}
    for maker in MAKERS:
        for _ in range(3):
            outcome = hostile.send_and_check(maker(rng, hostile.limits))
            outcomes.setdefault(maker.__name__, set()).add(outcome)
    # Spot checks that the limits answer with their own codes.
    assert outcomes["oversized_header"] == {"error:too_large"}
    assert outcomes["too_many_buffers"] == {"error:too_large"}
    assert outcomes["oversized_buffer"] == {"error:too_large"}
    assert outcomes["too_many_frames"] == {"job:limit_exceeded"}
    assert outcomes["too_many_pixels"] == {"job:too_large"}
    # OpenCV refuses some declared sizes outright (too_large) and cannot parse others (bad_input).
    assert outcomes["image_bomb"] <= {"job:too_large", "job:bad_input"}
    assert outcomes["traversal_name"] == {"job:bad_input"}
    assert outcomes["garbage_portrait"] == {"job:bad_input"}
    assert outcomes["bad_version"] <= {"error:bad_version", "error:bad_message"}
    with BackendClient(small_limits_backend.address) as client:
        stream = client.submit(render_job(tmp_path, frames=3)).wait()
    assert stream.frames_written == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.0001.exr", "shot.0002.exr", "shot.0003.exr"]
