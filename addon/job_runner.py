"""Running a backend job from Blender without freezing it.

Interactively, a worker thread owns the job's socket from connect to the last frame: it shakes hands,
submits, polls, writes each EXR and sends credits, and queues what happened. A modal operator's window
timer calls ``JobDriver.step()``, which only drains that queue and updates Blender (progress, the
compositor) on the main thread, so the UI never waits on the network or the disk. In background mode
(``blender -b``) timers never fire while a script runs, so ``run_blocking()`` does the same job inline.
The worker never touches bpy; Blender data is only read and written on the main thread.
"""
import queue
import threading
import time

import bpy

from . import connection, preferences
from .wire.client import FrameWritten
from .wire.errors import BackendUnavailable, Cancelled, LivingPortraitError

TIMER_INTERVAL_S = 0.1
POLL_MS = 100  # the worker's wait per poll: also how soon it notices a cancel


def job_state(context=None):
    """The session's job state (progress, message, cancel flag) that the panel and status bar draw."""
    return (context or bpy.context).window_manager.living_portrait_job


def redraw_ui(context=None) -> None:
    wm = (context or bpy.context).window_manager
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"NODE_EDITOR", "CLIP_EDITOR", "STATUSBAR", "PREFERENCES"}:
                area.tag_redraw()


def _run_stream(connect, job, silence_timeout_s, on_events, cancelled=None):
    """Connect, submit ``job`` and follow it to the end; returns the job's result.

    ``on_events(events, progress)`` gets what each poll produced. Without ``cancelled`` (background
    mode) the stream's own wait runs it, reconnecting and resuming for up to ``silence_timeout_s`` if
    the backend goes away. With it (the worker thread), ``cancelled()`` is asked between polls and
    ``silence_timeout_s`` of silence raises BackendUnavailable. Raises the job's error or Cancelled.
    """
    client, _info = connect()
    try:
        stream = client.submit(job)
        if cancelled is None:
            stream.wait(on_event=lambda event: on_events([event], float(stream.progress)),
                        reconnect_s=silence_timeout_s)
            return stream.result
        cancel_sent = False
        while not stream.finished:
            if not cancel_sent and cancelled():
                stream.cancel()  # once: a second CANCEL could overtake the backend's answer to the first
                cancel_sent = True
            events = stream.poll(POLL_MS)
            if events:
                on_events(events, float(stream.progress))
            elif time.monotonic() - stream.last_heard > silence_timeout_s:
                raise BackendUnavailable(f"the backend at {client.address} sent nothing for "
                                         f"{silence_timeout_s:.0f} s; check that it is still running "
                                         "(see its log), then try again")
        if stream.error is not None:
            raise stream.error
        return stream.result
    finally:
        client.close()


class JobDriver:
    """One backend job: ``connect`` (from connection.connector) and ``job`` (a RenderJob/DetectJob).

    ``handler`` has ``on_events(events)`` (main thread, with what arrived) and ``on_done(result)``
    (main thread, once, when the job succeeded). Progress and messages go to the job state.
    """

    def __init__(self, connect, job, handler, kind: str, silence_timeout_s: float, context=None):
        self.connect, self.job, self.handler, self.kind = connect, job, handler, kind
        self.silence_timeout_s = silence_timeout_s
        self.frames_written = 0
        self._queue = queue.SimpleQueue()
        self._cancel = threading.Event()
        state = job_state(context)
        state.running, state.kind, state.progress = True, kind, 0.0
        state.cancel_requested = False
        state.message = f"{kind}: connecting"

    # ---- interactive: a worker thread, drained by a timer ---------------------------------------
    def start(self) -> None:
        """Start the worker thread (it connects, submits and follows the job)."""
        threading.Thread(target=self._work, name=f"Living Portrait {self.kind}", daemon=True).start()

    def _work(self) -> None:
        try:
            result = _run_stream(self.connect, self.job, self.silence_timeout_s,
                                 lambda events, progress: self._queue.put(("events", events, progress)),
                                 self._cancel.is_set)
            self._queue.put(("done", result))
        except Exception as err:  # handed to the main thread, which reports it
            self._queue.put(("failed", err))

    def step(self) -> bool:
        """Apply what the worker queued, without waiting; True once the job has ended (raises if it
        failed or was cancelled)."""
        state = job_state()
        if state.cancel_requested:
            self._cancel.set()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item[0] == "events":
                self._take(item[1], item[2])
            elif item[0] == "done":
                self._finish(item[1])
                return True
            else:
                self._fail(item[1])

    # ---- background: the same job inline -------------------------------------------------------
    def run_blocking(self) -> None:
        """Run the whole job on this thread (background mode); raises LivingPortraitError on failure."""
        try:
            result = _run_stream(self.connect, self.job, self.silence_timeout_s, self._take)
        except Exception as err:
            self._fail(err)
        else:
            self._finish(result)

    # ---- shared, main thread -----------------------------------------------------------------------
    def _take(self, events, progress: float) -> None:
        self.frames_written += sum(1 for e in events if isinstance(e, FrameWritten))
        self.handler.on_events(events)
        state = job_state()
        state.progress = progress
        state.message = f"{self.kind}: {progress * 100:.0f}%"

    def _finish(self, result) -> None:
        try:
            self.handler.on_done(result)
        except Exception as err:
            self._fail(err)
        job_state().progress = 1.0
        self._end(f"{self.kind}: done")

    def _fail(self, err: Exception):
        """End the job in the UI and raise ``err`` (a file system error becomes a readable one)."""
        if isinstance(err, OSError):
            err = LivingPortraitError(f"{err.filename or 'output'}: {err.strerror or err}; check that the "
                                      "output folder exists, is writable and has free space")
        elif not isinstance(err, LivingPortraitError):
            # A failure applying the result to Blender data is a report, never a traceback.
            err = LivingPortraitError(f"{self.kind} failed: {err}")
        self._end(f"{self.kind}: {getattr(err, 'message', err)}")
        raise err

    def _end(self, message: str) -> None:
        state = job_state()
        state.running = False
        state.message = message
        redraw_ui()


def job_driver(context, job, handler, kind: str) -> JobDriver:
    """A driver for ``job`` on the backend the preferences name, with their silence timeout."""
    return JobDriver(connection.connector(context), job, handler, kind,
                     preferences.get(context).silence_timeout, context)


class StreamOperatorMixin:
    """Shared ``execute`` (blocking: scripts, ``blender -b``) and ``invoke``/``modal`` (non-blocking)
    for operators that run a backend job. Subclasses define ``start_job(context) -> JobDriver``."""

    _driver = None
    _timer = None

    @classmethod
    def poll(cls, context):
        return not job_state(context).running

    def execute(self, context):
        try:
            self.start_job(context).run_blocking()
        except LivingPortraitError as err:
            self.report({"ERROR"}, err.message)
            return {"CANCELLED"}
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._driver = self.start_job(context)
        except LivingPortraitError as err:
            self.report({"ERROR"}, err.message)
            return {"CANCELLED"}
        self._driver.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            job_state(context).cancel_requested = True
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = self._driver.step()
        except Cancelled:
            self.report({"WARNING"}, f"{self._driver.kind} cancelled")
            return self._stop(context, {"CANCELLED"})
        except LivingPortraitError as err:
            self.report({"ERROR"}, err.message)
            return self._stop(context, {"CANCELLED"})
        except Exception as err:  # a bug: stop the timer rather than fail on every tick
            self.report({"ERROR"}, f"{self._driver.kind} failed: {err}")
            return self._stop(context, {"CANCELLED"})
        redraw_ui(context)
        if done:
            self.report({"INFO"}, job_state(context).message)
            return self._stop(context, {"FINISHED"})
        return {"PASS_THROUGH"}

    def _stop(self, context, result):
        context.window_manager.event_timer_remove(self._timer)
        state = job_state(context)
        state.running = False
        redraw_ui(context)
        return result
