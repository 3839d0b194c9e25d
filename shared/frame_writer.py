"""Where a job's frames land: the output-folder check, and one writer thread that puts each EXR file in
place atomically while the next frames are made.

Used by the client (frames off the wire) and by farm mode (frames rendered in-process), so both write
the same way: temp file, fsync, rename, in frame order, with at most ``FrameWriter.MAX_WAITING`` frames
held in memory beyond the one being written.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from .atomic_write import write_bytes_atomic
from .errors import BadInput


def ensure_output_folder(out_dir: str) -> None:
    """Create ``out_dir`` if needed and prove it is writable, before any work is done. BadInput if not."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, ".livingportrait-write-test.tmp")
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(f"{out_dir}: the output folder cannot be written ({exc.strerror}); "
                       "choose a folder you can write to") from None


class FrameWriter:
    """Writes frames' files atomically on one worker thread, in the order they are given.

    ``write(frame, path, data)`` queues a file and returns at once. ``finished()`` yields (frame, path)
    for each file now in place, oldest first: those done, and the oldest (waiting for it) while more
    than MAX_WAITING are queued, so memory stays bounded; ``finished(everything=True)`` waits for all
    and stops the thread (a later ``write`` starts a new one). A failed write raises its OSError from
    ``finished``, after the frames before it were yielded. As a context manager, leaving waits for the
    queued writes.
    """

    MAX_WAITING = 2

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._waiting: deque = deque()  # (frame, path, future), oldest first

    def write(self, frame: int, path: str, data: bytes) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-writer")
        self._waiting.append((frame, path, self._pool.submit(write_bytes_atomic, path, data)))

    def finished(self, everything: bool = False) -> Iterator[tuple[int, str]]:
        while self._waiting and (everything or len(self._waiting) > self.MAX_WAITING or self._waiting[0][2].done()):
            frame, path, future = self._waiting.popleft()
            future.result()
            yield frame, path
        if everything:
            self.close()

    def close(self) -> None:
        """Wait for the queued writes (their errors are not raised here) and stop the thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
