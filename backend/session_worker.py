"""A warm render worker for the tasks of one OpenJD session (Deadline Cloud's adaptor pattern).

The job bundle's step environment runs ``livingportrait session start`` on entering the step: it starts
this worker detached (its own process session, stdout/stderr to a log file in the session's working
directory, so the action returns and openjd-sessions, which only waits for the action's own process and
its stdout pipe, leaves it running) and puts ``LIVINGPORTRAIT_SESSION_WORKER`` (the worker's info file)
into the environment of the step's tasks with ``openjd_env``. Each task's ``livingportrait render ...``
is then a thin client (``session_client``) that hands its arguments to the worker. ``livingportrait
session stop``, the environment's exit action, stops it.

The worker listens on a Unix-domain socket inside the session's working directory (private to the
session's user; the socket itself is 0600) or, where there is none (Windows) or its path is too long, on
loopback TCP; a random token in the 0600 info file is required with every request either way. It runs
one task at a time, as a session does, with the same code as the command (``commands/render.run``,
``farm.render_frames``: the same frame writer, the same skip-complete and resume rules, the same output
and failure lines, relayed to the client), and keeps in memory the inputs it loaded (keyed by the
arguments and the files' size and time) and the prepared job (keyed by the job digest farm mode uses
for resume: portraits, performance, engine, effective settings). Only the first task of a job pays
imports and preparation; the others render. Between tasks, while openjd starts the next one, the worker
renders ahead into memory the frames that follow the last task's (as many as it had, at most
AHEAD_MAX_FRAMES); a task that asks for them has them written by the same writer, after the same
skip-complete check, and a task that asks for other frames stops that work between frames.

A client that goes away (killed) cancels its task between frames; a worker whose session is gone (the
working directory deleted, or the process that started the session ended) exits by itself.
"""
from __future__ import annotations

import io
import json
import os
import socket
import sys
import threading
import time

INFO_FILE = "livingportrait-worker.json"
SOCKET_FILE = "livingportrait-worker.sock"
LOG_FILE = "livingportrait-worker.log"
UNIX_PATH_MAX = 100  # sun_path is 104-108 bytes depending on the OS
KEEP_JOBS = 2  # prepared jobs kept in memory (a session renders one job; a second costs memory only)
KEEP_INPUTS = 4
AHEAD_MAX_FRAMES = 32  # frames rendered ahead into memory between tasks, at most


def session_command(argv: list[str]) -> int:
    """``livingportrait session start [--enabled on|off] | stop | serve DIR PID`` (the last is the worker)."""
    import argparse

    p = argparse.ArgumentParser(prog="livingportrait session",
                                description="An OpenJD session's warm render worker (farm/openjd's step environment).")
    sub = p.add_subparsers(dest="op", required=True)
    start_p = sub.add_parser("start", help="start the worker for this session (an environment's onEnter)")
    start_p.add_argument("--enabled", default="on", choices=["on", "off"],
                       help="off: start nothing, every task renders in its own process")
    sub.add_parser("stop", help="stop this session's worker (an environment's onExit)")
    serve_p = sub.add_parser("serve", help=argparse.SUPPRESS)
    serve_p.add_argument("dir")
    serve_p.add_argument("session_pid", type=int)
    args = p.parse_args(argv)
    if args.op == "serve":
        return serve(args.dir, args.session_pid)
    folder = os.environ.get("OPENJD_SESSION_WORKING_DIR")
    if not folder:
        print("livingportrait session: error: run this from an OpenJD session's environment action (no "
              "OPENJD_SESSION_WORKING_DIR)", file=sys.stderr)
        return 2
    if args.op == "stop":
        return stop(folder)
    try:
        return start(folder, args.enabled == "on")
    except OSError as exc:  # the tasks render in their own processes: a warning, not a failed session
        print(f"livingportrait session: warning: the warm worker did not start ({exc}); each task renders in "
              "its own process", flush=True)
        return 0


def start(folder: str, enabled: bool) -> int:
    """Start the worker detached and wait until it listens; a worker that cannot start is a warning (the
    tasks then render in their own processes), never a failed session."""
    import subprocess

    if not enabled:
        print("livingportrait session: the warm worker is off for this job; each task renders in its own process")
        return 0
    log_path = os.path.join(folder, LOG_FILE)
    detach = ({"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
              if os.name == "nt" else {"start_new_session": True})
    with open(log_path, "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "livingportrait_backend.session_worker", "serve", folder,
                                   str(os.getppid())], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=log, close_fds=True, **detach)
    ready = worker.stdout.readline().decode(errors="replace").strip()
    worker.stdout.close()
    if not ready.startswith("ready "):
        tail = _tail(log_path)
        print(f"livingportrait session: warning: the warm worker did not start (exit {worker.poll()}); each task "
              f"renders in its own process. Its log: {tail}", flush=True)
        return 0
    print(f"livingportrait session: warm worker pid {worker.pid} listening on {ready[6:]}")
    print(f"openjd_env: LIVINGPORTRAIT_SESSION_WORKER={os.path.join(folder, INFO_FILE)}", flush=True)
    return 0


def stop(folder: str) -> int:
    from .session_client import WorkerUnavailable, relay, request

    info_path = os.path.join(folder, INFO_FILE)
    if not os.path.exists(info_path):
        print("livingportrait session: no warm worker to stop")
        return 0
    try:
        sock, reader = request(info_path, {"op": "stop"})
    except WorkerUnavailable as why:
        print(f"livingportrait session: the warm worker had already gone ({why})")
        return 0
    with sock, reader:
        relay(reader)
    return 0


def _tail(path: str, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(os.path.getsize(path) - size, 0))
            return f.read().decode(errors="replace").strip().replace("\n", " | ")
    except OSError as exc:
        return f"({exc.strerror})"


def _listen(folder: str) -> tuple[socket.socket, dict]:
    path = os.path.join(folder, SOCKET_FILE)
    if os.name != "nt" and hasattr(socket, "AF_UNIX") and len(os.fsencode(path)) < UNIX_PATH_MAX:
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is the session user's alone from the start
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        info = {"family": "unix", "address": path}
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        info = {"family": "tcp", "address": f"127.0.0.1:{sock.getsockname()[1]}", "port": sock.getsockname()[1]}
    sock.listen(4)
    return sock, info


def _write_info(folder: str, info: dict) -> str:
    path = os.path.join(folder, INFO_FILE)
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(temp, path)
    return path


def _session_alive(folder: str, session_pid: int) -> bool:
    if not os.path.isdir(folder):
        return False
    if os.name == "nt" or session_pid <= 1:
        return True
    try:
        os.kill(session_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (sudo): it exists
        pass
    return True


def log(message: str) -> None:
    sys.__stderr__.write(f"{time.strftime('%H:%M:%S')} worker {os.getpid()}: {message}\n")
    sys.__stderr__.flush()


def serve(folder: str, session_pid: int) -> int:
    import hmac
    import secrets
    import signal

    listener, info = _listen(folder)
    token = secrets.token_hex(16)
    info_path = _write_info(folder, {**info, "token": token, "pid": os.getpid()})
    # Ready: the starter returns. stdout then goes to the log too, so no pipe of the session is held.
    sys.stdout.write(f"ready {info['address']}\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    worker = Worker()
    threading.Thread(target=_warm_up, daemon=True).start()  # imports while openjd starts the first task
    log(f"listening on {info['address']} for session {folder} (pid {session_pid})")
    listener.settimeout(2.0)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                if not _session_alive(folder, session_pid):
                    log("the session is gone; exiting")
                    return 0
                continue
            conn.settimeout(None)
            with conn:
                reader = conn.makefile("rb")
                line = reader.readline()
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not hmac.compare_digest(str(message.get("token")), token):
                    log("refused a request without the session's token")
                    continue
                if message.get("op") == "stop":
                    worker.finish_ahead(None, set())
                    summary = (f"livingportrait session: warm worker pid {os.getpid()} stopped after {worker.tasks} "
                               f"task(s); jobs prepared: {worker.prepares}\n")
                    log(summary.strip())
                    _send(conn, {"out": summary})
                    _send(conn, {"exit": 0})
                    return 0
                if message.get("op") == "render":
                    worker.run_task(conn, reader, message)
    finally:
        for path in (info_path, info.get("address") if info["family"] == "unix" else None):
            try:
                if path:
                    os.unlink(path)
            except OSError:
                pass


def _warm_up() -> None:
    try:
        from . import farm  # noqa: F401  numpy, OpenCV, the EXR encoder, the frame renderer
        from .commands import render  # noqa: F401
    except Exception as exc:  # noqa: BLE001  the task will meet (and report) the same error
        log(f"warm-up import failed: {exc!r}")


def _send(conn: socket.socket, message: dict) -> bool:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
        return True
    except OSError:
        return False


class _Relay(io.TextIOBase):
    """A text stream whose writes go to the task's client as its stdout or stderr."""

    def __init__(self, conn: socket.socket, key: str, gone: threading.Event):
        self.conn, self.key, self.gone = conn, key, gone

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text and not _send(self.conn, {self.key: text}):
            self.gone.set()  # the client is gone: the task stops between frames
        return len(text)

    def isatty(self) -> bool:
        return False


class Worker:
    """The session's memory: loaded inputs and prepared jobs, one task at a time."""

    def __init__(self):
        self.loaded: dict = {}  # input key -> (driver, points, settings, portraits)
        self.jobs: dict = {}  # job digest -> FrameRenderer prepared for every frame of the job
        self.tasks = 0
        self.prepares = 0
        self.cancel = threading.Event()
        self.argv: list[str] = []
        self._was_prepared = False
        self._ahead = None  # (digest, frames, {frame: EXR bytes}, stop event, thread) between tasks
        self._ahead_plan = None  # (renderer, the task's frames) once a task rendered
        self._ahead_used = 0

    def run_task(self, conn: socket.socket, reader, message: dict) -> None:
        import contextlib

        from .cli import Terminated, guarded

        self.tasks += 1
        self.argv, cancel = list(message.get("argv") or []), threading.Event()
        self.cancel = cancel
        asked_to_stop = threading.Event()

        def listen():  # the client's cancel (its SIGTERM), or its end (killed): stop between frames
            for line in reader:
                try:
                    if json.loads(line).get("op") == "cancel":
                        asked_to_stop.set()
                        cancel.set()
                except ValueError:
                    pass
            cancel.set()
        threading.Thread(target=listen, daemon=True).start()

        def task() -> int:
            from livingportrait_wire.errors import Cancelled

            from .commands import render

            args = _render_parser().parse_args(self.argv[1:])
            try:
                return render.run(args, session=self)
            except Cancelled:
                if asked_to_stop.is_set():
                    raise Terminated() from None
                raise

        started = time.monotonic()
        out, err = _Relay(conn, "out", cancel), _Relay(conn, "err", cancel)
        cwd = os.getcwd()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                os.chdir(message.get("cwd") or cwd)
                status = guarded("render", task)
            except SystemExit as exc:  # argparse's usage error, already written to the client's stderr
                status = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # noqa: BLE001  the worker outlives a task's bug; the client says it
                import traceback

                traceback.print_exc()
                status = 1
                log(f"task failed: {exc!r}")
            finally:
                os.chdir(cwd)
        log(f"task {self.tasks} ({' '.join(self.argv[-2:])}) exit {status} in {time.monotonic() - started:.2f} s")
        _send(conn, {"exit": status})
        plan, self._ahead_plan = self._ahead_plan, None
        if status == 0 and plan is not None:
            self.start_ahead(*plan)

    def start_ahead(self, renderer, last_frames: list[int]) -> None:
        """Render the frames after ``last_frames`` into memory on a thread, until the next task."""
        from livingportrait_wire.errors import Cancelled

        after = [f for f in renderer.frames if f > max(last_frames)][:min(len(last_frames), AHEAD_MAX_FRAMES)]
        if not after or not renderer.prepared:
            return
        stop, ready = threading.Event(), {}
        renderer.cancel = stop

        def run():
            try:
                for frame, data in renderer.encoded(after):
                    ready[frame] = data
            except Cancelled:
                pass
            except Exception as exc:  # noqa: BLE001  the task that asks for these frames renders them itself
                log(f"rendering ahead failed: {exc!r}")
        thread = threading.Thread(target=run, daemon=True, name="render-ahead")
        thread.start()
        self._ahead = (renderer.job_digest, set(after), ready, stop, thread)

    def finish_ahead(self, digest, wanted: set) -> dict:
        """The frames rendered ahead that this task (job ``digest``, frames ``wanted``) can use; the work
        stops between frames when it cannot use them."""
        if self._ahead is None:
            return {}
        ahead_digest, frames, ready, stop, thread = self._ahead
        self._ahead = None
        if ahead_digest != digest or not frames & wanted:
            stop.set()
        thread.join()
        if ahead_digest != digest:
            return {}
        return {f: data for f, data in ready.items() if f in wanted}

    # The hooks render.run calls with session=self.

    def inputs(self, args, load):
        key = _input_key(self.argv)
        if key not in self.loaded:
            self.loaded[key] = load()
            while len(self.loaded) > KEEP_INPUTS:
                self.loaded.pop(next(iter(self.loaded)))
        return self.loaded[key]

    def renderer(self, spec, out_dir: str):
        import dataclasses

        from .frame_renderer import FrameRenderer, job_digest
        from .prepare_cache import job_cache_dir
        from .farm_environment import stage_reporter

        digest = job_digest(spec)
        wanted = set(spec.frames) if spec.frames is not None else {int(f) for f in spec.driver.frames}
        ready = self.finish_ahead(digest, wanted)  # no other thread uses a renderer after this
        renderer = self.jobs.pop(digest, None)
        if renderer is None:
            # Every frame of the job, so any chunk of it can be rendered with this one preparation.
            renderer = FrameRenderer(dataclasses.replace(spec, frames=None), stage_reporter(),
                                     cache_dir=job_cache_dir(out_dir))
        self.jobs[digest] = renderer  # most recent last
        while len(self.jobs) > KEEP_JOBS:
            self.jobs.pop(next(iter(self.jobs)))
        renderer.cancel = self.cancel
        self._was_prepared = renderer.prepared
        self._ahead_used = len(ready)
        return _RenderedAhead(renderer, ready) if ready else renderer

    def rendered(self, renderer, result) -> None:
        if not result.written:
            return
        self._ahead_plan = (getattr(renderer, "renderer", renderer), result.written + result.skipped)
        if self._was_prepared:
            ahead = f"; {self._ahead_used} of its frames rendered ahead" if self._ahead_used else ""
            print(f"session worker pid {os.getpid()}: job {renderer.job_digest} was prepared by an earlier task of "
                  f"this session{ahead}")
        else:
            self.prepares += 1
            log(f"prepared job {renderer.job_digest}")
            print(f"session worker pid {os.getpid()}: job {renderer.job_digest} prepared in this task")


class _RenderedAhead:
    """A job's renderer whose ``encoded`` yields the frames rendered ahead from memory, the rest as usual."""

    def __init__(self, renderer, ready: dict):
        self.renderer, self.ready = renderer, ready

    def __getattr__(self, name):
        return getattr(self.renderer, name)

    def encoded(self, frames):
        rest = iter(self.renderer.encoded([f for f in frames if f not in self.ready]))
        for frame in frames:
            yield (frame, self.ready.pop(frame)) if frame in self.ready else next(rest)


_PARSER = None


def _render_parser():
    global _PARSER
    if _PARSER is None:
        import argparse

        from .commands import render

        _PARSER = argparse.ArgumentParser(prog="livingportrait render")
        render.add_arguments(_PARSER)
    return _PARSER


def _input_key(argv: list[str]) -> tuple:
    """The task's arguments without its frames, and the size and time of every file they name."""
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--frames":
            skip = True
        elif not a.startswith("--frames="):
            args.append(a)
    stats = []
    for a in args:
        try:
            st = os.stat(a)
        except (OSError, ValueError):
            continue
        stats.append((a, st.st_mtime_ns, st.st_size))
        if os.path.isdir(a):
            for entry in sorted(os.listdir(a)):
                try:
                    st = os.stat(os.path.join(a, entry))
                    stats.append((entry, st.st_mtime_ns, st.st_size))
                except OSError:
                    pass
    return tuple(args), os.getcwd(), tuple(stats)


if __name__ == "__main__":
    sys.exit(session_command(sys.argv[1:]))
