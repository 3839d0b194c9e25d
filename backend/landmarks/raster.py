"""The landmark raster the neural model sees: the paper's drawing of a face's 68 points as coloured
polylines on black (the palette and groups of the lab's public code, REFERENCE.md).

Groups, in drawing order: jaw 0-16 white (open); right brow 17-21 red, left brow 22-26 green (open);
nose bridge 27-30 continued to 33, blue (open); nostrils 31-35 blue (open); right eye 36-41 magenta,
left eye 42-47 cyan (closed); outer lips 48-59 and inner lips 60-67 yellow (closed).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Stroke:
    indices: tuple[int, ...]
    closed: bool
    colour: tuple[int, int, int]  # RGB, 0-255


WHITE, RED, GREEN, BLUE = (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255)
MAGENTA, CYAN, YELLOW = (255, 0, 255), (0, 255, 255), (255, 255, 0)

STROKES: tuple[Stroke, ...] = (
    Stroke(tuple(range(0, 17)), False, WHITE),
    Stroke(tuple(range(17, 22)), False, RED),
    Stroke(tuple(range(22, 27)), False, GREEN),
    Stroke((27, 28, 29, 30, 33), False, BLUE),
    Stroke(tuple(range(31, 36)), False, BLUE),
    Stroke(tuple(range(36, 42)), True, MAGENTA),
    Stroke(tuple(range(42, 48)), True, CYAN),
    Stroke(tuple(range(48, 60)), True, YELLOW),
    Stroke(tuple(range(60, 68)), True, YELLOW),
)

_SHIFT = 4  # cv2 draws with 1/16 px sub-pixel precision


def draw_landmarks(points: np.ndarray, size: int | tuple[int, int], thickness: int = 2,
                   antialias: bool = True, background: int = 0) -> np.ndarray:
    """Draw one face's landmarks.

    ``points`` (68, 2) pixels, top-left origin, in the raster's own coordinates; ``size`` the raster's
    (width, height), or one int for a square; ``thickness`` line width in pixels.
    Returns float32 (height, width, 3) RGB in [0, 1], black background, anti-aliased lines.
    ``antialias=False`` draws the bi-layer model's variant: points truncated to whole pixels, aliased
    lines, on a background of ``background``/255 (its training drawings used 1).
    """
    width, height = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"draw_landmarks needs (68, 2) points, got {pts.shape}")
    canvas = np.full((height, width, 3), background, np.uint8)
    shift = _SHIFT if antialias else 0
    fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32) if antialias else pts.astype(np.int32)
    for stroke in STROKES:
        cv2.polylines(canvas, [fixed[list(stroke.indices)]], stroke.closed, stroke.colour,
                      thickness=thickness, lineType=cv2.LINE_AA if antialias else cv2.LINE_8, shift=shift)
    return canvas.astype(np.float32) * np.float32(1.0 / 255.0)
