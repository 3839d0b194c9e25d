"""Output file naming and frame ranges.

Frames are ``NAME.####.exr``: the frame number zero-padded to 4 digits, more when it needs more.
Negative frame numbers keep their sign before the padding (``NAME.-001.exr``).
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
