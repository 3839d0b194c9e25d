"""Face crops for the neural engine: full-resolution portrait <-> the model's square crop, and back.

The crop follows the convention the model was trained on (``model_input.crop_affine``: scale and shift
only, a square 1.8x the landmarks' extent, lifted so forehead and hair fit), computed from each frame's
own landmarks with that same function. Crops are resampled in linear light (supersampled, then area-averaged, so large portraits
do not alias) and handed to the network as 8-bit sRGB, like its training frames. The generated crop goes
back through the inverse transform and is blended in under a soft matte: the face region (where the face
is now and where it was in the portrait, with its forehead) feathered, times a feather at the crop's
border so no seam shows where the crop ends.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from livingportrait_backend.colorspace import linear_to_srgb8
from livingportrait_backend.model_input import apply_affine

from ..landmarks.forehead import forehead_points
from . import FramePatch

MATTE_GROW = 1.12     # the face hull is grown by this factor about its centre before feathering
MATTE_FEATHER = 0.06  # Gaussian sigma of the matte, as a fraction of the crop side
BORDER_FEATHER = 0.08  # fraction of the crop side over which the matte fades out at the crop's edge


def crop_face(linear: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The crop of a scene-linear float32 (H, W, 3) portrait -> uint8 sRGB (size, size, 3).

    Sampled at about the source's own density, then area-averaged down (in linear light)."""
    scale = math.hypot(affine[0, 0], affine[0, 1])  # crop pixels per portrait pixel
    k = int(min(8, max(1, math.ceil(1.0 / max(scale, 1e-6)))))
    fine = cv2.warpAffine(linear, affine * k, (size * k, size * k), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    if k > 1:
        fine = cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA)
    return linear_to_srgb8(fine)


def _face_outline(points: np.ndarray) -> np.ndarray:
    """The 68 points plus the forehead points, float64 (74, 2)."""
    return np.concatenate([np.asarray(points, np.float64), forehead_points(points)])


def border_feather(size: int) -> np.ndarray:
    """float32 (size, size): 0 at a square crop's edge, rising smoothly to 1 at BORDER_FEATHER of the
    side inwards, so a pasted crop shows no seam where it ends."""
    ramp = np.clip((np.minimum(np.arange(size), np.arange(size)[::-1]) + 0.5) / (BORDER_FEATHER * size), 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return np.outer(ramp, ramp).astype(np.float32)


class PasteBack:
    """Blends generated crops into one portrait. ``portrait`` float32 (H, W, 3) scene-linear;
    ``portrait_points`` its face's 68 landmarks (pixels); ``size`` the crop side in pixels."""

    def __init__(self, portrait: np.ndarray, portrait_points: np.ndarray, size: int):
        self.portrait = portrait
        self.outline = _face_outline(portrait_points)
        self.size = size
        self.border = border_feather(size)

    def region(self, affine: np.ndarray) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) portrait pixels the crop covers, clipped to the portrait."""
        inv = cv2.invertAffineTransform(affine)
        corners = apply_affine(inv, np.array([[0, 0], [self.size, 0], [0, self.size], [self.size, self.size]]))
        h, w = self.portrait.shape[:2]
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)

    def paste(self, generated: np.ndarray, affine: np.ndarray, target_points: np.ndarray) -> FramePatch:
        """``generated`` float32 (S, S, 3) scene-linear crop made for landmarks ``target_points`` (68, 2)
        portrait pixels through ``affine`` -> the FramePatch: the blended region and its matte."""
        x0, y0, x1, y1 = self.region(affine)
        if x1 - x0 < 2 or y1 - y0 < 2:  # the face left the picture: nothing changes
            return FramePatch(0, 0, self.portrait[:1, :1].copy(), np.zeros((1, 1), np.float32))
        local = affine.copy()
        local[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)  # region pixels -> crop pixels
        dsize = (x1 - x0, y1 - y0)
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        rgb = np.maximum(cv2.warpAffine(generated, local, dsize, flags=flags, borderMode=cv2.BORDER_REPLICATE), 0)
        # Face matte in crop pixels: the hull of where the face is and where it was, grown and feathered.
        pts = apply_affine(affine, np.concatenate([_face_outline(target_points), self.outline]))
        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
        hull = (hull - hull.mean(0)) * MATTE_GROW + hull.mean(0)
        mask = np.zeros((self.size, self.size), np.uint8)
        cv2.fillPoly(mask, [np.round(hull * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        mask = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), MATTE_FEATHER * self.size)
        mask *= self.border
        matte = np.clip(cv2.warpAffine(mask, local, dsize, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0), 0, 1)
        base = self.portrait[y0:y1, x0:x1]
        a = matte[..., None]
        return FramePatch(y0, x0, (base * (1 - a) + rgb * a).astype(np.float32), matte.astype(np.float32))
