"""Running a backend job from Blender without freezing it.

A ``JobDriver`` owns one job stream. Interactively, a modal operator calls ``step()`` on a window
timer: it only takes what has already arrived (``poll(0)``), so the UI never waits on the socket.
In background mode (``blender -b``) timers never fire while a script runs, so ``run_blocking()`` waits
for the job instead. Both paths feed the same handler and the same progress state the panel draws.
"""
import time

import bpy

from .wire.errors import BackendUnavailable, Cancelled, LivingPortraitError

TIMER_INTERVAL_S = 0.1


def job_state(context=None):
    """The session's job state (progress, message, cancel flag) that the panel and status bar draw."""
    return (context or bpy.context).window_manager.living_portrait_job


def redraw_ui(context=None) -> None:
    wm = (context or bpy.context).window_manager
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"NODE_EDITOR", "CLIP_EDITOR", "STATUSBAR", "PREFERENCES"}:
                area.tag_redraw()


class JobDriver:
    """Feeds one job stream's events to ``handler`` and mirrors progress into the job state.

    ``handler`` has ``on_events(events)`` (called with what arrived) and ``on_done(stream)`` (called
    once when the job succeeded). A job silent for ``silence_timeout_s`` is reported lost.
    """

    def __init__(self, stream, handler, kind: str, silence_timeout_s: float, context=None):
        self.stream, self.handler, self.kind = stream, handler, kind
        self.silence_timeout_s = silence_timeout_s
        self.cancel_sent = False
        state = job_state(context)
        state.running, state.kind, state.progress = True, kind, 0.0
        state.cancel_requested = False
        state.message = f"{kind}: waiting for the backend"

    def step(self) -> bool:
        """Take what has arrived without waiting; True once the job has ended (raises if it failed)."""
        state = job_state()
        if state.cancel_requested and not self.cancel_sent and not self.stream.finished:
            self.stream.cancel()  # once: a second CANCEL could overtake the backend's answer to the first
            self.cancel_sent = True
        events = self.stream.poll(timeout_ms=0)
        if events:
            self.handler.on_events(events)
        elif time.monotonic() - self.stream.last_heard > self.silence_timeout_s and not self.stream.finished:
            self.stream.cancel()
            self._end(f"{self.kind}: the backend went silent")
            raise BackendUnavailable(f"the backend sent nothing for {self.silence_timeout_s:.0f} s; check that it "
                                     "is still running (see its log), then try again")
        state.progress = float(self.stream.progress)
        state.message = f"{self.kind}: {state.progress * 100:.0f}%"
        if not self.stream.finished:
            return False
        self._finish()
        return True

    def run_blocking(self) -> None:
        """Wait for the whole job (background mode); raises LivingPortraitError on failure."""
        state = job_state()

        def on_event(event):
            self.handler.on_events([event])
            state.progress = float(self.stream.progress)

        try:
            self.stream.wait(on_event=on_event, reconnect_s=self.silence_timeout_s)
        except Exception as err:
            self._end(f"{self.kind}: {getattr(err, 'message', err)}")
            raise
        self._finish()

    def _finish(self) -> None:
        try:
            if self.stream.error is not None:
                raise self.stream.error
            self.handler.on_done(self.stream)
        except Exception as err:  # the panel must never stay "running" after a failure
            self._end(f"{self.kind}: {getattr(err, 'message', err)}")
            raise
        job_state().progress = 1.0
        self._end(f"{self.kind}: done")

    def _end(self, message: str) -> None:
        state = job_state()
        state.running = False
        state.message = message
        redraw_ui()


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
            driver = self.start_job(context)
            driver.run_blocking()
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
