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


# What each backend stage is called where people read progress (the add-on's panel and status bar,
# the CLI's progress line).
STAGE_WORDS = {"queued": "Waiting for the backend", "upload": "Sending the footage", "detect": "Detecting",
               "landmarks": "Finding the portrait's landmarks", "prepare": "Preparing",
               "finetune": "Fine-tuning", "render": "Rendering"}


def stage_text(stage: str, done: int = 0, total: int = 0) -> str:
    """``Detecting 12/48``, ``Fine-tuning 120/500``, ``Rendering 30/96``; a stage without a count
    (``Preparing``) by its name alone."""
    word = STAGE_WORDS.get(stage, stage.capitalize())
    counted = total > 1 or (total == 1 and stage in ("detect", "render"))
    return f"{word} {done}/{total}" if counted else word


def stream_stage_text(stream) -> str:
    """The stage line for a JobStream: frames written once frames flow, else the backend's stage."""
    if stream.frames_written or (stream.stage == "render" and stream.total):
        return stage_text("render", len(stream.frames_written), stream.total)
    return stage_text(stream.stage, stream.stage_done, stream.stage_total)
