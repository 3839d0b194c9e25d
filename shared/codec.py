"""Encode and strictly decode multipart wire messages (JSON header + raw buffers). Never pickle.

``decode`` validates everything that arrives: JSON, version, type, id, per-type fields, buffer count,
declared sizes against real sizes, dtypes and shapes against the limits. Any problem raises
ProtocolError (code ``bad_message``, ``bad_version`` or ``too_large``) with a readable message; it never
raises anything else, so a server loop can answer and carry on.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import BadInput, Cancelled, JobFailed, LivingPortraitError, ProtocolError
from .protocol import (ACCEPTED, CANCEL, CLIENT_TYPES, CREDIT, DONE, ERROR, FRAME, HELLO, JOB_KINDS, PART,
                       PING, PONG, PROGRESS, PROTOCOL_VERSION, RESULT, SUBMIT, WELCOME,
                       ErrorCode, Limits)

ALLOWED_DTYPES = frozenset({"uint8", "uint16", "int32", "int64", "float16", "float32", "float64"})
ENCODINGS = frozenset({"image", "video", "exr"})
MAX_ID_LEN = 128
# Deeper JSON than any real header needs is refused before parsing: the parser's recursion limit
# depends on the caller's stack, so near it the same bytes would parse in one process and not another.
MAX_NESTING = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')

_STR, _INT, _DICT, _LIST = str, int, dict, list

# Per-type fields: name -> (python type(s), required). Unknown fields are ignored (forward compatible).
FIELDS: dict[str, dict[str, tuple]] = {
    HELLO: {"client": (_STR, False), "heartbeat_ms": (_INT, False)},
    SUBMIT: {"kind": (_STR, True), "engine": (_STR, False), "name": (_STR, False),
             "settings": (_DICT, False), "frame_range": (_LIST, False), "window": (_INT, False),
             "image_size": (_LIST, False), "detector": (_STR, False), "video_parts": (_INT, False),
             "video_bytes": (_INT, False)},
    CANCEL: {},
    CREDIT: {"credits": (_INT, True)},
    PING: {},
    PART: {"index": (_INT, True)},
    WELCOME: {"protocol": (_INT, True), "server": (_STR, True), "engines": (_LIST, True),
              "detectors": (_LIST, True), "limits": (_DICT, True), "heartbeat_ms": (_INT, False)},
    ACCEPTED: {"frames": (_INT, True)},
    PROGRESS: {"stage": (_STR, True), "done": (_INT, True), "total": (_INT, True),
               "message": (_STR, False)},
    FRAME: {"frame": (_INT, True), "filename": (_STR, True)},
    RESULT: {},
    DONE: {"frames": (_INT, True)},
    ERROR: {"code": (_STR, True), "message": (_STR, True)},
    PONG: {},
}


@dataclass
class Message:
    """A decoded message: ``type``, ``id``, the whole JSON ``header``, and buffers by name: numpy arrays
    (``kind`` array) or read-only memoryviews (``kind`` bytes), both views of the received frames."""

    type: str
    id: str
    header: dict
    buffers: dict[str, list] = field(default_factory=dict)

    def one(self, name: str):
        """The single buffer called ``name``; ProtocolError if absent or repeated."""
        items = self.buffers.get(name, [])
        if len(items) != 1:
            raise ProtocolError(f"{self.type} message needs exactly one '{name}' buffer, got {len(items)}")
        return items[0]

    def optional(self, name: str):
        items = self.buffers.get(name, [])
        if len(items) > 1:
            raise ProtocolError(f"{self.type} message has {len(items)} '{name}' buffers; at most one allowed")
        return items[0] if items else None


def array_buffer(name: str, array: np.ndarray) -> tuple[dict, bytes]:
    a = np.ascontiguousarray(array)
    if a.dtype.name not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {a.dtype} cannot travel on the wire")
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return ({"name": name, "kind": "array", "dtype": a.dtype.name, "shape": list(a.shape),
             "nbytes": a.nbytes}, a.tobytes())


def bytes_buffer(name: str, data: bytes, encoding: str) -> tuple[dict, bytes]:
    return {"name": name, "kind": "bytes", "encoding": encoding, "nbytes": len(data)}, bytes(data)


def encode(msg_type: str, msg_id: str, fields: dict | None = None,
           buffers: list[tuple[dict, bytes]] | None = None) -> list[bytes]:
    """Build the multipart frames of one message. ``buffers`` from array_buffer / bytes_buffer."""
    header = {"v": PROTOCOL_VERSION, "type": msg_type, "id": msg_id}
    header.update(fields or {})
    buffers = buffers or []
    header["buffers"] = [desc for desc, _ in buffers]
    return [json.dumps(header, separators=(",", ":")).encode("utf-8")] + [data for _, data in buffers]


def error_frames(msg_id: str, code: str, message: str) -> list[bytes]:
    return encode(ERROR, msg_id, {"code": code, "message": message})


def error_from(msg: Message) -> LivingPortraitError:
    """The typed error an ERROR message carries (the inverse of ``error_frames``)."""
    code, text = msg.header["code"], msg.header["message"]
    if code == ErrorCode.CANCELLED:
        return Cancelled(text)
    if code in (ErrorCode.BAD_INPUT, ErrorCode.NO_FACE, ErrorCode.UNKNOWN_ENGINE):
        return BadInput(text, code)
    return JobFailed(text, code)


def decode(frames: list, limits: Limits = Limits(), expect: frozenset = CLIENT_TYPES) -> Message:
    """Validate and decode multipart ``frames`` (bytes or zmq.Frame). Raises ProtocolError only.

    Nothing is copied: a zmq.Frame's buffers come back as read-only views of the received message (an
    array's ``base`` chain, or the memoryview itself for ``bytes`` buffers, keeps the frame alive), so
    a received EXR goes to disk, and an array to the engine, without another copy of its bytes."""
    if not frames:
        raise ProtocolError("empty message")
    if len(frames) - 1 > limits.max_buffers:
        raise ProtocolError(f"message has {len(frames) - 1} buffers; the limit is {limits.max_buffers}",
                            ErrorCode.TOO_LARGE)
    raw = [_readonly(getattr(f, "buffer", f)) for f in frames]
    total = sum(r.nbytes for r in raw)
    if total > limits.max_message_bytes:
        raise ProtocolError(f"message is {total} bytes; the limit is {limits.max_message_bytes}",
                            ErrorCode.TOO_LARGE)
    if raw[0].nbytes > limits.max_header_bytes:
        raise ProtocolError(f"header is {raw[0].nbytes} bytes; the limit is {limits.max_header_bytes}",
                            ErrorCode.TOO_LARGE)
    head = raw[0].tobytes()
    if _nesting_depth(head) > MAX_NESTING:
        raise ProtocolError(f"header nests deeper than {MAX_NESTING} levels")
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"header is not valid UTF-8 JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    version = header.get("v")
    if type(version) is not int:
        raise ProtocolError("header field 'v' (protocol version) must be an integer")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {version} is not supported; this side speaks version "
                            f"{PROTOCOL_VERSION}: update the add-on or the backend so they match",
                            ErrorCode.BAD_VERSION)
    msg_type, msg_id = header.get("type"), header.get("id")
    if not isinstance(msg_type, str) or msg_type not in expect:
        raise ProtocolError(f"unknown message type {msg_type!r}; expected one of {sorted(expect)}")
    if not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID_LEN:
        raise ProtocolError(f"message id must be a string of 1-{MAX_ID_LEN} characters")
    _check_fields(msg_type, header)
    buffers = _decode_buffers(header, raw[1:], limits)
    return Message(msg_type, msg_id, header, buffers)


def _readonly(data) -> memoryview:
    """A flat, read-only byte view of ``data`` (bytes, a zmq.Frame's buffer, any buffer)."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view.toreadonly()


def readable_id(frames: list) -> str:
    """The id to answer a message that failed to decode with: its header's id when that can be read
    (so the sender can match the error), ``"-"`` otherwise. Never raises."""
    try:
        raw = bytes(getattr(frames[0], "buffer", frames[0]))
        if _nesting_depth(raw) > MAX_NESTING:
            return "-"
        header = json.loads(raw.decode("utf-8"))
    except (IndexError, TypeError, UnicodeDecodeError, ValueError, RecursionError):
        return "-"
    msg_id = header.get("id") if isinstance(header, dict) else None
    return msg_id if isinstance(msg_id, str) and 0 < len(msg_id) <= MAX_ID_LEN else "-"


def _nesting_depth(raw: bytes) -> int:
    """How deep brackets nest in JSON text, strings aside (an upper bound for malformed text)."""
    codes = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    if codes.size == 0:
        return 0
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int32)
             - np.isin(codes, (ord("]"), ord("}"))).astype(np.int32))
    return int(np.cumsum(steps).max())


def _check_fields(msg_type: str, header: dict) -> None:
    for name, (kind, required) in FIELDS[msg_type].items():
        if name not in header:
            if required:
                raise ProtocolError(f"{msg_type} message lacks field '{name}'")
            continue
        value = header[name]
        # bool is an int in Python; a JSON true must not pass as a number.
        if isinstance(value, bool):
            raise ProtocolError(f"{msg_type} field '{name}' has the wrong type (bool)")
        if not isinstance(value, kind) or (isinstance(value, float) and not math.isfinite(value)):
            raise ProtocolError(f"{msg_type} field '{name}' has the wrong type ({type(value).__name__})")
    if msg_type == SUBMIT and header["kind"] not in JOB_KINDS:
        raise ProtocolError(f"submit kind {header['kind']!r} is unknown; expected one of {sorted(JOB_KINDS)}")
    if msg_type == CREDIT and not 0 < header["credits"] <= 1_000_000:
        raise ProtocolError("credit message must grant between 1 and 1000000 credits")
    if msg_type == PART and header["index"] < 1:
        raise ProtocolError("a footage part's index starts at 1 (part 0 comes with the job)")
    if msg_type == SUBMIT and ("video_parts" in header) != ("video_bytes" in header):
        raise ProtocolError("a job in parts gives both video_parts and video_bytes")
    if msg_type == SUBMIT and "video_parts" in header and not (
            0 < header["video_parts"] <= 1_000_000 and 0 <= header["video_bytes"]):
        raise ProtocolError("video_parts must be 1 to 1000000 and video_bytes not negative")


def _decode_buffers(header: dict, data: list[memoryview], limits: Limits) -> dict[str, list]:
    descs = header.get("buffers", [])
    if not isinstance(descs, list):
        raise ProtocolError("header field 'buffers' must be a list")
    if len(descs) != len(data):
        raise ProtocolError(f"header describes {len(descs)} buffers but {len(data)} were sent")
    out: dict[str, list] = {}
    for i, (desc, blob) in enumerate(zip(descs, data)):
        if not isinstance(desc, dict) or not isinstance(desc.get("name"), str) or not desc["name"]:
            raise ProtocolError(f"buffer {i}: description must be an object with a 'name'")
        nbytes = desc.get("nbytes")
        if type(nbytes) is not int or nbytes != blob.nbytes:
            raise ProtocolError(f"buffer {i} ('{desc['name']}'): declares {nbytes!r} bytes but carries {blob.nbytes}")
        if blob.nbytes > limits.max_buffer_bytes:
            raise ProtocolError(f"buffer {i} ('{desc['name']}') is {blob.nbytes} bytes; the limit is "
                                f"{limits.max_buffer_bytes}", ErrorCode.TOO_LARGE)
        kind = desc.get("kind")
        if kind == "array":
            value = _decode_array(i, desc, blob)
        elif kind == "bytes":
            if desc.get("encoding") not in ENCODINGS:
                raise ProtocolError(f"buffer {i}: encoding {desc.get('encoding')!r} is unknown; "
                                    f"expected one of {sorted(ENCODINGS)}")
            value = blob
        else:
            raise ProtocolError(f"buffer {i}: kind {kind!r} is unknown; expected 'array' or 'bytes'")
        out.setdefault(desc["name"], []).append(value)
    return out


def _decode_array(i: int, desc: dict, blob: memoryview) -> np.ndarray:
    dtype, shape = desc.get("dtype"), desc.get("shape")
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"buffer {i}: dtype {dtype!r} is not allowed; use one of {sorted(ALLOWED_DTYPES)}")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(type(s) is int and 0 <= s <= 2**31 for s in shape)):
        raise ProtocolError(f"buffer {i}: shape must be a list of at most 8 non-negative integers")
    dt = np.dtype(dtype).newbyteorder("<")
    if math.prod(shape) * dt.itemsize != blob.nbytes:
        raise ProtocolError(f"buffer {i} ('{desc['name']}'): shape {shape} of {dtype} needs "
                            f"{math.prod(shape) * dt.itemsize} bytes but {blob.nbytes} were sent")
    return np.frombuffer(blob, dtype=dt).reshape(shape).astype(dt.newbyteorder("="), copy=False)
