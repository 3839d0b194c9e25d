"""The connection to a backend: one DEALER socket, the handshake, heartbeats, and reconnecting.

``BackendClient(address)`` connects (zmq is imported only then); ``submit(job)`` shakes hands if needed
and returns the job's ``JobStream``. Messages for several jobs share the socket: each job's are kept
under its id until its stream takes them (``next_message``).

Liveness: while a stream is polled the client pings every ``heartbeat_s``; anything from the backend
(its per-job heartbeats, the answers to the pings) proves it alive (``last_heard``). Silent for
``liveness_s`` means dead: a stream then calls ``reconnect_within(reconnect_s)``, which opens fresh
sockets with growing waits until a handshake succeeds or the window ends. A refused CurveZMQ key is
final and reported at once (code REFUSED).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from .codec import Message, decode, encode, error_from
from .curve_keys import load_key_pair, load_public_key
from .errors import BackendUnavailable, BadInput, ProtocolError
from .frame_writer import ensure_output_folder
from .job_stream import JobStream
from .jobs import DetectJob, RenderJob
from .protocol import ERROR, HELLO, PING, SERVER_TYPES, WELCOME, Limits

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

    def reconnect_within(self, window_s: float) -> bool:
        """Reconnect with growing waits (0.5, 1, 2, 4, 4 ... s per attempt) for up to ``window_s``: True
        once a handshake succeeds, False when the window ran out. A refused key raises at once."""
        deadline = time.monotonic() + window_s
        attempt_s = 0.5
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.reconnect(min(attempt_s, remaining))
                return True
            except BackendUnavailable as err:
                if err.code == REFUSED:
                    raise  # a refused key will not be accepted by trying again
            attempt_s = min(attempt_s * 2, 4.0)  # back off: each fresh socket waits longer for an answer

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

    def send(self, frames: list, copy: bool = True) -> None:
        """Send one message; BackendUnavailable when the backend takes nothing for ``timeout_s``."""
        try:
            self.sock.send_multipart(frames, copy=copy)
        except self._zmq.Again:
            raise self._unavailable("sending") from None

    def send_nowait(self, frames: list) -> bool:
        """Send one message if the socket takes it at once (never blocks); False when it did not."""
        try:
            self.sock.send_multipart(frames, self._zmq.NOBLOCK)
            return True
        except self._zmq.Again:
            return False  # the backend is not taking messages; liveness will tell

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
            self.send_nowait(encode(PING, self._heartbeat_id))

    def _request(self, msg_type: str, expect: str, fields: dict | None = None,
                 timeout_s: float | None = None) -> Message:
        req_id = uuid.uuid4().hex
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        self.send(encode(msg_type, req_id, fields))
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
                    raise error_from(msg)
                if msg.type != expect:
                    raise ProtocolError(f"backend answered {msg.type} to {msg_type}")
                return msg
            self._keep(msg)

    def handshake(self, timeout_s: float | None = None) -> dict:
        """Say hello; returns the backend's WELCOME fields (protocol, engines, detectors, limits)."""
        msg = self._request(HELLO, WELCOME, {"heartbeat_ms": int(self.heartbeat_s * 1000)}, timeout_s)
        self.info = {k: v for k, v in msg.header.items() if k not in ("v", "type", "id", "buffers")}
        return self.info

    def submit(self, job: RenderJob | DetectJob) -> JobStream:
        """Start ``job`` (shaking hands first if this connection has not); its stream follows it."""
        if self.info is None:
            self.handshake()
        if isinstance(job, RenderJob):
            ensure_output_folder(job.out_dir)
        return JobStream(self, job)

    def send_job(self, job: RenderJob | DetectJob) -> str:
        """Send ``job``'s SUBMIT under a fresh id, whose messages are kept for ``next_message``."""
        job_id = uuid.uuid4().hex
        message = job.message(job_id)
        self._pending[job_id] = []
        self.send(message, copy=False)
        return job_id

    def forget(self, job_id: str) -> None:
        """Stop keeping messages for ``job_id`` (its job ended or was re-submitted)."""
        self._pending.pop(job_id, None)

    def next_message(self, job_id: str, timeout_ms: int) -> Message | None:
        """The next message for ``job_id`` (waiting at most ``timeout_ms``), or None. Messages for other
        jobs that arrive meanwhile are kept for them."""
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
