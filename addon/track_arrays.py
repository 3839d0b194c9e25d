"""Tracking tracks <-> landmark arrays (no bpy).

The 68 landmarks live on a clip as 68 tracks named ``PART.NN`` (``jaw.00`` ... ``inner_lips.67``; NN is
the iBUG index), so artists see which part each track is and the order survives renames of other
tracks. Marker positions are Blender's: normalised to the clip frame with a bottom-left origin.
Landmarks are pixels with a top-left origin (the wire's convention).
"""
from __future__ import annotations

import re

import numpy as np

from .frame_mapping import format_spans
from .wire.errors import BadInput
from .wire.landmarks import LandmarkSequence
from .wire.layout import NUM_POINTS, PARTS

TRACK_NAMES: tuple[str, ...] = tuple(
    f"{part.name}.{i:02d}" for part in PARTS for i in part.indices)
_NAME_RE = re.compile(r"^([a-z_]+)\.(\d{2})$")


def track_index(name: str) -> int | None:
    """iBUG index of a landmark track name (``mouth``-style names of other tracks give None)."""
    m = _NAME_RE.match(name)
    if not m:
        return None
    i = int(m.group(2))
    return i if i < NUM_POINTS and TRACK_NAMES[i] == name else None


def landmark_track_order(names: list[str]) -> list[int]:
    """Positions in ``names`` of the 68 landmark tracks, in iBUG order.

    Tracks named ``PART.NN`` are used when any exist (other tracks are ignored); a set of exactly 68
    tracks with other names is taken in its own order. Raises BadInput for a wrong count.
    """
    found = {}
    for pos, name in enumerate(names):
        i = track_index(name)
        if i is not None:
            found[i] = pos
    if len(found) == NUM_POINTS:
        return [found[i] for i in range(NUM_POINTS)]
    if found:
        missing = [TRACK_NAMES[i] for i in range(NUM_POINTS) if i not in found]
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise BadInput(f"wrong track count: {len(found)} of the 68 landmark tracks are on the clip, "
                       f"missing {shown}; run Detect Landmarks again or add the missing tracks")
    if len(names) == NUM_POINTS:
        return list(range(NUM_POINTS))
    raise BadInput(f"wrong track count: the clip has {len(names)} tracks and none named like "
                   f"'{TRACK_NAMES[0]}'; a face performance needs 68 tracks in iBUG order "
                   "(run Detect Landmarks to create them)")


def normalized_to_pixels(co: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Marker coordinates [..., 2] (0-1, bottom-left origin) -> pixels (top-left origin)."""
    w, h = size
    co = np.asarray(co, dtype=np.float64)
    return np.stack([co[..., 0] * w, (1.0 - co[..., 1]) * h], axis=-1)


def pixels_to_normalized(px: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixels [..., 2] (top-left origin) -> marker coordinates (0-1, bottom-left origin)."""
    w, h = size
    px = np.asarray(px, dtype=np.float64)
    return np.stack([px[..., 0] / w, 1.0 - px[..., 1] / h], axis=-1)


def sequence_from_markers(co: np.ndarray, scene_frames: np.ndarray, size: tuple[int, int],
                          names: tuple[str, ...] = TRACK_NAMES) -> LandmarkSequence:
    """Build the performance from marker positions.

    ``co``: float [68, T, 2] normalised marker positions in iBUG order, NaN where a track has no
    enabled marker; ``scene_frames``: int [T]; ``size``: the clip's (width, height) in pixels.
    Raises BadInput naming the tracks and scene frames of any gap.
    """
    co = np.asarray(co, dtype=np.float64)
    if co.shape[0] != NUM_POINTS:
        raise BadInput(f"wrong track count: got {co.shape[0]} tracks, a face performance needs {NUM_POINTS}")
    holes = ~np.isfinite(co).all(axis=2)  # [68, T]
    if holes.any():
        bad = np.flatnonzero(holes.any(axis=1))
        lines = [f"{names[i]} at scene frames {format_spans(np.asarray(scene_frames)[holes[i]])}"
                 for i in bad[:4]]
        more = f" (and {len(bad) - 4} more tracks)" if len(bad) > 4 else ""
        raise BadInput("tracks with gaps: " + "; ".join(lines) + more + ". Track or place those markers "
                       "(or enable them), or narrow the frame range to frames every track covers")
    landmarks = normalized_to_pixels(co, size).transpose(1, 0, 2)
    return LandmarkSequence(landmarks.astype(np.float32), np.asarray(scene_frames), size)


def markers_from_sequence(seq: LandmarkSequence) -> np.ndarray:
    """Normalised marker positions float [68, T, 2] (bottom-left origin) for the sequence's frames."""
    return pixels_to_normalized(seq.landmarks, seq.image_size).transpose(1, 0, 2)
