"""Output file naming, frame ranges and frame lists.

Frames are ``NAME.####.exr``: the frame number zero-padded to 4 digits, more when it needs more.
Negative frame numbers keep their sign before the padding (``NAME.-001.exr``).
Frame lists are what farms hand a task: ``1-3,5,9-10`` (OpenJD's non-contiguous chunks, Flamenco's
chunker, OpenCue's frame sets without steps).
"""
from __future__ import annotations

import re

from .errors import BadInput

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")
EXTENSION = ".exr"


def check_name(name: str) -> str:
    """A sequence name must be a plain file stem: no folders, no dots, no traversal."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BadInput(f"sequence name {name!r} is not allowed: use 1-128 letters, digits, '_' or '-', "
                       "starting with a letter or digit (no folders, dots or spaces)")
    return name


def frame_filename(name: str, frame: int) -> str:
    """``NAME.0007.exr`` for frame 7."""
    check_name(name)
    return f"{name}.{frame:04d}{EXTENSION}"


def parse_frame_range(text: str) -> tuple[int, int]:
    """'A-B' (inclusive) or a single 'A' -> (A, B). Raises BadInput on anything else."""
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", text or "")
    if not m:
        raise BadInput(f"frame range {text!r} is not understood; write it as A-B, e.g. 1-48, or a single frame")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) is not None else first
    if last < first:
        raise BadInput(f"frame range {text!r} ends before it starts; write the first frame first")
    return first, last


_SPAN_RE = re.compile(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?")


def parse_frames(text: str) -> list[int]:
    """'1-3,5,9-10' -> [1, 2, 3, 5, 9, 10]: comma-separated frames and inclusive A-B spans, sorted,
    each frame once. Raises BadInput (naming the part it could not read) on anything else."""
    frames: set[int] = set()
    for part in (text or "").split(","):
        m = _SPAN_RE.fullmatch(part)
        if not m:
            raise BadInput(f"frames {text!r}: {part.strip()!r} is not understood; write frames as a comma "
                           "list of A-B spans and single frames, e.g. 1-48 or 1-3,5,9-10")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            raise BadInput(f"frames {text!r}: {part.strip()!r} ends before it starts; write the first frame first")
        if last - first >= 10_000_000:
            raise BadInput(f"frames {text!r}: {part.strip()!r} spans more than ten million frames")
        frames.update(range(first, last + 1))
    return sorted(frames)


def frame_spans(frames) -> list[tuple[int, int]]:
    """[(3, 5), (9, 9)] for frames [3, 4, 5, 9] (sorted, distinct frame numbers)."""
    spans: list[tuple[int, int]] = []
    for f in (int(x) for x in frames):
        if spans and f == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], f)
        else:
            spans.append((f, f))
    return spans


def format_frames(frames) -> str:
    """'3-5,9' for frames [3, 4, 5, 9]: the inverse of ``parse_frames``."""
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in frame_spans(frames))
