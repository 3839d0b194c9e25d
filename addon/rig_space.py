"""Where a landmark rig's points sit: portrait pixels <-> the rig's local plane (no bpy).

The rig is an image empty showing the portrait, ``display_size`` wide along the image's longer side and
centred on its origin (Blender's default image offset of -0.5, -0.5), in the empty's local XY plane.
Pixels have a top-left origin; local coordinates are Blender units with +Y up.
"""
from __future__ import annotations

import numpy as np


def _extent(size: tuple[int, int], display_size: float) -> tuple[float, float]:
    w, h = size
    scale = display_size / max(w, h)
    return w * scale, h * scale


def pixels_to_local(px: np.ndarray, size: tuple[int, int], display_size: float = 1.0) -> np.ndarray:
    """Pixels [..., 2] (top-left origin) -> local XY [..., 2] on the rig's image plane."""
    px = np.asarray(px, dtype=np.float64)
    ex, ey = _extent(size, display_size)
    w, h = size
    return np.stack([(px[..., 0] / w - 0.5) * ex, (0.5 - px[..., 1] / h) * ey], axis=-1)


def local_to_pixels(xy: np.ndarray, size: tuple[int, int], display_size: float = 1.0) -> np.ndarray:
    """Local XY [..., 2] on the rig's image plane -> pixels [..., 2] (top-left origin)."""
    xy = np.asarray(xy, dtype=np.float64)
    ex, ey = _extent(size, display_size)
    w, h = size
    return np.stack([(xy[..., 0] / ex + 0.5) * w, (0.5 - xy[..., 1] / ey) * h], axis=-1)
