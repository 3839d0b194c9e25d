"""Progress for long work: a bar on a terminal, periodic plain lines when output is not a TTY.

``Progress(total, label)`` is called with ``update(done)``; it never prints more than a few lines a
second, and always prints the final state on ``close()``. Inside an Open Job Description session
(``openjd run``, Deadline Cloud) the lines are the ones the session reads from stdout:
``openjd_progress: <0-100>`` and ``openjd_status: <label> <done>/<total>``.
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None, min_interval_s: float | None = None):
        self.total = max(int(total), 0)
        self.label = label
        from .farm_environment import under_openjd

        self.openjd = stream is None and under_openjd()
        self.stream = stream if stream is not None else (sys.stdout if self.openjd else sys.stderr)
        self.tty = not self.openjd and bool(getattr(self.stream, "isatty", lambda: False)())
        # A bar redraws often; a farm's progress every second; plain lines (logs) every few seconds.
        self.min_interval_s = min_interval_s if min_interval_s is not None else (
            0.1 if self.tty else 1.0 if self.openjd else 5.0)
        self._last = -1e9
        self.done = 0
        # (time, done) when the first unit was done: the rate counts from there, since the time to it
        # (loading, preparing, or a bar made on the first frame) says nothing about the pace after.
        self._first: tuple[float, int] | None = None
        self._drawn = None  # (done, note) of the last line drawn

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        now = time.monotonic()
        if self._first is None and done > 0:
            self._first = (now, done)
        if now - self._last >= self.min_interval_s or done >= self.total:
            self._last = now
            self._draw(note)

    def close(self, note: str = "") -> None:
        if self.tty:
            self._draw(note, final=True)
        elif self._drawn != (self.done, note):  # a log line says the final state once
            self._draw(note)

    def rate_text(self) -> str:
        """'4.2/s' over the units done since the first one; '' until there is a second."""
        if self._first is None or self.done <= self._first[1]:
            return ""
        elapsed = time.monotonic() - self._first[0]
        return f"{(self.done - self._first[1]) / elapsed:.1f}/s" if elapsed > 0 else ""

    def _draw(self, note: str, final: bool = False) -> None:
        self._drawn = (self.done, note)
        frac = self.done / self.total if self.total else 1.0
        tail = " ".join(part for part in (f"{self.done}/{self.total}", self.rate_text(), note) if part)
        if self.openjd:
            self.stream.write(f"openjd_progress: {frac * 100:.1f}\nopenjd_status: {self.label} {tail}\n")
        elif self.tty:
            width = 30
            filled = int(round(frac * width))
            line = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}% {tail}"
            self.stream.write(line + ("\n" if final else ""))
        else:
            self.stream.write(f"{self.label}: {frac * 100:.0f}% {tail}\n")
        self.stream.flush()
