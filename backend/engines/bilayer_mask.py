"""The source segmentation the bi-layer identity embedder needs, from a segmenter that ships offline.

The publisher made it with Graphonomy (human parsing: foreground = 1 - P(background), then eroded with a
5 px disc), which needs CUDA and its own download. Here: mediapipe 0.10.21's bundled selfie segmentation
(person vs background, its 256x256 "general" model), eroded the same way. The two differ in what they
call foreground (selfie segmentation is trained on people in front of cameras, Graphonomy on parsed
bodies) and in their edges; see docs/bilayer.md for what was measured.
"""
from __future__ import annotations

import cv2
import numpy as np

SEGMENTER = "mediapipe-selfie-general"
ERODE = 5  # the publisher's erosion disc, pixels at 256


def _disc(size: int) -> np.ndarray:
    r = np.arange(-size // 2 + 1, size // 2 + 1)
    x, y = np.meshgrid(r, r)
    return (x ** 2 + y ** 2 < (size / 2.0) ** 2).astype(np.uint8)


def source_mask(crop8: np.ndarray) -> np.ndarray:
    """uint8 RGB (S, S, 3) crop of the portrait -> foreground probability float32 (S, S) in [0, 1]."""
    from .selfie_segmentation import selfie_probability

    return cv2.erode(selfie_probability(crop8), _disc(ERODE), iterations=1)
