"""A backend process started on this machine for the artist, and stopped again.

Blender-free: runs ``COMMAND serve --bind ADDRESS`` as a child process with its output in a log file
(under the extension's user folder, chosen by the caller). One per Blender session.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from urllib.parse import urlsplit

from .wire.errors import BadInput

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def check_loopback(address: str) -> None:
    """A local backend only makes sense on a loopback tcp address; raise BadInput otherwise."""
    parts = urlsplit(address)
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        raise BadInput(f"backend address {address!r} is not understood; write it as tcp://127.0.0.1:5557")
    if parts.hostname not in _LOOPBACK_HOSTS and f"[{parts.hostname}]" not in _LOOPBACK_HOSTS:
        raise BadInput(f"backend address {address!r} is not on this machine; a local backend binds a "
                       "loopback address such as tcp://127.0.0.1:5557 (start remote backends yourself)")


def check_loopback_quiet(address: str) -> bool:
    """Whether ``address`` is a loopback tcp address (no exception)."""
    try:
        check_loopback(address)
    except BadInput:
        return False
    return True


def port_in_use(address: str) -> bool:
    """Whether another process already listens on the loopback tcp ``address`` (a backend left running
    by an earlier Blender session, say): binding it ourselves is the test."""
    parts = urlsplit(address)
    host = parts.hostname or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if sys.platform != "win32":
            # Like ZeroMQ's own bind: a connection lingering in TIME_WAIT is no listener. (On Windows
            # SO_REUSEADDR would let the probe share a listener's port, so it is left off there.)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, parts.port))
        except OSError:
            return True
    return False


class LocalBackend:
    """The one backend process this Blender session started (or none)."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.address = ""
        self.log_path = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe(self) -> str:
        if self.running:
            return f"Running (pid {self.process.pid}) on {self.address}; log: {self.log_path}"
        if self.process is not None:
            return f"Exited with code {self.process.returncode}; log: {self.log_path}"
        return "Not started"

    def start(self, command: str, address: str, log_path: str) -> None:
        """Start ``command serve --bind address``; BadInput if the command cannot be run.

        Returns at once: the caller's handshake (with its timeout) is what says the backend is ready.
        """
        check_loopback(address)
        if self.running:
            if self.address == address:
                return
            self.stop()
        if port_in_use(address):
            raise BadInput(f"another program already uses {address}: most likely a backend left running by "
                           "an earlier Blender session (Check Backend talks to it). Use it as it is, or end "
                           "that process (or choose another Backend Address in the preferences), then "
                           "start again")
        try:
            argv = shlex.split(command, posix=(os.name != "nt")) if command.strip() else []
        except ValueError as exc:
            raise BadInput(f"the backend command {command!r} cannot be read ({exc}); check its quotes "
                           "in the add-on preferences") from None
        if not argv:
            raise BadInput("the backend command is empty; set it in the add-on preferences "
                           "(e.g. /path/to/.venv/bin/livingportrait)")
        try:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            log = open(log_path, "ab")
        except OSError as exc:
            raise BadInput(f"cannot write the backend's log at {log_path} ({exc.strerror or exc})") from None
        try:
            flags = subprocess.CREATE_NEW_PROCESS_GROUP if sys.platform == "win32" else 0
            # POSIX: the backend stops when this Blender has gone, even if Blender was killed (no orphan
            # keeps the port). Windows' os.kill cannot ask whether a process lives, so it is not passed.
            tie = [] if sys.platform == "win32" else ["--exit-with", str(os.getpid())]
            self.process = subprocess.Popen(argv + ["serve", "--bind", address] + tie, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            creationflags=flags)
        except OSError as exc:
            raise BadInput(f"could not start the backend with {command!r} ({exc.strerror or exc}); set the "
                           "full path of the livingportrait command in the add-on preferences") from None
        finally:
            log.close()  # the child holds its own handle
        self.address, self.log_path = address, log_path

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the process (kill it if it does not exit within ``timeout_s``)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        self.process = None


# The session's local backend; unregistering the add-on stops it.
LOCAL = LocalBackend()
