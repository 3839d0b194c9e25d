"""Keeping native libraries' log chatter out of what users read.

mediapipe's C++ side writes to file descriptor 2 while its graphs start (``W0000 ...
inference_feedback_manager.cc:114] Feedback manager requires ...``, ``INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.``), straight past Python's logging, and no environment variable of its 0.10.21
(GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL, ...) silences it. So while such a library starts, fd 2 goes
through a pipe: lines that match ``CHATTER`` are dropped, every other line (our own warnings, other
threads' logging) is passed on at once, in order. Outside that window stderr is untouched.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

# Lines native libraries write while they start: dropped. Anything else is passed on.
CHATTER = re.compile(
    rb"^(?:[IW]\d{4} [\d:. ]+\S* *\d+ \S+\.cc:\d+\] "      # absl/glog INFO and WARNING lines
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)")

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_reader: threading.Thread | None = None


def _forward(read_fd: int, out_fd: int) -> None:
    """Copy lines from ``read_fd`` to ``out_fd`` until EOF, leaving out the chatter."""
    pending = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            _write_all(out_fd, b"".join(line + b"\n" for line in lines if not CHATTER.match(line)))
    if not CHATTER.match(pending):
        _write_all(out_fd, pending)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _start() -> None:
    global _saved_fd, _reader
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        return  # no usable fd 2 (a closed stderr): nothing to keep clean
    read_fd, write_fd = os.pipe()
    reader = threading.Thread(target=_forward, args=(read_fd, saved), name="native-log-filter", daemon=True)
    reader.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _saved_fd, _reader = saved, reader


def _stop() -> None:
    global _saved_fd, _reader
    if _saved_fd is None:
        return
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sys.stderr.flush()
    os.dup2(_saved_fd, 2)  # closes the pipe's last write end: the reader drains it and stops
    _reader.join()
    os.close(_saved_fd)
    _saved_fd, _reader = None, None


@contextlib.contextmanager
def without_native_chatter():
    """While inside, native log chatter written to fd 2 is dropped; other lines pass. Safe across
    threads: nested and concurrent uses share one filter, removed when the last one leaves."""
    global _depth
    with _lock:
        if _depth == 0:
            _start()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _stop()
