"""A real `livingportrait serve` process for tests: started on a free loopback port, stopped after.

The endpoint is read from the server's first output line, so no test ever sleeps to wait for it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys


class BackendProcess:
    def __init__(self, *extra_args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livingportrait_backend", "serve", "--bind", "tcp://127.0.0.1:*", *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"backend did not start: {line!r} {self.proc.stderr.read()}")
        self.address = line.removeprefix("listening on ")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """kill -9: the backend dies without any chance to say goodbye."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode
