"""What a running job reports to its caller: ``JobStream.poll()`` returns these (and ``wait()`` hands
them to ``on_event``), alongside the job's typed error when it fails."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FrameWritten:
    """Frame ``frame``'s file is complete at ``path`` (its credit went back to the backend)."""

    frame: int
    path: str


@dataclass
class ProgressEvent:
    """The backend's stage ("landmarks", "prepare", "finetune", "render", ...) is ``done`` of ``total``."""

    stage: str
    done: int
    total: int


@dataclass
class Finished:
    """The job ended well after ``frames`` frames."""

    frames: int


@dataclass
class ConnectionLost:
    """The backend went silent for ``silent_s``; the stream is trying to reconnect for ``reconnect_s``."""

    address: str
    silent_s: float
    reconnect_s: float


@dataclass
class Resumed:
    """The stream reconnected and re-submitted its job for ``frames_left`` frames."""

    address: str
    frames_left: int
