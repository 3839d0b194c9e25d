"""The client side of the wire: used by the CLI (``render --connect``) and by the Blender add-on.

Made to be driven two ways: ``JobStream.poll(0)`` from a UI timer (never blocks), or
``JobStream.wait()`` in a batch process. Each FRAME's bytes are written atomically into the output
folder under the name the client itself computes (the server's file name is checked, never trusted),
and a credit goes back for every frame written. zmq is imported only when a client is created.

Liveness: while a stream is polled the client pings every ``heartbeat_s``; anything from the backend
(its per-job heartbeats, the answers to the pings) proves it alive. Silent for ``liveness_s`` means
dead: ``wait()`` then reconnects with a fresh socket and growing waits for up to ``reconnect_s`` and
re-submits the job for the frames not yet written (frames are deterministic, so the files end up
identical to an uninterrupted run), or gives up with BackendUnavailable.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
import time
import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from .atomic_write import write_bytes_atomic
from .codec import Message, array_buffer, bytes_buffer, decode, encode
from .curve_keys import load_key_pair, load_public_key
from .errors import BackendUnavailable, BadInput, Cancelled, JobFailed, LivingPortraitError, ProtocolError
from .landmarks import LandmarkSequence
from .naming import check_name, frame_filename
from .render_settings import RenderSettings
from .protocol import (ACCEPTED, CANCEL, CREDIT, DONE, ERROR, FRAME, HELLO, JOB_DETECT, JOB_RENDER, PING,
                       PROGRESS, RESULT, SERVER_TYPES, SUBMIT, WELCOME, ErrorCode, Limits)

DEFAULT_ADDRESS = "tcp://127.0.0.1:5557"
HEARTBEAT_S = 1.0
LIVENESS_S = 3.5      # three and a half missed heartbeats: a dead backend is noticed within 5 s
RECONNECT_S = 20.0
TIMEOUT_S = 5.0       # how long a request waits for the backend's answer
HANDSHAKE_S = 3.0     # a stalled transport handshake is retried after this (libzmq waits 30 s)
REFUSED = "refused"   # BackendUnavailable code: the transport's security handshake failed


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ keys of a client: the backend's public key and this client's key pair (Z85 bytes)."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def from_files(cls, server_key_file: str, client_key_file: str) -> "CurveKeys":
        """``server_key_file``: the backend's public ``NAME.key``; ``client_key_file``: this client's
        ``NAME.key_secret`` (both written by ``livingportrait keys generate``). BadInput when unusable."""
        return cls(load_public_key(server_key_file), *load_key_pair(client_key_file))


@dataclass
class RenderJob:
    """A render request. ``portraits``: encoded image file bytes (1..32 shots, the first is animated).
    ``settings``: a RenderSettings (whose ``engine`` is the job's), or a plain dict as older callers
    built it (beside ``engine``). ``portrait_landmarks``: optional float32 (68, 2) pixels of the first
    portrait (skips detection)."""

    portraits: list[bytes]
    driver: LandmarkSequence
    out_dir: str
    name: str = "portrait"
    engine: str = "warp"
    settings: RenderSettings | dict = field(default_factory=dict)
    frame_range: tuple[int, int] | None = None
    portrait_landmarks: np.ndarray | None = None
    portrait_names: list[str] | None = None
    window: int = 4

    def __post_init__(self):
        if isinstance(self.settings, RenderSettings):
            if self.engine not in ("warp", self.settings.engine):  # "warp": the field's default
                raise ValueError(f"engine {self.engine!r} given beside settings for {self.settings.engine!r}")
            self.engine = self.settings.engine

    def message(self, job_id: str) -> list[bytes]:
        check_name(self.name)
        buffers = [bytes_buffer("portrait", data, "image") for data in self.portraits]
        buffers += [array_buffer("landmarks", self.driver.landmarks),
                    array_buffer("frames", self.driver.frames)]
        if self.driver.confidence is not None:
            buffers.append(array_buffer("confidence", self.driver.confidence))
        if self.portrait_landmarks is not None:
            buffers.append(array_buffer("portrait_landmarks", np.asarray(self.portrait_landmarks, np.float32)))
        settings = self.settings.to_dict() if isinstance(self.settings, RenderSettings) else self.settings
        fields = {"kind": JOB_RENDER, "engine": self.engine, "name": self.name, "settings": settings,
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


@dataclass
class ConnectionLost:
    """The backend went silent for ``silent_s``; the stream is trying to reconnect for ``reconnect_s``."""

    address: str
    silent_s: float
    reconnect_s: float


@dataclass
class Resumed:
    """The stream reconnected and re-submitted its job for ``frames_left`` frames."""

    address: str
    frames_left: int


class BackendClient:
    """One DEALER connection to a backend. Not thread-safe: use it from one thread.

    ``curve``: CurveZMQ keys for a backend that requires them (any non-loopback one does).
    ``heartbeat_s``, ``liveness_s``, ``reconnect_s``: see the module docstring.
    """

    def __init__(self, address: str = DEFAULT_ADDRESS, timeout_s: float = TIMEOUT_S, limits: Limits | None = None,
                 curve: CurveKeys | None = None, heartbeat_s: float = HEARTBEAT_S,
                 liveness_s: float = LIVENESS_S, reconnect_s: float = RECONNECT_S):
        import zmq

        self._zmq = zmq
        self.address = address
        self.timeout_s = float(timeout_s)
        self.curve = curve
        self.heartbeat_s = float(heartbeat_s)
        self.liveness_s = float(liveness_s)
        self.reconnect_s = float(reconnect_s)
        self.ctx = zmq.Context.instance()
        self.limits = limits or Limits()
        self.info: dict | None = None
        # Only messages for these ids are kept; late ones for finished jobs and ping answers are dropped.
        self._pending: dict[str, list[Message]] = {}
        self._heartbeat_id = "heartbeat-" + uuid.uuid4().hex[:8]
        self.last_heard = time.monotonic()
        self._last_ping = 0.0
        self._open_socket()

    def _open_socket(self) -> None:
        zmq = self._zmq
        self.sock = self.ctx.socket(zmq.DEALER)
        # LINGER 0: closing never waits on a dead backend; a lost credit or ping costs nothing that
        # resume does not repair. SNDTIMEO: a send never blocks for ever when the queue is full.
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDTIMEO, max(1, int(self.timeout_s * 1000)))
        # A handshake that stalls (libzmq may drop a refusal's ERROR command on a busy machine, and the
        # connection then hangs) is abandoned and retried after HANDSHAKE_S rather than libzmq's 30 s, so a
        # refused key is still reported within seconds. A real handshake takes milliseconds.
        self.sock.setsockopt(zmq.HANDSHAKE_IVL, int(HANDSHAKE_S * 1000))
        # RCVHWM stays at its default (1000): the credit window, not the HWM, bounds the frames in flight.
        self.sock.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
        if self.curve is not None:
            if not zmq.has("curve"):
                raise BadInput("this pyzmq build has no CurveZMQ support; install the pyzmq wheel from PyPI")
            self.sock.curve_serverkey = self.curve.server_public
            self.sock.curve_publickey = self.curve.client_public
            self.sock.curve_secretkey = self.curve.client_secret
        # The monitor tells a refused key or a security mismatch apart from a backend that is not there.
        self._refusal: str | None = None
        self._refused_key = False
        self._monitor = self.sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                     | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        try:
            self.sock.connect(self.address)
        except zmq.ZMQError as exc:
            self.close()
            raise BadInput(f"backend address {self.address!r} is not usable ({exc}); write it as "
                           "tcp://HOST:PORT, e.g. tcp://127.0.0.1:5557") from None

    def close(self) -> None:
        if self.sock.closed:
            return
        # Stop the events before closing their socket: a monitor closed under a handshake still in
        # progress wedges the context's I/O thread, and every later client in this process (the whole
        # Blender session) would then get no answer.
        self.sock.disable_monitor()
        self._monitor.close(0)
        self.sock.close(0)

    def reconnect(self, timeout_s: float | None = None) -> dict:
        """Drop the connection, open a fresh one and shake hands (waiting at most ``timeout_s``)."""
        self.close()
        self._pending = {job_id: [] for job_id in self._pending}
        self._open_socket()
        return self.handshake(timeout_s)

    def __enter__(self) -> "BackendClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unavailable(self, what: str, waited_s: float | None = None) -> BackendUnavailable:
        self._read_monitor()
        if self._refusal:
            # Only the backend's authenticator saying no is final; other handshake failures may be a
            # backend dying mid-handshake, so they explain the timeout but do not stop a reconnect.
            return BackendUnavailable(f"the backend at {self.address} refused the connection: {self._refusal}",
                                      REFUSED if self._refused_key else BackendUnavailable.code)
        waited = self.timeout_s if waited_s is None else waited_s
        return BackendUnavailable(f"no answer from the backend at {self.address} within {waited:g} s "
                                  f"({what}); start it with `livingportrait serve` or check the address")

    def _read_monitor(self) -> None:
        """Note what the transport's security handshake said, if it failed."""
        from zmq.utils.monitor import recv_monitor_message

        zmq = self._zmq
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._refused_key = True
                self._refusal = ("it does not know this client's CurveZMQ key; ask its operator to add your "
                                 "public NAME.key file to its authorised keys folder")
            elif self.curve is None:
                self._refusal = ("it requires CurveZMQ; give the backend's public key and your key pair "
                                 "(`livingportrait keys generate`)")
            else:
                self._refusal = ("the CurveZMQ handshake failed; check that the server key file is the "
                                 "backend's public key and that the backend uses CurveZMQ")

    def _send(self, frames: list, copy: bool = True) -> None:
        try:
            self.sock.send_multipart(frames, copy=copy)
        except self._zmq.Again:
            raise self._unavailable("sending") from None

    def _recv(self, timeout_ms: int) -> Message | None:
        """One decoded message, or None if none arrived within ``timeout_ms``."""
        if not self.sock.poll(timeout_ms, self._zmq.POLLIN):
            return None
        frames = self.sock.recv_multipart(copy=False)
        self.last_heard = time.monotonic()
        return decode(frames, self.limits, expect=SERVER_TYPES)

    def _keep(self, msg: Message) -> None:
        queue = self._pending.get(msg.id)
        if queue is not None:
            queue.append(msg)

    def heartbeat(self) -> None:
        """Ping the backend if a heartbeat is due (never blocks): it cancels the jobs of silent clients."""
        now = time.monotonic()
        if now - self._last_ping >= self.heartbeat_s:
            self._last_ping = now
            try:
                self.sock.send_multipart(encode(PING, self._heartbeat_id), self._zmq.NOBLOCK)
            except self._zmq.Again:
                pass  # the backend is not taking messages; liveness will tell

    def _request(self, msg_type: str, expect: str, fields: dict | None = None,
                 timeout_s: float | None = None) -> Message:
        req_id = uuid.uuid4().hex
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        self._send(encode(msg_type, req_id, fields))
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            self._read_monitor()
            if remaining <= 0 or self._refused_key:  # a refused key is final: say so at once
                raise self._unavailable(msg_type, timeout_s)
            msg = self._recv(min(int(remaining * 1000) + 1, 100))
            if msg is None:
                continue
            if msg.id == req_id:
                if msg.type == ERROR:
                    raise _error_from(msg)
                if msg.type != expect:
                    raise ProtocolError(f"backend answered {msg.type} to {msg_type}")
                return msg
            self._keep(msg)

    def handshake(self, timeout_s: float | None = None) -> dict:
        """Say hello; returns the backend's WELCOME fields (protocol, engines, detectors, limits)."""
        msg = self._request(HELLO, WELCOME, {"heartbeat_ms": int(self.heartbeat_s * 1000)}, timeout_s)
        self.info = {k: v for k, v in msg.header.items() if k not in ("v", "type", "id", "buffers")}
        return self.info

    def submit(self, job: RenderJob | DetectJob) -> "JobStream":
        if self.info is None:
            self.handshake()
        if isinstance(job, RenderJob):
            os.makedirs(job.out_dir, exist_ok=True)
            if not os.access(job.out_dir, os.W_OK):
                raise BadInput(f"{job.out_dir}: the output folder is not writable; choose another")
        return JobStream(self, self._send_job(job), job)

    def _send_job(self, job: RenderJob | DetectJob) -> str:
        job_id = uuid.uuid4().hex
        message = job.message(job_id)
        self._pending[job_id] = []
        self._send(message, copy=False)
        return job_id

    def _forget(self, job_id: str) -> None:
        self._pending.pop(job_id, None)

    def _take(self, job_id: str, timeout_ms: int) -> Message | None:
        queued = self._pending.get(job_id)
        if queued:
            return queued.pop(0)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            msg = self._recv(max(0, int((deadline - time.monotonic()) * 1000)))
            if msg is None or msg.id == job_id:
                return msg
            self._keep(msg)
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
        self.cancel_sent = False
        # Frames being written by the writer thread, oldest first: (frame, path, future).
        self._writes: deque = deque()
        self._writer: ThreadPoolExecutor | None = None
        self._backlog: list = []  # events of writes finished outside poll()
        self.error: LivingPortraitError | None = None
        self.result: LandmarkSequence | None = None
        self.last_heard = time.monotonic()
        self.resumes = 0
        self._frames_before = 0  # frames written before the current (re-)submission

    @property
    def progress(self) -> float:
        """0..1 over the frames (or the current stage before frames flow)."""
        if self.total:
            return len(self.frames_written) / self.total
        return self.stage_done / self.stage_total if self.stage_total else 0.0

    def cancel(self) -> None:
        """Ask the backend to stop the job (never blocks; a backend that is gone cancels it itself)."""
        if not self.finished:
            self.cancel_sent = True
            try:
                self.client.sock.send_multipart(encode(CANCEL, self.id), self.client._zmq.NOBLOCK)
            except self.client._zmq.Again:
                pass

    def poll(self, timeout_ms: int = 0) -> list:
        """Handle what has arrived (waiting at most ``timeout_ms`` for the first message); returns events.
        Also sends the client's heartbeat when one is due."""
        events, self._backlog = self._backlog, []
        wait = timeout_ms
        while not self.finished:
            self.client.heartbeat()
            msg = self.client._take(self.id, wait)
            if msg is None:
                break
            wait = 0
            if msg.type in (DONE, ERROR):
                events += self._collect_writes(everything=True)  # every frame lands before the end
            events.append(self._handle(msg))
            events += self._collect_writes(everything=False)
            # Silence is counted from the end of our own work (a slow disk is not a silent backend).
            self.last_heard = time.monotonic()
        events += self._collect_writes(everything=self.finished)
        # Any message proves the backend alive, the answers to our pings included.
        self.last_heard = max(self.last_heard, self.client.last_heard)
        if self.finished:
            self.client._forget(self.id)
        return [e for e in events if e is not None]

    def _handle(self, msg: Message):
        if msg.type == ACCEPTED:
            self.total = self._frames_before + msg.header["frames"]
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
            return Finished(self._frames_before + msg.header["frames"])
        elif msg.type == ERROR:
            self.finished = True
            self.error = _error_from(msg)
            if self.cancel_sent and msg.header["code"] == ErrorCode.UNKNOWN_JOB:
                # Our cancel crossed the job's last messages: the backend had just finished it.
                self.error = Cancelled("the job was cancelled (it had just finished on the backend)")
            return self.error
        return None  # PONG: the backend's heartbeat for this job

    def _write_frame(self, msg: Message) -> None:
        """Hand the frame to the writer thread: the socket keeps flowing while the disk works. The
        frame counts as written, and its credit goes back, once its file is in place."""
        frame = msg.header["frame"]
        expected = frame_filename(self.job.name, frame)
        if msg.header["filename"] != expected:
            raise ProtocolError(f"backend named frame {frame} {msg.header['filename']!r}; expected {expected!r}")
        path = os.path.join(self.job.out_dir, expected)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-writer")
        self._writes.append((frame, path, self._writer.submit(write_bytes_atomic, path, msg.one("exr"))))

    def _collect_writes(self, everything: bool) -> list:
        """Finish the writes that are done (all of them when ``everything``; the oldest while more than
        two wait, so memory stays bounded), in order: record, credit, FrameWritten event each.
        A failed write raises its OSError here."""
        events = []
        while self._writes and (everything or len(self._writes) > 2 or self._writes[0][2].done()):
            frame, path, future = self._writes.popleft()
            future.result()
            self.frames_written.append(frame)
            if not self.finished:
                self.client._send(encode(CREDIT, self.id, {"credits": 1}))
            events.append(FrameWritten(frame, path))
        if everything and self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        return events

    def frames_left(self) -> list[int]:
        """The frame numbers of a render job that are not written yet, in order."""
        job = self.job
        if not isinstance(job, RenderJob):
            return []
        frames = [int(f) for f in job.driver.frames]
        if job.frame_range is not None:
            frames = [f for f in frames if job.frame_range[0] <= f <= job.frame_range[1]]
        written = set(self.frames_written)
        return [f for f in frames if f not in written]

    def resume(self) -> int:
        """Re-submit the job on the client's current connection for what is still missing (the frames not
        written; a detect job whole). Returns how many frames are left (0: nothing to do, finished)."""
        self.client._forget(self.id)
        self._backlog += self._collect_writes(everything=True)  # what is on disk decides what is left
        job = self.job
        left = 0
        if isinstance(job, RenderJob):
            missing = self.frames_left()
            left = len(missing)
            if not missing:
                self.finished = True
                return 0
            job = replace(job, frame_range=(missing[0], missing[-1]))
            self._frames_before = sum(1 for f in self.frames_written if f < missing[0])
        self.id = self.client._send_job(job)
        self.resumes += 1
        self.last_heard = time.monotonic()
        return left

    def wait(self, on_event=None, idle_timeout_s: float | None = None,
             reconnect_s: float | None = None) -> "JobStream":
        """Block until the job ends. Raises the job's error. When the backend is silent for
        ``idle_timeout_s`` (default: the client's liveness time) it reconnects and resumes for up to
        ``reconnect_s`` (default: the client's), reporting ConnectionLost / Resumed to ``on_event``;
        BackendUnavailable when the backend does not come back in that window."""
        idle = idle_timeout_s if idle_timeout_s is not None else self.client.liveness_s
        window = self.client.reconnect_s if reconnect_s is None else reconnect_s
        emit = on_event or (lambda event: None)
        while not self.finished:
            for event in self.poll(200):
                emit(event)
            silent = time.monotonic() - self.last_heard
            if not self.finished and silent > idle:
                emit(ConnectionLost(self.client.address, silent, window))
                self._reconnect(window, silent, emit)
        if self.error is not None:
            raise self.error
        return self

    def _reconnect(self, window: float, silent: float, emit) -> None:
        deadline = time.monotonic() + window
        attempt_s = 0.5
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._gave_up(window, silent)
            try:
                self.client.reconnect(min(attempt_s, remaining))
                break
            except BackendUnavailable as err:
                if err.code == REFUSED:
                    raise  # a refused key will not be accepted by trying again
            attempt_s = min(attempt_s * 2, 4.0)  # back off: each fresh socket waits longer for an answer
        left = self.resume()
        emit(Resumed(self.client.address, left))
        if self.finished:
            emit(Finished(len(self.frames_written)))

    def _gave_up(self, window: float, silent: float) -> BackendUnavailable:
        done = (f"; {len(self.frames_written)} frame(s) were written to {self.job.out_dir}"
                if isinstance(self.job, RenderJob) else "")
        return BackendUnavailable(f"the backend at {self.client.address} stopped answering (silent for "
                                  f"{silent:.1f} s) and did not come back within {window:g} s{done}; "
                                  "check that it is running (`livingportrait serve`) and try again")
