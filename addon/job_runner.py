"""Running a backend job from Blender without freezing it: one loop for interactive and background runs.

``_run_jobs`` is the loop: connect, submit each job, follow it to the end with ``JobStream.wait`` (which
reconnects and resumes when the backend goes away for a moment), asking between polls whether the
artist cancelled and whether the add-on's own backend process has exited (then the job fails at once,
with its exit code). Interactively a worker thread runs it and queues what happened; a modal operator's
window timer calls ``JobDriver.step()``, which only drains that queue and updates Blender on the main
thread. In background mode (``blender -b``) timers never fire while a script runs, so
``run_blocking()`` runs the same loop inline, printing each stage. Either way one cancel flag stops it.
The loop never touches bpy; Blender data is only read and written on the main thread.
"""
import queue
import sys
import threading
import time

import bpy

from . import connection, local_backend, preferences
from .ui_text import for_artist
from .wire.client import ConnectionLost, FrameWritten, ProgressEvent, Resumed
from .wire.errors import BackendUnavailable, Cancelled, LivingPortraitError
from .wire.events import stage_text, stream_stage_text

TIMER_INTERVAL_S = 0.1
POLL_MS = 100  # the loop's wait per poll: also how soon it notices a cancel or a dead local backend
PRINT_INTERVAL_S = 2.0  # background runs print their stage at most this often (and on each change)


def job_state(context=None):
    """The session's job state (progress, message, cancel flag) that the panel and status bar draw."""
    return (context or bpy.context).window_manager.living_portrait_job


def redraw_ui(context=None) -> None:
    wm = (context or bpy.context).window_manager
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"NODE_EDITOR", "CLIP_EDITOR", "STATUSBAR", "PREFERENCES", "VIEW_3D"}:
                area.tag_redraw()


def _run_jobs(connect, jobs, silence_timeout_s, on_events, cancelled, counts=None):
    """Connect, then submit each of ``jobs`` in turn and follow it to its end; returns their results.

    A job may be a callable that makes it (called here, off Blender's main thread: reading footage
    files happens there). ``on_events(events, progress, text)`` gets what each poll produced, the
    overall progress (0..1) and the stage line. ``cancelled()`` is asked before every poll: once true,
    CANCEL goes to the backend (whose answer ends the job with Cancelled); while the backend is away,
    a cancel ends the job at once. The backend being silent for its liveness time means reconnecting
    and resuming for up to ``silence_timeout_s``. ``counts``: each job's frame count, for one
    "Detecting n/N" over several jobs. Raises the job's error, Cancelled or BackendUnavailable.
    """
    client, _info = connect()
    watchdog = connection.local_watchdog(client.address)
    total = sum(counts) if counts else 0
    results = []
    try:
        for index, job in enumerate(jobs):
            if cancelled():
                raise Cancelled("the job was cancelled")
            if callable(job):
                job = job()
            stream = client.submit(job)
            before = sum(counts[:index]) if counts else 0

            def text():
                if counts and stream.stage == "detect":
                    return stage_text("detect", before + stream.stage_done, total)
                return stream_stage_text(stream)

            def progress():
                if counts:
                    return min(1.0, (before + stream.stage_done) / max(total, 1))
                return float(stream.progress)

            def tick():
                if cancelled():
                    if stream.reconnecting:
                        raise Cancelled("the job was cancelled while the backend was away")
                    if not stream.cancel_sent:
                        stream.cancel()  # once: a second CANCEL could overtake the answer to the first
                watchdog()

            stream.wait(on_event=lambda event: on_events([event], progress(), text()),
                        reconnect_s=silence_timeout_s, tick=tick, poll_ms=POLL_MS)
            results.append(stream.result)
        return results
    finally:
        client.close()


class JobDriver:
    """Backend jobs run one after another: ``connect`` (from connection.connector) and ``jobs`` (RenderJob /
    DetectJob objects, or callables that make them off the main thread; ``counts`` as for _run_jobs).

    ``handler`` has ``on_events(events)`` (main thread, with what arrived) and ``on_done(results)``
    (main thread, once, with each job's result when all succeeded). Progress and the stage line go to
    the job state, which the panel and the status bar draw.
    """

    def __init__(self, connect, jobs, handler, kind: str, silence_timeout_s: float, context=None,
                 counts=None):
        self.connect, self.jobs, self.handler, self.kind = connect, list(jobs), handler, kind
        self.counts = counts
        self.silence_timeout_s = silence_timeout_s
        self.frames_written = 0
        self.resumed = 0  # how often the job reconnected and resumed after the backend went away
        self.reports: list[tuple[str, str]] = []  # (level, text) for the operator to report at the end
        self._queue = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._printed = ("", 0.0)
        state = job_state(context)
        state.running, state.kind, state.progress = True, kind, 0.0
        state.cancel_requested = False
        state.message = f"{kind}: connecting"

    def cancel(self) -> None:
        """Stop the job (what Esc, the Cancel button and Ctrl-C do); safe from any thread."""
        self._cancel.set()

    # ---- interactive: a worker thread, drained by a timer ---------------------------------------
    def start(self) -> None:
        """Start the worker thread (it connects, submits and follows the jobs)."""
        threading.Thread(target=self._work, name=f"Living Portrait {self.kind}", daemon=True).start()

    def _work(self) -> None:
        try:
            results = _run_jobs(self.connect, self.jobs, self.silence_timeout_s,
                                lambda events, progress, text: self._queue.put(("events", events, progress, text)),
                                self._cancel.is_set, self.counts)
            self._queue.put(("done", results))
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
                self._take(*item[1:])
            elif item[0] == "done":
                self._finish(item[1])
                return True
            else:
                self._fail(item[1])

    # ---- background: the same loop inline --------------------------------------------------------
    def run_blocking(self) -> None:
        """Run the whole job on this thread (background mode, scripts); raises LivingPortraitError on
        failure. Ctrl-C cancels it and still leaves the job state ended."""
        def cancelled():
            return self._cancel.is_set() or job_state().cancel_requested

        try:
            results = _run_jobs(self.connect, self.jobs, self.silence_timeout_s, self._take, cancelled,
                                self.counts)
        except KeyboardInterrupt:
            self._end(f"{self.kind}: cancelled")
            raise
        except Exception as err:
            self._fail(err)
        else:
            self._finish(results)

    # ---- shared, main thread -----------------------------------------------------------------------
    def _take(self, events, progress: float, text: str) -> None:
        self.frames_written += sum(1 for e in events if isinstance(e, FrameWritten))
        self.handler.on_events(events)
        state = job_state()
        state.progress = progress
        for event in events:
            if isinstance(event, ConnectionLost):
                text = f"backend silent for {event.silent_s:.0f} s; reconnecting"
            elif isinstance(event, Resumed):
                self.resumed += 1
                text = f"reconnected; resuming {event.frames_left} frame(s)"
        state.message = f"{self.kind}: {text}"
        if bpy.app.background or any(isinstance(e, (ConnectionLost, Resumed)) for e in events):
            self._print(state.message, events)

    def _print(self, line: str, events) -> None:
        """Background runs tell the terminal what they are doing: each stage once, then every few s."""
        last_line, last_time = self._printed
        stage = line.rsplit(" ", 1)[0] if line[-1:].isdigit() else line
        last_stage = last_line.rsplit(" ", 1)[0] if last_line[-1:].isdigit() else last_line
        now = time.monotonic()
        if line != last_line and (stage != last_stage or now - last_time >= PRINT_INTERVAL_S
                                  or any(isinstance(e, ProgressEvent) and e.done == e.total for e in events)):
            print(f"Living Portrait {line}", file=sys.stderr, flush=True)
            self._printed = (line, now)

    def _finish(self, results) -> None:
        try:
            self.handler.on_done(results)
        except Exception as err:
            self._fail(err)
        job_state().progress = 1.0
        done = f"{self.kind}: done" + (f", {self.frames_written} frame(s) written" if self.frames_written else "")
        if self.resumed:
            done += f" (resumed {self.resumed}x after the backend went away)"
        self._end(done)
        if bpy.app.background:
            print(f"Living Portrait {done}", file=sys.stderr, flush=True)

    def _fail(self, err: Exception):
        """End the job in the UI and raise ``err`` (a file system error becomes a readable one)."""
        if isinstance(err, OSError):
            err = LivingPortraitError(f"{err.filename or 'output'}: {err.strerror or err}; check that the "
                                      "output folder exists, is writable and has free space")
        elif not isinstance(err, LivingPortraitError):
            # A failure applying the result to Blender data is a report, never a traceback.
            err = LivingPortraitError(f"{self.kind} failed: {err}")
        err.args = (for_artist(err.message),) + err.args[1:]
        self._end(f"{self.kind}: {getattr(err, 'message', err)}")
        raise err

    def _end(self, message: str) -> None:
        state = job_state()
        state.running = False
        state.cancel_requested = False
        state.message = message
        if local_backend.LOCAL.process is not None and not local_backend.LOCAL.running:
            state.backend_status = f"Local backend {local_backend.LOCAL.describe()}"
        redraw_ui()


def job_driver(context, jobs, handler, kind: str, counts=None) -> JobDriver:
    """A driver for ``jobs`` (one job or a list) on the backend the preferences name, with their
    silence timeout."""
    if not isinstance(jobs, (list, tuple)):
        jobs = [jobs]
    return JobDriver(connection.connector(context), jobs, handler, kind,
                     preferences.get(context).silence_timeout, context, counts)


class StreamOperatorMixin:
    """Shared ``execute`` (blocking: scripts, ``blender -b``) and ``invoke``/``modal`` (non-blocking)
    for operators that run a backend job. Subclasses define ``start_job(context) -> JobDriver``."""

    _driver = None
    _timer = None

    @classmethod
    def poll(cls, context):
        return not job_state(context).running

    def _refuse(self, context, err: LivingPortraitError):
        """Report a problem found before the job started; the panel's message says it too (not the
        previous job's)."""
        state = job_state(context)
        state.running = False
        message = for_artist(err.message)
        state.message = f"{self.bl_label}: {message}"
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _report_end(self, driver) -> None:
        for level, text in driver.reports:
            self.report({level}, text)
        self.report({"INFO"}, job_state().message)

    def execute(self, context):
        try:
            driver = self.start_job(context)
        except LivingPortraitError as err:
            return self._refuse(context, err)
        try:
            driver.run_blocking()
        except Cancelled as err:
            self.report({"WARNING"}, f"{driver.kind} cancelled: {err.message}")
            return {"CANCELLED"}
        except LivingPortraitError as err:
            self.report({"ERROR"}, err.message)
            return {"CANCELLED"}
        self._report_end(driver)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._driver = self.start_job(context)
        except LivingPortraitError as err:
            return self._refuse(context, err)
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
            self._report_end(self._driver)
            return self._stop(context, {"FINISHED"})
        return {"PASS_THROUGH"}

    def _stop(self, context, result):
        context.window_manager.event_timer_remove(self._timer)
        state = job_state(context)
        state.running = False
        redraw_ui(context)
        return result
