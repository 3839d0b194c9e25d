"""The server's socket loop: a ZeroMQ ROUTER that runs jobs for several clients at once.

One thread owns the ROUTER socket and never does pixel work: it decodes and checks each message,
answers handshakes and pings, and hands jobs to a worker pool. Workers send their messages back
through an in-process PUSH/PULL pair that the socket thread drains (a socket is only ever used by the
thread that owns it). Frames stream under credit-based flow control: a job may have at most
``window`` frames sent and not yet acknowledged, so a slow client holds the backend to a bounded
number of frames in memory.

Liveness: every ``heartbeat_s`` the socket thread sends each running job's client a PONG carrying the
job's id; a client that stays silent for ``client_timeout_s`` (every client pings while its jobs run)
has its jobs cancelled, which frees the worker.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import itertools
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import zmq

from livingportrait_wire.codec import Message, decode, encode, error_frames, readable_id
from livingportrait_wire.errors import Cancelled, LivingPortraitError, ProtocolError
from livingportrait_wire.protocol import (CANCEL, CREDIT, FOOTAGE_WINDOW, HELLO, JOB_DETECT, PART, PING, PONG,
                                          PROTOCOL_VERSION, SUBMIT, WELCOME, ErrorCode, Limits)

from .. import __version__
from ..detectors import available_detectors
from ..engines import available_engines
from .security import ServerCurve

log = logging.getLogger("livingportrait.server")

DEFAULT_BIND = "tcp://127.0.0.1:5557"
HEARTBEAT_S = 1.0
CLIENT_TIMEOUT_S = 4.0          # heartbeats every 1 s: a vanished client is noticed within 5 s
FORGET_PEER_S = 60.0            # how long an idle client's last-seen time is kept
# Messages handled per turn of the loop before it looks at the others: a flooding client cannot
# starve the outbox, the heartbeats or the liveness checks.
BATCH = 64
_instances = itertools.count()
M_ARENA_MAX = -8  # glibc mallopt parameter


@dataclass
class _Peer:
    last_seen: float


@dataclass
class _Job:
    client: bytes
    id: str
    window: int
    cancel: threading.Event = field(default_factory=threading.Event)
    credits: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)
    parts: queue.Queue = field(default_factory=queue.Queue)  # footage parts (PART) for a detect job

    def grant(self, n: int) -> None:
        with self.lock:
            # Never more than the window: a client that grants too much cannot make us hoard frames.
            self.credits = min(self.credits + n, self.window)
            self.lock.notify_all()

    def stop(self) -> None:
        self.cancel.set()
        with self.lock:
            self.lock.notify_all()

    def add_part(self, msg: Message) -> None:
        """Keep a footage part (PART) for the job's worker; a client that ignores the window is refused."""
        if self.parts.qsize() >= FOOTAGE_WINDOW + 1:
            self.stop()
            raise LivingPortraitError(f"more than {FOOTAGE_WINDOW} footage parts sent ahead of the "
                                      "backend's acknowledgements", ErrorCode.LIMIT)
        self.parts.put(msg)

    def next_part(self) -> Message:
        """The next footage part (waiting for it); Cancelled when the job is cancelled, by its client or
        because its client fell silent."""
        while True:
            if self.cancel.is_set():
                raise Cancelled("the job was cancelled")
            try:
                return self.parts.get(timeout=0.2)
            except queue.Empty:
                continue

    def take_credit(self) -> None:
        """Block until a credit is available; Cancelled when the job is cancelled (by its client, or
        because its client fell silent)."""
        with self.lock:
            while self.credits <= 0:
                if self.cancel.is_set():
                    raise Cancelled("the job was cancelled")
                self.lock.wait(0.2)
            self.credits -= 1


class Server:
    """``Server(bind).serve(stop)`` runs until ``stop`` (a threading.Event) is set.

    ``curve``: serve only CurveZMQ clients with authorised keys (required for non-loopback binds by
    ``serve``; works on loopback too). ``heartbeat_s``, ``client_timeout_s``: see the module docstring.
    """

    def __init__(self, bind: str = DEFAULT_BIND, limits: Limits = Limits(), workers: int = 2,
                 curve: ServerCurve | None = None, heartbeat_s: float = HEARTBEAT_S,
                 client_timeout_s: float = CLIENT_TIMEOUT_S):
        self.limits = limits
        self.heartbeat_s = heartbeat_s
        self.client_timeout_s = client_timeout_s
        self.ctx = zmq.Context()
        self.auth = None
        self.router = self.ctx.socket(zmq.ROUTER)
        # LINGER 0: at shutdown nothing waits on slow or dead clients; what they miss, resume re-renders.
        self.router.setsockopt(zmq.LINGER, 0)
        # RCVHWM: a flooding client is pushed back through TCP once 100 of its messages wait (an honest
        # one has a few credits and pings in flight); nothing is dropped on the receive side.
        self.router.setsockopt(zmq.RCVHWM, 100)
        # SNDHWM: per client. Credits bound the FRAME messages (window per job), so this only caps
        # heartbeats and progress for a client that stopped reading; past it ROUTER drops, it never blocks.
        self.router.setsockopt(zmq.SNDHWM, 1000)
        # MAXMSGSIZE bounds each frame of a message (not their count, which decode checks): a buffer up
        # to twice the limit still gets a typed TOO_LARGE answer; anything bigger costs the sender its
        # connection before we allocate it.
        self.router.setsockopt(zmq.MAXMSGSIZE, 2 * max(limits.max_buffer_bytes, limits.max_header_bytes))
        if curve is not None:
            from .security import start_authenticator

            self.auth = start_authenticator(self.ctx, curve)
            self.router.curve_secretkey = curve.secret
            self.router.curve_publickey = curve.public
            self.router.curve_server = True
        try:
            self.router.bind(bind)
        except zmq.ZMQError:
            self._close_sockets()
            raise
        self.endpoint = self.router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.outbox_address = f"inproc://livingportrait-outbox-{next(_instances)}"
        self.outbox = self.ctx.socket(zmq.PULL)
        self.outbox.bind(self.outbox_address)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.jobs: dict[tuple[bytes, str], _Job] = {}
        self.jobs_lock = threading.Lock()
        self.peers: dict[bytes, _Peer] = {}
        self._next_heartbeat = 0.0
        self.welcome = {"protocol": PROTOCOL_VERSION, "server": f"livingportrait-backend {__version__}",
                        "engines": available_engines(), "detectors": available_detectors(),
                        "limits": limits.to_dict(), "heartbeat_ms": int(heartbeat_s * 1000)}

    # ---- the socket thread -------------------------------------------------------------------
    def serve(self, stop: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox, zmq.POLLIN)
        try:
            while not stop.is_set():
                for sock, _ in poller.poll(100):
                    if sock is self.outbox:
                        self._drain_outbox()
                    else:
                        self._receive()
                self._check_liveness(time.monotonic())
        finally:
            self.close()

    def _check_liveness(self, now: float) -> None:
        """Heartbeat each running job's client; cancel the jobs of clients that fell silent."""
        with self.jobs_lock:
            jobs = list(self.jobs.values())
        beat = now >= self._next_heartbeat
        if beat:
            self._next_heartbeat = now + self.heartbeat_s
        for job in jobs:
            if beat:
                self._send(job.client, encode(PONG, job.id))
            peer = self.peers.get(job.client)
            if peer is not None and not job.cancel.is_set() and now - peer.last_seen > self.client_timeout_s:
                log.warning("client %s silent for %.1f s: cancelling its job %s", job.client.hex(),
                            now - peer.last_seen, job.id)
                job.stop()
        if beat:
            busy = {job.client for job in jobs}
            for client in [c for c, p in self.peers.items() if c not in busy and now - p.last_seen > FORGET_PEER_S]:
                del self.peers[client]

    def _drain_outbox(self) -> None:
        for _ in range(BATCH):
            try:
                frames = self.outbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.router.send_multipart(frames, copy=False)

    def _receive(self) -> None:
        for _ in range(BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            client, body = frames[0].bytes, frames[1:]
            peer = self.peers.get(client)
            if peer is None:
                peer = self.peers[client] = _Peer(time.monotonic())
            peer.last_seen = time.monotonic()  # any message, even a broken one, proves the client alive
            try:
                msg = decode(body, self.limits)
            except ProtocolError as err:
                self._send(client, error_frames(readable_id(body), err.code, err.message))
                continue
            try:
                self._handle(client, msg)
            except LivingPortraitError as err:
                self._send(client, error_frames(msg.id, err.code, err.message))
            except Exception as exc:  # a bug must cost one message, not the server
                log.exception("unexpected error handling %s", msg.type)
                self._send(client, error_frames(msg.id, ErrorCode.INTERNAL, f"internal error: {exc}"))

    def _send(self, client: bytes, frames: list) -> None:
        self.router.send_multipart([client, *frames], copy=False)

    def _handle(self, client: bytes, msg: Message) -> None:
        if msg.type == HELLO:
            self._send(client, encode(WELCOME, msg.id, self.welcome))
        elif msg.type == PING:
            self._send(client, encode(PONG, msg.id))
        elif msg.type == SUBMIT:
            self._submit(client, msg)
        elif msg.type in (CANCEL, CREDIT, PART):
            job = self.jobs.get((client, msg.id))
            if job is None:
                # A late credit for a job that just ended is normal; a cancel deserves an answer.
                if msg.type == CANCEL:
                    raise LivingPortraitError(f"no running job with id {msg.id!r}", ErrorCode.UNKNOWN_JOB)
                return
            if msg.type == CANCEL:
                job.stop()
            elif msg.type == PART:
                job.add_part(msg)
            else:
                job.grant(msg.header["credits"])

    def _submit(self, client: bytes, msg: Message) -> None:
        from .job_requests import credit_window

        with self.jobs_lock:
            if (client, msg.id) in self.jobs:
                raise LivingPortraitError(f"a job with id {msg.id!r} is already running", ErrorCode.DUPLICATE_JOB)
            mine = sum(1 for c, _ in self.jobs if c == client)
            if mine >= self.limits.max_jobs_per_client:
                raise LivingPortraitError(f"this client already runs {mine} jobs; the limit is "
                                          f"{self.limits.max_jobs_per_client}: wait for one to finish",
                                          ErrorCode.LIMIT)
            job = _Job(client, msg.id, credit_window(msg, self.limits))
            job.credits = job.window
            self.jobs[(client, msg.id)] = job
        self.pool.submit(self._run_job, job, msg)

    # ---- worker threads ----------------------------------------------------------------------
    def _run_job(self, job: _Job, msg: Message) -> None:
        push = self.ctx.socket(zmq.PUSH)
        # LINGER 0: a finished job's socket never waits. SNDHWM default: if the socket thread falls behind,
        # a worker blocks on send (backpressure), and credits already bound what a job can queue.
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self.outbox_address)

        def send(frames: list) -> None:
            push.send_multipart([job.client, *frames], copy=False)

        try:
            if job.cancel.is_set():  # cancelled (or its client vanished) while it waited for a worker
                raise Cancelled("the job was cancelled")
            if msg.header["kind"] == JOB_DETECT:
                from .detect_job import run_detect_job
                run_detect_job(msg, self.limits, job.cancel, send, job.next_part)
            else:
                from .render_job import run_render_job
                run_render_job(msg, self.limits, job.cancel, job.take_credit, send)
        except Cancelled as err:
            send(error_frames(job.id, ErrorCode.CANCELLED, err.message))
        except LivingPortraitError as err:
            send(error_frames(job.id, err.code, err.message))
        except Exception as exc:
            log.exception("job %s failed", job.id)
            send(error_frames(job.id, ErrorCode.INTERNAL, f"internal error: {exc}"))
        finally:
            with self.jobs_lock:
                self.jobs.pop((job.client, job.id), None)
            push.close()
            _return_free_memory()

    def close(self) -> None:
        with self.jobs_lock:
            for job in self.jobs.values():
                job.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.outbox.close(0)
        self._close_sockets()

    def _close_sockets(self) -> None:
        self.router.close(0)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _return_free_memory() -> None:
    """After a job: collect its cyclic garbage now, then give freed heap pages back to the system.
    A finished job's renderer sits in a reference cycle (its progress closure holds it), so without the
    collection its portrait and engine buffers wait for a full GC pass; the soak saw idle memory wander
    by ~20 MB without it, flat with it."""
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def limit_malloc_arenas(arenas: int = 1) -> None:
    """Cap glibc's heap arenas (call before threads start). Each thread otherwise gets its own arena, and
    the holes left between long-lived blocks in each make a busy backend's idle resident memory wander
    (soak: 134-170 MiB); one arena keeps it steadier. Allocation is serialised by the GIL for most of
    our work anyway."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, arenas)
