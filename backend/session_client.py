"""The thin client an OpenJD task runs when its session has a warm render worker.

``livingportrait render ...`` inside a session whose step environment started a worker
(``livingportrait session start`` put ``LIVINGPORTRAIT_SESSION_WORKER`` in the task's environment) comes
here before anything heavy is imported: this module uses the standard library only (no numpy, no zmq:
importing pyzmq alone costs a task ~50 ms, and a stream socket tells both ends at once when the other is
gone). It sends the task's arguments to the worker, writes the worker's output (``openjd_progress:``,
``openjd_status:``, ``openjd_fail:`` and the usual lines) as its own, and exits with the worker's status.
On SIGTERM it asks the worker to stop the chunk between frames and exits 143 as the command does.

When no worker answers (none started, it died, its socket is gone) the task renders in this process,
as the ordinary command does, so a job never fails for want of the worker; a worker that dies in the
middle of a chunk is the same case (the in-process render skips the frames already written).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys

SESSION_WORKER_ENV = "LIVINGPORTRAIT_SESSION_WORKER"  # the worker's info file (address, token)
CONNECT_TIMEOUT_S = 10.0


class WorkerUnavailable(Exception):
    """No worker answered; the reason says why."""


def read_info(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise WorkerUnavailable(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None


def connect(info: dict) -> socket.socket:
    """A stream socket connected to the worker ``info`` describes; WorkerUnavailable if it does not answer."""
    try:
        if info["family"] == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = info["address"]
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = ("127.0.0.1", int(info["port"]))
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect(target)
        sock.settimeout(None)
        return sock
    except (OSError, KeyError, ValueError) as exc:
        raise WorkerUnavailable(f"{info.get('address') or info.get('port')}: {getattr(exc, 'strerror', None) or exc}") \
            from None


def send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def request(info_path: str, message: dict):
    """Connect, send ``message`` (with the worker's token), return (socket, its reader)."""
    info = read_info(info_path)
    sock = connect(info)
    try:
        send(sock, {**message, "token": info.get("token")})
    except OSError as exc:
        sock.close()
        raise WorkerUnavailable(f"sending to the worker: {exc.strerror or exc}") from None
    return sock, sock.makefile("rb")


def run_task(argv: list[str]) -> int:
    """Render ``argv`` (``render ...``) on the session's worker; in this process when none answers."""
    info_path = os.environ[SESSION_WORKER_ENV]
    try:
        sock, reader = request(info_path, {"op": "render", "argv": argv, "cwd": os.getcwd()})
    except WorkerUnavailable as why:
        return in_process(argv, f"the session's render worker did not answer ({why})")
    stopping = []

    def on_sigterm(signum, frame):  # how farms cancel: ask the worker to stop between frames
        if not stopping:
            stopping.append(True)
            try:
                send(sock, {"op": "cancel"})
            except OSError:
                pass

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with sock, reader:
            status = relay(reader)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status is None:  # the worker went away in the middle: the frames it wrote are whole
        if stopping:
            return _stopped()
        return in_process(argv, "the session's render worker stopped answering")
    return status


def relay(reader) -> int | None:
    """Write the worker's output lines as ours until its exit status; None if the connection ends first."""
    while True:
        try:
            line = reader.readline()
        except InterruptedError:  # pragma: no cover - PEP 475 retries reads after a handled signal
            continue
        except OSError:
            return None
        if not line:
            return None
        message = json.loads(line)
        if "exit" in message:
            return int(message["exit"])
        stream = sys.stdout if "out" in message else sys.stderr
        stream.write(message.get("out", message.get("err", "")))
        stream.flush()


def _stopped() -> int:
    from .cli import fail

    return fail("render", "stopped by SIGTERM; the frames written are complete, run the same command again to "
                          "render the rest", 143)


def in_process(argv: list[str], why: str) -> int:
    """The ordinary command in this process (it resumes: complete frames are skipped)."""
    print(f"livingportrait render: {why}; rendering in this process", file=sys.stderr, flush=True)
    from .cli import run_command

    return run_command(argv)
