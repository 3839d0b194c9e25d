"""Forehead points: the 68-point layout stops at the brows, so engines that must move or matte the
forehead add points above them, lifted along the face's own up direction."""
from __future__ import annotations

import numpy as np

FOREHEAD_LIFT = 0.55           # brows lifted by this fraction of the brow-to-chin height
BROW_POINTS = [17, 19, 21, 22, 24, 26]  # the brows' ends and middles, left to right in the image


def face_up(points: np.ndarray) -> np.ndarray:
    """68 landmarks (pixels) -> float64 (2,): the face's own up direction, chin (8) to nose top (27), unit."""
    p = np.asarray(points, np.float64)
    up = p[27] - p[8]
    return up / max(float(np.linalg.norm(up)), 1e-6)


def forehead_points(points: np.ndarray) -> np.ndarray:
    """68 landmarks (pixels) -> float64 (6, 2): BROW_POINTS lifted by FOREHEAD_LIFT times the
    brow-to-chin height along the face's up direction (chin 8 -> nose top 27).

    The height is measured along that direction (chin to the highest brow point), not along the image's
    y axis, so a tilted head gets the same forehead as an upright one."""
    p = np.asarray(points, np.float64)
    up = face_up(p)
    face_h = max(float(((p[17:27] - p[8]) @ up).max()), 1e-6)
    return p[BROW_POINTS] + up * FOREHEAD_LIFT * face_h
