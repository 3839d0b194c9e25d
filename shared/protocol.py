"""Protocol version 1: message types, error codes, limits, and the schema of each message.

A message is multipart: frame 0 is a UTF-8 JSON header ``{"v": 1, "type": ..., "id": ..., ...}``;
further frames are raw buffers, each described by an entry of ``header["buffers"]``:
``{"name": str, "kind": "array", "dtype": "float32", "shape": [...], "nbytes": n}`` or
``{"name": str, "kind": "bytes", "encoding": "image"|"video"|"exr", "nbytes": n}``.

Client -> backend: HELLO, SUBMIT, CANCEL, CREDIT, PING, PART.
Backend -> client: WELCOME, ACCEPTED, PROGRESS, FRAME, RESULT, DONE, ERROR, PONG.

Heartbeats reuse PING/PONG: a client announces ``heartbeat_ms`` in HELLO and pings (any id) at least
that often while its jobs run, and the backend cancels its jobs when it has been silent for the
backend's client timeout; the backend sends each running job's client a PONG carrying the job's id
every WELCOME ``heartbeat_ms``. A client hearing nothing for its liveness time takes the backend for
dead.

Footage of any size: a detect job's movie may come in parts. Its SUBMIT carries ``video_parts`` (K)
and ``video_bytes`` with part 0 as its ``video`` buffer; PART messages (``index`` 1..K-1, one ``video``
buffer each, under the job's id) bring the rest. The backend acknowledges each part it has stored
with PROGRESS ``stage: "upload"`` (``done``: parts stored); a client keeps at most FOOTAGE_WINDOW parts
unacknowledged, so neither side holds more than a few parts in memory.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

PROTOCOL_VERSION = 1

# Client -> backend
HELLO = "hello"
SUBMIT = "submit"
CANCEL = "cancel"
CREDIT = "credit"
PING = "ping"
PART = "part"
# Backend -> client
WELCOME = "welcome"
ACCEPTED = "accepted"
PROGRESS = "progress"
FRAME = "frame"
RESULT = "result"
DONE = "done"
ERROR = "error"
PONG = "pong"

CLIENT_TYPES = frozenset({HELLO, SUBMIT, CANCEL, CREDIT, PING, PART})
FOOTAGE_WINDOW = 2  # footage parts a client may have sent and not yet seen acknowledged
FOOTAGE_PART_BYTES = 32 * 1024 * 1024  # a client's part size (or the backend's buffer limit, if smaller)
SERVER_TYPES = frozenset({WELCOME, ACCEPTED, PROGRESS, FRAME, RESULT, DONE, ERROR, PONG})

JOB_RENDER = "render"
JOB_DETECT = "detect"
JOB_KINDS = frozenset({JOB_RENDER, JOB_DETECT})


class ErrorCode:
    """Stable error codes carried by ERROR messages (``code``), with a human ``message`` beside."""

    BAD_MESSAGE = "bad_message"        # not JSON, wrong fields, buffers that lie about their size
    BAD_VERSION = "bad_version"        # protocol version mismatch
    BAD_INPUT = "bad_input"            # the job's content is unusable (not an image, bad landmarks, ...)
    NO_FACE = "no_face"
    TOO_LARGE = "too_large"            # a size limit was exceeded
    LIMIT = "limit_exceeded"           # a count limit (jobs per client, frames per job) was exceeded
    UNKNOWN_ENGINE = "unknown_engine"
    UNKNOWN_JOB = "unknown_job"
    DUPLICATE_JOB = "duplicate_job"
    CANCELLED = "cancelled"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Limits:
    """What the backend accepts; announced in WELCOME, enforced on every incoming message."""

    max_header_bytes: int = 64 * 1024
    max_buffers: int = 40
    max_buffer_bytes: int = 512 * 1024 * 1024
    max_message_bytes: int = 1024 * 1024 * 1024
    max_image_pixels: int = 8192 * 8192
    max_portraits: int = 32
    max_frames_per_job: int = 100_000
    max_jobs_per_client: int = 4
    max_credit_window: int = 16
    max_footage_bytes: int = 256 * 1024 * 1024 * 1024  # a detect job's movie, all its parts together

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Limits":
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in known})
