"""A running job on a backend connection: its messages in, its frames onto disk, its credits back.

Made to be driven two ways: ``JobStream.poll(0)`` from a UI timer (never blocks), or
``JobStream.wait()`` in a batch process. Each FRAME's bytes are written atomically into the output
folder under the name the client itself computes (the server's file name is checked, never trusted),
and a credit goes back for every frame written. When the backend falls silent for the connection's
liveness time, ``wait()`` reconnects (``BackendClient.reconnect_within``) and re-submits the job for the
frames not yet written (frames are deterministic, so the files end up identical to an uninterrupted
run), or gives up with BackendUnavailable.

The stream uses only the connection's public face: ``send_job``, ``next_message``, ``forget``, ``send``,
``send_nowait``, ``heartbeat``, ``reconnect_within``, ``last_heard`` and its settings.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from .codec import Message, encode, error_from
from .errors import BackendUnavailable, Cancelled, LivingPortraitError, ProtocolError
from .events import ConnectionLost, Finished, FrameWritten, ProgressEvent, Resumed
from .frame_writer import FrameWriter
from .jobs import DetectJob, RenderJob
from .landmarks import LandmarkSequence
from .naming import frame_filename
from .protocol import ACCEPTED, CANCEL, CREDIT, DONE, ERROR, FOOTAGE_WINDOW, FRAME, PROGRESS, RESULT, ErrorCode

if TYPE_CHECKING:
    from .connection import BackendClient


class JobStream:
    """A running job. ``poll`` advances it without blocking longer than asked; ``wait`` to the end."""

    def __init__(self, client: BackendClient, job: RenderJob | DetectJob):
        self.client = client
        if isinstance(job, DetectJob) and job.video_path is not None:
            # Parts no bigger than the backend takes in one buffer.
            limit = int((client.info or {}).get("limits", {}).get("max_buffer_bytes", job.part_bytes))
            job = replace(job, part_bytes=max(1, min(job.part_bytes, limit)))
        self.job = job
        self._parts_total = job.video_parts() if isinstance(job, DetectJob) else 0
        self.parts_sent = 1  # part 0 travels with the SUBMIT
        self.id = client.send_job(job)
        self.total = 0
        self.frames_written: list[int] = []
        self.stage = "queued"
        self.stage_done = 0
        self.stage_total = 0
        self.finished = False
        self.cancel_sent = False
        self._writer = FrameWriter()  # the socket keeps flowing while the disk works
        self._backlog: list = []  # events of writes finished outside poll()
        self.error: LivingPortraitError | None = None
        self.result: LandmarkSequence | None = None
        self.last_heard = time.monotonic()
        self.resumes = 0
        self._send_parts(0)
        self.reconnecting = False  # True while wait() tries to reach a backend that went away
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
            self.client.send_nowait(encode(CANCEL, self.id))

    def poll(self, timeout_ms: int = 0) -> list:
        """Handle what has arrived (waiting at most ``timeout_ms`` for the first message); returns events.
        Also sends the client's heartbeat when one is due."""
        events, self._backlog = self._backlog, []
        wait = timeout_ms
        while not self.finished:
            self.client.heartbeat()
            msg = self.client.next_message(self.id, wait)
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
        # Only the job's own messages prove it alive (the backend beats a PONG for every job it holds,
        # queued ones included): a backend restarted on the same address answers our pings but has
        # never heard of the job, and must not keep it waiting forever.
        if self.finished:
            self.client.forget(self.id)
        return [e for e in events if e is not None]

    def _handle(self, msg: Message):
        if msg.type == ACCEPTED:
            self.total = self._frames_before + msg.header["frames"]
        elif msg.type == PROGRESS:
            self.stage, self.stage_done, self.stage_total = (msg.header["stage"], msg.header["done"],
                                                            msg.header["total"])
            if self.stage == "upload":
                self._send_parts(self.stage_done)
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
            self.error = error_from(msg)
            if self.cancel_sent and msg.header["code"] == ErrorCode.UNKNOWN_JOB:
                # Our cancel crossed the job's last messages: the backend had just finished it.
                self.error = Cancelled("the job was cancelled (it had just finished on the backend)")
            return self.error
        return None  # PONG: the backend's heartbeat for this job

    def _send_parts(self, stored: int) -> None:
        """Send the footage's next parts, keeping at most FOOTAGE_WINDOW beyond the ``stored`` ones."""
        while self.parts_sent < self._parts_total and self.parts_sent - stored < FOOTAGE_WINDOW:
            self.client.send(self.job.part_message(self.id, self.parts_sent), copy=False)
            self.parts_sent += 1

    def _write_frame(self, msg: Message) -> None:
        """Hand the frame to the writer thread: the socket keeps flowing while the disk works. The
        frame counts as written, and its credit goes back, once its file is in place."""
        frame = msg.header["frame"]
        expected = frame_filename(self.job.name, frame)
        if msg.header["filename"] != expected:
            raise ProtocolError(f"backend named frame {frame} {msg.header['filename']!r}; expected {expected!r}")
        self._writer.write(frame, os.path.join(self.job.out_dir, expected), msg.one("exr"))

    def _collect_writes(self, everything: bool) -> list:
        """The frames whose files are in place (see FrameWriter.finished), in order: record, credit,
        FrameWritten event each. A failed write raises its OSError here."""
        events = []
        for frame, path in self._writer.finished(everything):
            self.frames_written.append(frame)
            if not self.finished:
                self.client.send(encode(CREDIT, self.id, {"credits": 1}))
            events.append(FrameWritten(frame, path))
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
        self.client.forget(self.id)
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
        self.id = self.client.send_job(job)
        self.parts_sent = 1
        self._send_parts(0)  # a detect job's footage goes again from its first part
        self.resumes += 1
        self.last_heard = time.monotonic()
        return left

    def wait(self, on_event=None, idle_timeout_s: float | None = None,
             reconnect_s: float | None = None, tick=None, poll_ms: int = 200) -> "JobStream":
        """Block until the job ends. Raises the job's error. When the backend is silent for
        ``idle_timeout_s`` (default: the client's liveness time) it reconnects and resumes for up to
        ``reconnect_s`` (default: the client's), reporting ConnectionLost / Resumed to ``on_event``;
        BackendUnavailable when the backend does not come back in that window.

        ``tick()``, when given, runs before every poll (at least every ``poll_ms``): the caller's
        chance to ``cancel()`` the stream or to raise (a watchdog that knows the backend is gone)."""
        idle = idle_timeout_s if idle_timeout_s is not None else self.client.liveness_s
        window = self.client.reconnect_s if reconnect_s is None else reconnect_s
        emit = on_event or (lambda event: None)
        while not self.finished:
            if tick is not None:
                tick()
            for event in self.poll(poll_ms):
                emit(event)
            silent = time.monotonic() - self.last_heard
            if not self.finished and silent > idle:
                emit(ConnectionLost(self.client.address, silent, window))
                self._reconnect(window, silent, emit, tick)
        if self.error is not None:
            raise self.error
        return self

    def _reconnect(self, window: float, silent: float, emit, tick=None) -> None:
        """Reconnect for up to ``window`` s, in slices so that ``tick`` still runs (a cancel or a
        watchdog is not held up by a backend that is away), then resume the job."""
        deadline = time.monotonic() + window
        self.reconnecting = True
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._gave_up(window, silent)
                if tick is not None:
                    tick()
                if self.client.reconnect_within(remaining if tick is None else min(remaining, 2.0)):
                    break
        finally:
            self.reconnecting = False
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
