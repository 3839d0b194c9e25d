"""The client side of the wire: used by the CLI (``render --connect``) and by the Blender add-on.

Made to be driven two ways: ``JobStream.poll(0)`` from a UI timer (never blocks), or
``JobStream.wait()`` in a batch process. Each FRAME's bytes are written atomically into the output
folder under the name the client itself computes (the server's file name is checked, never trusted),
and a credit goes back for every frame written. zmq is imported only when a client is created.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from .atomic_write import write_bytes_atomic
from .codec import Message, array_buffer, bytes_buffer, decode, encode
from .errors import BackendUnavailable, BadInput, Cancelled, JobFailed, LivingPortraitError, ProtocolError
from .landmarks import LandmarkSequence
from .naming import check_name, frame_filename
from .protocol import (ACCEPTED, CANCEL, CREDIT, DONE, ERROR, FRAME, HELLO, JOB_DETECT, JOB_RENDER, PING,
                       PONG, PROGRESS, RESULT, SERVER_TYPES, SUBMIT, WELCOME, ErrorCode, Limits)

DEFAULT_ADDRESS = "tcp://127.0.0.1:5557"


@dataclass
class RenderJob:
    """A render request. ``portraits``: encoded image file bytes (1..32 shots, the first is animated).
    ``portrait_landmarks``: optional float32 (68, 2) pixels of the first portrait (skips detection)."""

    portraits: list[bytes]
    driver: LandmarkSequence
    out_dir: str
    name: str = "portrait"
    engine: str = "warp"
    settings: dict = field(default_factory=dict)
    frame_range: tuple[int, int] | None = None
    portrait_landmarks: np.ndarray | None = None
    portrait_names: list[str] | None = None
    window: int = 4

    def message(self, job_id: str) -> list[bytes]:
        check_name(self.name)
        buffers = [bytes_buffer("portrait", data, "image") for data in self.portraits]
        buffers += [array_buffer("landmarks", self.driver.landmarks),
                    array_buffer("frames", self.driver.frames)]
        if self.driver.confidence is not None:
            buffers.append(array_buffer("confidence", self.driver.confidence))
        if self.portrait_landmarks is not None:
            buffers.append(array_buffer("portrait_landmarks", np.asarray(self.portrait_landmarks, np.float32)))
        fields = {"kind": JOB_RENDER, "engine": self.engine, "name": self.name, "settings": self.settings,
                  "image_size": list(self.driver.image_size), "window": self.window}
        if self.frame_range is not None:
            fields["frame_range"] = [int(self.frame_range[0]), int(self.frame_range[1])]
        if self.portrait_names:
            fields["portrait_names"] = list(self.portrait_names)
        return encode(SUBMIT, job_id, fields, buffers)


@dataclass
class DetectJob:
    """Track a performance on the backend: a movie file's bytes (``video``) or encoded frames
    (``images`` with their ``frames`` numbers). The stream's ``result`` is a LandmarkSequence."""

    video: bytes | None = None
    images: list[bytes] | None = None
    frames: list[int] | None = None
    detector: str = "mediapipe"
    face_index: int = 0
    settings: dict = field(default_factory=dict)

    def message(self, job_id: str) -> list[bytes]:
        if (self.video is None) == (self.images is None):
            raise BadInput("a detect job needs either a video or a list of images")
        if self.video is not None:
            buffers = [bytes_buffer("video", self.video, "video")]
        else:
            buffers = [bytes_buffer("image", data, "image") for data in self.images]
            numbers = self.frames if self.frames is not None else list(range(1, len(self.images) + 1))
            buffers.append(array_buffer("frames", np.asarray(numbers, np.int32)))
        if self.frames is not None and self.video is not None:
            buffers.append(array_buffer("frames", np.asarray(self.frames, np.int32)))
        settings = {"face_index": self.face_index, **self.settings}
        return encode(SUBMIT, job_id, {"kind": JOB_DETECT, "detector": self.detector, "settings": settings}, buffers)


@dataclass
class FrameWritten:
    frame: int
    path: str


@dataclass
class ProgressEvent:
    stage: str
    done: int
    total: int


@dataclass
class Finished:
    frames: int


class BackendClient:
    """One DEALER connection to a backend. Not thread-safe: use it from one thread."""

    def __init__(self, address: str = DEFAULT_ADDRESS, timeout_s: float = 5.0, limits: Limits | None = None):
        import zmq

        self._zmq = zmq
        self.address = address
        self.timeout_s = float(timeout_s)
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
        self.sock.connect(address)
        self.limits = limits or Limits()
        self.info: dict | None = None
        self._pending: dict[str, list[Message]] = {}

    def close(self) -> None:
        self.sock.close(0)

    def __enter__(self) -> "BackendClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unavailable(self, what: str) -> BackendUnavailable:
        return BackendUnavailable(f"no answer from the backend at {self.address} within {self.timeout_s:g} s "
                                  f"({what}); start it with `livingportrait serve` or check the address")

    def _recv(self, timeout_ms: int) -> Message | None:
        """One decoded message, or None if none arrived within ``timeout_ms``."""
        if not self.sock.poll(timeout_ms, self._zmq.POLLIN):
            return None
        frames = self.sock.recv_multipart(copy=False)
        return decode(frames, self.limits, expect=SERVER_TYPES)

    def _request(self, msg_type: str, expect: str) -> Message:
        req_id = uuid.uuid4().hex
        self.sock.send_multipart(encode(msg_type, req_id))
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable(msg_type)
            msg = self._recv(int(remaining * 1000) + 1)
            if msg is None:
                continue
            if msg.id == req_id:
                if msg.type == ERROR:
                    raise _error_from(msg)
                if msg.type != expect:
                    raise ProtocolError(f"backend answered {msg.type} to {msg_type}")
                return msg
            self._pending.setdefault(msg.id, []).append(msg)

    def handshake(self) -> dict:
        """Say hello; returns the backend's WELCOME fields (protocol, engines, detectors, limits)."""
        msg = self._request(HELLO, WELCOME)
        self.info = {k: v for k, v in msg.header.items() if k not in ("v", "type", "id", "buffers")}
        return self.info

    def ping(self) -> None:
        self._request(PING, PONG)

    def submit(self, job: RenderJob | DetectJob) -> "JobStream":
        if self.info is None:
            self.handshake()
        job_id = uuid.uuid4().hex
        if isinstance(job, RenderJob):
            os.makedirs(job.out_dir, exist_ok=True)
            if not os.access(job.out_dir, os.W_OK):
                raise BadInput(f"{job.out_dir}: the output folder is not writable; choose another")
        self.sock.send_multipart(job.message(job_id), copy=False)
        return JobStream(self, job_id, job)

    def _take(self, job_id: str, timeout_ms: int) -> Message | None:
        queued = self._pending.get(job_id)
        if queued:
            return queued.pop(0)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            msg = self._recv(max(0, int((deadline - time.monotonic()) * 1000)))
            if msg is None or msg.id == job_id:
                return msg
            self._pending.setdefault(msg.id, []).append(msg)
            if time.monotonic() >= deadline:
                return None


def _error_from(msg: Message) -> LivingPortraitError:
    code, text = msg.header["code"], msg.header["message"]
    if code == ErrorCode.CANCELLED:
        return Cancelled(text)
    if code in (ErrorCode.BAD_INPUT, ErrorCode.NO_FACE, ErrorCode.UNKNOWN_ENGINE):
        return BadInput(text, code)
    return JobFailed(text, code)


class JobStream:
    """A running job. ``poll`` advances it without blocking longer than asked; ``wait`` to the end."""

    def __init__(self, client: BackendClient, job_id: str, job: RenderJob | DetectJob):
        self.client = client
        self.id = job_id
        self.job = job
        self.total = 0
        self.frames_written: list[int] = []
        self.stage = "queued"
        self.stage_done = 0
        self.stage_total = 0
        self.finished = False
        self.error: LivingPortraitError | None = None
        self.result: LandmarkSequence | None = None
        self.last_heard = time.monotonic()

    @property
    def progress(self) -> float:
        """0..1 over the frames (or the current stage before frames flow)."""
        if self.total:
            return len(self.frames_written) / self.total
        return self.stage_done / self.stage_total if self.stage_total else 0.0

    def cancel(self) -> None:
        if not self.finished:
            self.client.sock.send_multipart(encode(CANCEL, self.id))

    def poll(self, timeout_ms: int = 0) -> list:
        """Handle what has arrived (waiting at most ``timeout_ms`` for the first message); returns events."""
        events = []
        wait = timeout_ms
        while not self.finished:
            msg = self.client._take(self.id, wait)
            if msg is None:
                break
            wait = 0
            self.last_heard = time.monotonic()
            events.append(self._handle(msg))
        return [e for e in events if e is not None]

    def _handle(self, msg: Message):
        if msg.type == ACCEPTED:
            self.total = msg.header["frames"]
        elif msg.type == PROGRESS:
            self.stage, self.stage_done, self.stage_total = (msg.header["stage"], msg.header["done"],
                                                            msg.header["total"])
            return ProgressEvent(self.stage, self.stage_done, self.stage_total)
        elif msg.type == FRAME:
            return self._write_frame(msg)
        elif msg.type == RESULT:
            self.result = LandmarkSequence(msg.one("landmarks"), msg.one("frames"),
                                           tuple(msg.header.get("image_size", [1, 1])),
                                           msg.optional("confidence"),
                                           {k: v[0] for k, v in msg.buffers.items()
                                            if k not in ("landmarks", "frames", "confidence")})
        elif msg.type == DONE:
            self.finished = True
            return Finished(msg.header["frames"])
        elif msg.type == ERROR:
            self.finished = True
            self.error = _error_from(msg)
            return self.error
        return None

    def _write_frame(self, msg: Message) -> FrameWritten:
        frame = msg.header["frame"]
        expected = frame_filename(self.job.name, frame)
        if msg.header["filename"] != expected:
            raise ProtocolError(f"backend named frame {frame} {msg.header['filename']!r}; expected {expected!r}")
        path = os.path.join(self.job.out_dir, expected)
        write_bytes_atomic(path, msg.one("exr"))
        self.frames_written.append(frame)
        self.client.sock.send_multipart(encode(CREDIT, self.id, {"credits": 1}))
        return FrameWritten(frame, path)

    def wait(self, on_event=None, idle_timeout_s: float | None = None) -> "JobStream":
        """Block until the job ends. Raises the job's error; BackendUnavailable if the backend is silent
        for ``idle_timeout_s`` (default: the client's timeout, at least 30 s while a job runs)."""
        idle = idle_timeout_s if idle_timeout_s is not None else max(self.client.timeout_s, 30.0)
        while not self.finished:
            for event in self.poll(200):
                if on_event is not None:
                    on_event(event)
            if not self.finished and time.monotonic() - self.last_heard > idle:
                raise self.client._unavailable("the job went silent")
        if self.error is not None:
            raise self.error
        return self
