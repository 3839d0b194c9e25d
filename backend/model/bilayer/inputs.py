"""The bi-layer model's input conventions (the publisher's inference code, read and re-expressed).

Crop box: the centre of the landmarks' bounding box (rounded to whole pixels), half-side = the box's
larger side (truncated), centre raised by half-side // 6; the square [c - h, c + h) is cut out of the
8-bit sRGB image (zeros outside it) and resized to S x S bicubically (PIL). Keypoints are landmarks
relative to the square, scaled to [-1, 1] and flattened to 136 values. The landmark drawing ("stickman")
is drawn from the keypoints at S x S, aliased 2-px lines on a background of 1/255, scaled to [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livingportrait_backend.landmarks.raster import draw_landmarks


@dataclass(frozen=True)
class CropBox:
    """A square crop in portrait pixels: centre (cx, cy) and half-side ``half`` (whole pixels)."""
    cx: int
    cy: int
    half: int

    @property
    def left_top(self) -> np.ndarray:
        return np.array([self.cx - self.half, self.cy - self.half], np.float64)

    @property
    def side(self) -> int:
        return 2 * self.half


def crop_box(points: np.ndarray) -> CropBox:
    """The publisher's crop for one face's 68 landmarks (pixels)."""
    p = np.asarray(points, np.float32)
    centre = ((p.min(0) + p.max(0)) / 2).round().astype(int)
    half = int(max(p[:, 0].max() - p[:, 0].min(), p[:, 1].max() - p[:, 1].min()))
    return CropBox(int(centre[0]), int(centre[1] - half // 6), half)


def crop_image(srgb8: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> the box's crop as float32 (3, size, size) in [-1, 1]."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(srgb8)).crop(
        (box.cx - box.half, box.cy - box.half, box.cx + box.half, box.cy + box.half))
    img = img.resize((size, size), Image.BICUBIC)
    return (np.asarray(img, np.float32).transpose(2, 0, 1) / np.float32(255.0) - np.float32(0.5)) * np.float32(2)


def keypoints(points: np.ndarray, box: CropBox) -> np.ndarray:
    """Landmarks (..., 68, 2) portrait pixels -> (..., 136) float32 in the box's [-1, 1] frame."""
    p = (np.asarray(points, np.float32) - box.left_top.astype(np.float32)) / np.float32(box.side)
    return ((p - np.float32(0.5)) * np.float32(2)).reshape(*p.shape[:-2], 136)


def to_pixels(kp: np.ndarray, box: CropBox) -> np.ndarray:
    """The inverse of ``keypoints``: (..., 136) -> (..., 68, 2) portrait pixels."""
    p = np.asarray(kp, np.float64).reshape(*np.shape(kp)[:-1], 68, 2)
    return (p / 2 + 0.5) * box.side + box.left_top


def stickman(kp: np.ndarray, size: int, thickness: int = 2) -> np.ndarray:
    """Keypoints (136,) -> the landmark drawing, float32 (3, size, size) in [-1, 1]."""
    xy = (np.asarray(kp, np.float32).reshape(68, 2) + np.float32(1)) / np.float32(2) * np.float32(size)
    img = draw_landmarks(xy.astype(np.int32).astype(np.float64), size, thickness, antialias=False, background=1)
    return (img.transpose(2, 0, 1) - np.float32(0.5)) * np.float32(2)
