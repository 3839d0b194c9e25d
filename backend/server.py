"""The backend server: a ZeroMQ ROUTER that runs jobs for several clients at once.

One thread owns the ROUTER socket and never does pixel work: it decodes and checks each message,
answers handshakes and pings, and hands jobs to a worker pool. Workers send their messages back
through an in-process PUSH/PULL pair that the socket thread drains (a socket is only ever used by the
thread that owns it). Frames stream under credit-based flow control: a job may have at most
``window`` frames sent and not yet acknowledged, so a slow client holds the backend to a bounded
number of frames in memory.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import zmq

from livingportrait_wire.codec import Message, decode, encode, error_frames
from livingportrait_wire.errors import Cancelled, LivingPortraitError, ProtocolError
from livingportrait_wire.protocol import (ACCEPTED, CANCEL, CREDIT, DONE, FRAME, HELLO, JOB_DETECT, PING,
                                          PONG, PROGRESS, PROTOCOL_VERSION, SUBMIT, WELCOME, ErrorCode,
                                          Limits)

from . import __version__
from .detectors import available_detectors
from .engines import available_engines

log = logging.getLogger("livingportrait.server")

DEFAULT_BIND = "tcp://127.0.0.1:5557"
_instances = itertools.count()


def is_loopback_bind(address: str) -> bool:
    """True for tcp://127.x.x.x, tcp://[::1], tcp://localhost and ipc:// / inproc:// endpoints."""
    parsed = urllib.parse.urlsplit(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Job:
    client: bytes
    id: str
    window: int
    cancel: threading.Event = field(default_factory=threading.Event)
    credits: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)

    def grant(self, n: int) -> None:
        with self.lock:
            self.credits += n
            self.lock.notify_all()

    def take_credit(self) -> None:
        """Block until a credit is available (or the job is cancelled)."""
        with self.lock:
            while self.credits <= 0:
                if self.cancel.is_set():
                    raise Cancelled("the job was cancelled")
                self.lock.wait(0.2)
            self.credits -= 1


class Server:
    """``Server(bind).serve(stop)`` runs until ``stop`` (a threading.Event) is set."""

    def __init__(self, bind: str = DEFAULT_BIND, limits: Limits = Limits(), workers: int = 2):
        self.limits = limits
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        # Frames are bounded by credits; a generous HWM only guards against a client flooding us.
        self.router.setsockopt(zmq.RCVHWM, 1000)
        self.router.setsockopt(zmq.SNDHWM, 1000)
        self.router.setsockopt(zmq.MAXMSGSIZE, limits.max_buffer_bytes)
        self.router.bind(bind)
        self.endpoint = self.router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.outbox_address = f"inproc://livingportrait-outbox-{next(_instances)}"
        self.outbox = self.ctx.socket(zmq.PULL)
        self.outbox.bind(self.outbox_address)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.jobs: dict[tuple[bytes, str], _Job] = {}
        self.jobs_lock = threading.Lock()
        self.welcome = {"protocol": PROTOCOL_VERSION, "server": f"livingportrait-backend {__version__}",
                        "engines": available_engines(), "detectors": available_detectors(),
                        "limits": limits.to_dict()}

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
        finally:
            self.close()

    def _drain_outbox(self) -> None:
        while True:
            try:
                frames = self.outbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.router.send_multipart(frames, copy=False)

    def _receive(self) -> None:
        while True:
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            client, body = frames[0].bytes, frames[1:]
            try:
                msg = decode(body, self.limits)
            except ProtocolError as err:
                self._send(client, error_frames(_peek_id(body), err.code, err.message))
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
        elif msg.type in (CANCEL, CREDIT):
            job = self.jobs.get((client, msg.id))
            if job is None:
                # A late credit for a job that just ended is normal; a cancel deserves an answer.
                if msg.type == CANCEL:
                    raise LivingPortraitError(f"no running job with id {msg.id!r}", ErrorCode.UNKNOWN_JOB)
                return
            if msg.type == CANCEL:
                job.cancel.set()
                with job.lock:
                    job.lock.notify_all()
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
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self.outbox_address)

        def send(frames: list) -> None:
            push.send_multipart([job.client, *frames], copy=False)

        try:
            if msg.header["kind"] == JOB_DETECT:
                from .detect_job import run_detect_job
                run_detect_job(msg, self.limits, job.cancel, send)
            else:
                self._render(job, msg, send)
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

    def _render(self, job: _Job, msg: Message, send) -> None:
        from .job_requests import render_spec_from_message
        from .frame_renderer import FrameRenderer

        def progress(stage: str, done: int, total: int) -> None:
            send(encode(PROGRESS, job.id, {"stage": stage, "done": done, "total": total}))

        spec = render_spec_from_message(msg, self.limits)
        render = FrameRenderer(spec, progress, job.cancel)
        send(encode(ACCEPTED, job.id, {"frames": len(render.frames)}))
        render.prepare()
        total = len(render.frames)
        for i, frame in enumerate(render.frames):
            data = render.encode(frame)
            job.take_credit()
            send(encode(FRAME, job.id, {"frame": frame, "filename": render.filename(frame)},
                        [({"name": "exr", "kind": "bytes", "encoding": "exr", "nbytes": len(data)}, data)]))
            progress("render", i + 1, total)
        send(encode(DONE, job.id, {"frames": total}))

    def close(self) -> None:
        with self.jobs_lock:
            for job in self.jobs.values():
                job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.outbox.close(0)
        self.router.close(0)
        self.ctx.term()


def _peek_id(body: list) -> str:
    """The id of a message that failed to decode, when one can be read, so the client can match it."""
    import json

    try:
        header = json.loads(bytes(getattr(body[0], "buffer", body[0])).decode("utf-8"))
        msg_id = header.get("id") if isinstance(header, dict) else None
        return msg_id if isinstance(msg_id, str) and 0 < len(msg_id) <= 128 else "-"
    except Exception:
        return "-"
