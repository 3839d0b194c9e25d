"""Hostile wire messages for the fuzz tests and the soak: malformed, truncated, oversized and lying.

``hostile_message(rng, limits)`` makes the multipart frames of one bad message (one of ``MAKERS``,
chosen by ``rng``); ``expected_answer(frames, limits)`` says what the backend must do with it, from the
decoder's own verdict and the documented rules:
- a message the decoder refuses: an ERROR with the decoder's code, carrying the message's id when the
  header can be read (``"-"`` otherwise), before anything the backend says later;
- HELLO / PING (junk extra fields are ignored): WELCOME / PONG;
- CREDIT for a job that is not running: dropped without an answer; CANCEL for one: ERROR unknown_job;
- a SUBMIT that decodes: a job whose stream ends in an ERROR with a typed code (or DONE, if a mutation
  happened to leave it valid).
"""
from __future__ import annotations

import functools
import json
import random
import struct
import uuid
import zlib

import cv2
import numpy as np

from livingportrait_wire.codec import array_buffer, bytes_buffer, decode, encode, readable_id
from livingportrait_wire.errors import ProtocolError
from livingportrait_wire.protocol import (CANCEL, CREDIT, HELLO, PING, PONG, SUBMIT, WELCOME, ErrorCode,
                                          Limits)

from small_render_job import performance, portrait_landmarks, portrait_png

TYPED_CODES = frozenset(v for k, v in vars(ErrorCode).items() if k.isupper())


@functools.lru_cache(maxsize=1)
def _portrait() -> bytes:
    return portrait_png()


def _id() -> str:
    return uuid.uuid4().hex


def valid_submit(job_id: str | None = None, frames: int = 4, **fields) -> list[bytes]:
    """A well-formed render SUBMIT (4 frames of the small job) to mutate."""
    driver = performance(frames)
    header = {"kind": "render", "engine": "warp", "name": "fuzz", "settings": {}, "window": 2,
              "image_size": list(driver.image_size)}
    header.update(fields)
    buffers = [bytes_buffer("portrait", _portrait(), "image"), array_buffer("landmarks", driver.landmarks),
               array_buffer("frames", driver.frames), array_buffer("portrait_landmarks", portrait_landmarks())]
    return encode(SUBMIT, job_id or _id(), header, buffers)


def _header(frames: list[bytes]) -> dict:
    return json.loads(frames[0])


def _with_header(frames: list[bytes], header: dict) -> list[bytes]:
    return [json.dumps(header).encode()] + frames[1:]


# ---- makers: (rng, limits) -> frames ------------------------------------------------------------
def random_frames(rng, limits):
    return [rng.randbytes(rng.randint(0, 300)) for _ in range(rng.randint(1, 4))]


def not_json(rng, limits):
    return [rng.choice([b"{", b"{\"v\": 1,", b"nul", b"\xff\xfe\x00{}", b"", b"{'v': 1}"]) + rng.randbytes(rng.randint(0, 20))]


def json_not_object(rng, limits):
    return [json.dumps(rng.choice([[1, 2], 3, "hello", None, 1.5, [{"v": 1}]])).encode()]


def deep_nesting(rng, limits):
    depth = rng.choice([rng.randint(1, 40), rng.randint(40, max(41, limits.max_header_bytes // 2 - 30))])
    return [b'{"v": 1, "type": "ping", "id": "x", "a": ' + b"[" * depth + b"]" * depth + b"}"]


def bad_version(rng, limits):
    h = {"type": PING, "id": _id(), "v": rng.choice([0, 2, -1, "1", 1.0, True, None, 2 ** 40, [1]])}
    return [json.dumps(h).encode()]


def bad_type(rng, limits):
    return encode(rng.choice(["explode", "frame", "welcome", "done", "", "PING"]), _id())


def bad_type_value(rng, limits):
    return [json.dumps({"v": 1, "type": rng.choice([3, None, ["ping"], {"t": 1}]), "id": _id()}).encode()]


def bad_id(rng, limits):
    return [json.dumps({"v": 1, "type": PING, "id": rng.choice(["", "x" * 129, 5, None, ["a"], True])}).encode()]


def bad_credit(rng, limits):
    return encode(CREDIT, _id(), {"credits": rng.choice(["1", True, 0, -5, 10 ** 7, 1.5, None, float("nan")])})


def bad_submit_fields(rng, limits):
    frames = valid_submit()
    h = _header(frames)
    field, value = rng.choice([("kind", "explode"), ("kind", 3), ("settings", "x"), ("window", "4"),
                               ("frame_range", "1-4"), ("image_size", 512), ("engine", 7), ("name", 3),
                               ("window", True), ("buffers", "none"), ("buffers", {"a": 1})])
    h[field] = value
    if rng.random() < 0.3:
        h.pop("kind")
    return _with_header(frames, h)


def truncated_buffer(rng, limits):
    frames = valid_submit()
    i = rng.randrange(1, len(frames))
    frames[i] = frames[i][:rng.randrange(0, len(frames[i]))]
    return frames


def missing_buffer(rng, limits):
    frames = valid_submit()
    del frames[rng.randrange(1, len(frames))]
    return frames


def extra_buffer(rng, limits):
    return valid_submit() + [rng.randbytes(rng.randint(0, 50))]


def lying_nbytes(rng, limits):
    frames = valid_submit()
    h = _header(frames)
    d = rng.choice(h["buffers"])
    d["nbytes"] = rng.choice([d["nbytes"] + rng.randint(1, 1000), max(0, d["nbytes"] - rng.randint(1, 100)),
                              -1, "12", None, 2 ** 62])
    return _with_header(frames, h)


def lying_shape(rng, limits):
    frames = valid_submit()
    h = _header(frames)
    d = next(b for b in h["buffers"] if b["kind"] == "array")
    d["shape"] = rng.choice([[5], [-1, 68, 2], [2 ** 31, 2 ** 31], "68", [1.5], [1] * 9, [0], [True]])
    return _with_header(frames, h)


def bad_dtype_or_kind(rng, limits):
    frames = valid_submit()
    h = _header(frames)
    d = rng.choice(h["buffers"])
    key, value = rng.choice([("dtype", "object"), ("dtype", "complex128"), ("dtype", "<f4"), ("kind", "pickle"),
                             ("kind", None), ("encoding", "npy"), ("name", ""), ("name", 5)])
    d[key] = value
    if key == "encoding":
        d["kind"] = "bytes"
    return _with_header(frames, h)


def oversized_header(rng, limits):
    return encode(PING, _id(), {"pad": "x" * (limits.max_header_bytes + rng.randint(1, 1000))})


def too_many_buffers(rng, limits):
    n = limits.max_buffers + rng.randint(1, 3)
    return encode(SUBMIT, _id(), {"kind": "render"}, [bytes_buffer("portrait", b"x", "image")] * n)


def oversized_buffer(rng, limits):
    blob = bytes(limits.max_buffer_bytes + rng.randint(1, 100))
    return encode(SUBMIT, _id(), {"kind": "render"}, [bytes_buffer("portrait", blob, "image")])


def too_many_frames(rng, limits):
    return valid_submit(frames=limits.max_frames_per_job + 1)


def too_many_pixels(rng, limits):
    side = int(limits.max_image_pixels ** 0.5) + rng.randint(1, 64)
    ok, png = cv2.imencode(".png", np.zeros((side, side, 3), np.uint8))
    frames = valid_submit()
    h = _header(frames)
    h["buffers"][0]["nbytes"] = len(png)
    return [json.dumps(h).encode(), png.tobytes()] + frames[2:]


def image_bomb(rng, limits):
    """A tiny file whose header declares billions of pixels (PNG or PGM)."""
    side = rng.choice([60_000, 100_000, 2 ** 30])
    if rng.random() < 0.5:
        blob = f"P5\n{side} {side}\n255\n".encode() + bytes(64)
    else:
        ihdr = b"IHDR" + struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        blob = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
                + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    frames = valid_submit()
    h = _header(frames)
    h["buffers"][0]["nbytes"] = len(blob)
    return [json.dumps(h).encode(), blob] + frames[2:]


def garbage_portrait(rng, limits):
    frames = valid_submit()
    h = _header(frames)
    blob = rng.randbytes(rng.randint(1, 500))
    h["buffers"][0]["nbytes"] = len(blob)
    return [json.dumps(h).encode(), blob] + frames[2:]


def traversal_name(rng, limits):
    return valid_submit(name=rng.choice(["../evil", "..", "/etc/passwd", "a/../../b", "x\\..\\y", ".hidden",
                                         "C:evil", "a b", "é" * 3, "x" * 200]))


def bad_job_values(rng, limits):
    field, value = rng.choice([("window", 0), ("window", limits.max_credit_window + 1), ("window", -3),
                               ("engine", "nope"), ("frame_range", [1]), ("frame_range", ["a", 2]),
                               ("frame_range", [900, 1000]), ("image_size", [1, 2, 3]), ("detector", "nope")])
    return valid_submit(**{field: value})


def bad_landmark_values(rng, limits):
    driver = performance(4)
    landmarks, frame_numbers = driver.landmarks.copy(), driver.frames.copy()
    choice = rng.randrange(4)
    if choice == 0:
        landmarks[1, 3, 0] = np.nan
    elif choice == 1:
        frame_numbers[2] = frame_numbers[1]
    elif choice == 2:
        landmarks = landmarks[:, :30]
    else:
        frame_numbers = frame_numbers[:3]
    h = {"kind": "render", "name": "fuzz", "window": 2, "image_size": list(driver.image_size)}
    return encode(SUBMIT, _id(), h, [bytes_buffer("portrait", _portrait(), "image"),
                                     array_buffer("landmarks", landmarks), array_buffer("frames", frame_numbers),
                                     array_buffer("portrait_landmarks", portrait_landmarks()[: rng.choice([68, 10])])])


def stray_control(rng, limits):
    if rng.random() < 0.5:
        return encode(CANCEL, _id())
    return encode(CREDIT, _id(), {"credits": rng.randint(1, 1_000_000)})


def junk_fields(rng, limits):
    return encode(rng.choice([HELLO, PING]), _id(), {"junk": rng.random(), "heartbeat_ms": 0, "client": "fuzz"})


MAKERS = [random_frames, not_json, json_not_object, deep_nesting, bad_version, bad_type, bad_type_value, bad_id,
          bad_credit, bad_submit_fields, truncated_buffer, missing_buffer, extra_buffer, lying_nbytes, lying_shape,
          bad_dtype_or_kind, oversized_header, too_many_buffers, oversized_buffer, too_many_frames, too_many_pixels,
          image_bomb, garbage_portrait, traversal_name, bad_job_values, bad_landmark_values, stray_control, junk_fields]


def hostile_message(rng: random.Random, limits: Limits) -> list[bytes]:
    return rng.choice(MAKERS)(rng, limits)


# ---- the oracle -------------------------------------------------------------------------------
def expected_answer(frames: list[bytes], limits: Limits) -> tuple[str, str, str | None]:
    """(what, id, detail): ("error", id, code) | ("reply", id, type) | ("none", id, None) | ("job", id, None)."""
    try:
        msg = decode(frames, limits)
    except ProtocolError as err:
        return "error", readable_id(frames), err.code
    if msg.type == HELLO:
        return "reply", msg.id, WELCOME
    if msg.type == PING:
        return "reply", msg.id, PONG
    if msg.type == CREDIT:
        return "none", msg.id, None
    if msg.type == CANCEL:
        return "error", msg.id, ErrorCode.UNKNOWN_JOB
    return "job", msg.id, None


class HostileClient:
    """A raw DEALER that sends one message at a time and checks the backend's answer against
    ``expected_answer``. After each message it sends a PING and waits for its PONG: the backend answers
    one client's messages in order, so whatever it had to say synchronously has arrived by then."""

    def __init__(self, address: str, timeout_s: float = 10.0):
        import zmq

        self._zmq = zmq
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)
        self.timeout_s = timeout_s
        welcome = self._exchange_simple(encode(HELLO, _id()))
        self.limits = Limits.from_dict(welcome.header["limits"])

    def close(self) -> None:
        self.sock.close(0)

    def _recv(self, deadline: float, waiting_for: str):
        import time

        from livingportrait_wire.protocol import SERVER_TYPES

        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self.sock.poll(int(remaining * 1000) + 1):
            raise AssertionError(f"the backend did not answer within {self.timeout_s} s ({waiting_for})")
        return decode(self.sock.recv_multipart(), Limits(), expect=SERVER_TYPES)

    def _exchange_simple(self, frames):
        import time

        msg_id = _header(frames)["id"]
        self.sock.send_multipart(frames)
        deadline = time.monotonic() + self.timeout_s
        while True:
            msg = self._recv(deadline, "handshake")
            if msg.id == msg_id:
                return msg

    def send_and_check(self, frames: list[bytes]) -> str:
        """Send ``frames``; return how it was answered ("error:CODE", "reply:TYPE", "dropped",
        "job:CODE"/"job:done"); AssertionError if the answer breaks the documented rules or never comes."""
        import time

        from livingportrait_wire.protocol import DONE, ERROR, FRAME

        what, msg_id, detail = expected_answer(frames, self.limits)
        sentinel = "sentinel-" + _id()
        self.sock.send_multipart(frames)
        self.sock.send_multipart(encode(PING, sentinel))
        deadline = time.monotonic() + self.timeout_s
        answers, sentinel_seen, before_sentinel = [], False, 0
        while True:
            msg = self._recv(deadline, f"{what} {detail}")
            if msg.id == sentinel and msg.type == PONG:
                sentinel_seen, before_sentinel = True, len(answers)
            elif msg.id == msg_id and (msg.type != PONG or what == "reply"):  # on a job id: heartbeats
                answers.append(msg)
                if what == "job" and msg.type == FRAME:
                    self.sock.send_multipart(encode(CREDIT, msg_id, {"credits": 1}))
            ended = any(a.type in (ERROR, DONE) for a in answers)
            if sentinel_seen and (what != "job" or ended):
                break
        if what == "none":
            assert not answers, f"a stray control message was answered: {[a.header for a in answers]}"
            return "dropped"
        if what == "job":
            last = answers[-1]
            if last.type == DONE:
                return "job:done"
            # INTERNAL is typed too, but it means a bug: hostile input must never reach one.
            assert last.header["code"] in TYPED_CODES - {ErrorCode.INTERNAL}, last.header
            return f"job:{last.header['code']}"
        assert before_sentinel == 1 and len(answers) == 1, \
            f"expected one {what} {detail} for {msg_id!r}, got {[a.header for a in answers]}"
        answer = answers[0]
        if what == "reply":
            assert answer.type == detail, answer.header
            return f"reply:{detail}"
        assert answer.type == ERROR and answer.header["code"] == detail, (detail, answer.header)
        return f"error:{detail}"
