"""What the neural model reads: the face crop's geometry, the landmark raster and a shot's input.

Training data (``data/``) and the few-shot engine both build the model's inputs through these
functions, so a crop or a raster at inference is exactly the one the networks were trained on.
Images and rasters handed to the network are float32 in [-1, 1], channels first.
"""
from __future__ import annotations

import numpy as np

from livingportrait_backend.landmarks.raster import draw_landmarks

# The crop is this many times the landmarks' larger extent, centred a little above their centre so
# the forehead and hair fit (the landmarks stop at the brows).
CROP_SCALE = 1.8
CROP_LIFT = 0.12


def crop_affine(points: np.ndarray, size: float = 1.0) -> np.ndarray:
    """(2, 3) float64 affine taking source pixels to the pixels of a ``size`` x ``size`` crop around a face
    with landmarks ``points`` (68, 2), top-left origin: scale and shift only, a square CROP_SCALE times
    the landmarks' extent, lifted by CROP_LIFT so forehead and hair fit. The training data's convention,
    which the few-shot engine's crops follow."""
    points = np.asarray(points, np.float64)
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = CROP_SCALE * float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    cx, cy = (lo + hi) / 2
    cy -= CROP_LIFT * side
    return np.array([[1 / side, 0, 0.5 - cx / side], [0, 1 / side, 0.5 - cy / side]], np.float64) * float(size)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) through a (2, 3) affine -> float32 (N, 2)."""
    return (np.asarray(points, np.float64) @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def raster_thickness(resolution: int) -> int:
    """The paper draws 2 px lines at 256 px; smaller rasters scale that down (to at least 1 px) so the
    strokes keep their share of the face instead of merging into blobs."""
    return max(1, round(2 * resolution / 256))


def to_network(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 (3, H, W) in [-1, 1]."""
    return image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0


def raster_for(points: np.ndarray, resolution: int) -> np.ndarray:
    """Landmarks (68, 2) pixels -> the landmark raster as float32 (3, S, S) in [-1, 1]."""
    r = draw_landmarks(points, resolution, thickness=raster_thickness(resolution))
    return r.transpose(2, 0, 1) * 2.0 - 1.0


def shot_input(image: np.ndarray, points: np.ndarray, resolution: int) -> np.ndarray:
    """What the embedder reads for one shot: uint8 RGB (S, S, 3) and its landmarks (68, 2) -> float32
    (6, S, S), the frame then its raster, both in [-1, 1]."""
    return np.concatenate([to_network(image), raster_for(points, resolution)])
