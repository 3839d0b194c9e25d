"""A small, fast render job for the reliability, security and fuzz tests and for bench/soak.py.

A 160x160 crop-and-downscale of the astronaut portrait with the portrait's landmarks given (the
neutral face of the built-in performance, scaled): no detector runs, a frame renders in milliseconds.
"""
from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from livingportrait_backend.landmarks.face_model import face_points
from livingportrait_backend.landmarks.performance import IMAGE_SIZE, builtin_performance
from livingportrait_wire.client import RenderJob
from livingportrait_wire.landmarks import LandmarkSequence

SIZE = 160


def portrait_png(tint: int = 0) -> bytes:
    """PNG bytes of the small portrait; ``tint`` shifts the red channel so each client's differs."""
    image = cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    image[:, :, 0] = np.clip(image[:, :, 0].astype(int) + tint, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", image[:, :, ::-1])
    assert ok
    return encoded.tobytes()


def portrait_landmarks() -> np.ndarray:
    """float32 (68, 2) pixels: the performance's neutral face scaled into the small portrait."""
    k = SIZE / IMAGE_SIZE[0]
    return face_points(scale=170.0 * k, center=(256.0 * k, 200.0 * k)).astype(np.float32)


def performance(frames: int = 48) -> LandmarkSequence:
    """``frames`` frames numbered from 1: the built-in performance, looped."""
    base = builtin_performance()
    index = np.arange(frames) % len(base.frames)
    return LandmarkSequence(base.landmarks[index], np.arange(1, frames + 1, dtype=np.int32), base.image_size)


def render_job(out_dir: str, name: str = "shot", frames: int = 48, window: int = 4, tint: int = 0) -> RenderJob:
    return RenderJob([portrait_png(tint)], performance(frames), str(out_dir), name,
                     portrait_landmarks=portrait_landmarks(), window=window)
