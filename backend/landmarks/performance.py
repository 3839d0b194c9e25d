"""The built-in performance: about 2 s at 24 fps of talking, two blinks and a small head turn.

Made from the parametric face model, so it needs no file and no actor. Pixels in a 512x512 frame,
frames numbered from 1.
"""
from __future__ import annotations

import numpy as np

from livingportrait_wire.landmarks import LandmarkSequence

from .face_model import Expression, face_points

FPS = 24
SECONDS = 2.0
IMAGE_SIZE = (512, 512)


def _blink(t: float, at: float, length: float = 0.22) -> float:
    """0 (open) .. 1 (closed) and back over ``length`` seconds centred on ``at``."""
    return float(np.clip(1.0 - abs(t - at) / (length / 2), 0.0, 1.0))


def builtin_performance(fps: int = FPS, seconds: float = SECONDS) -> LandmarkSequence:
    count = int(round(fps * seconds))
    frames = np.arange(1, count + 1, dtype=np.int32)
    points = []
    for f in frames:
        t = (f - 1) / fps
        # Talking: two syllable rhythms beating against each other, the jaw never below closed.
        jaw = max(0.0, 0.55 * np.sin(2 * np.pi * 2.6 * t) + 0.35 * np.sin(2 * np.pi * 1.3 * t + 0.8))
        jaw *= min(1.0, t / 0.25)  # start from the neutral face
        blink = max(_blink(t, 0.6), _blink(t, 1.5))
        expression = Expression(jaw_open=min(jaw, 1.0), blink_left=blink, blink_right=blink,
                                smile=0.15 * np.sin(np.pi * t / seconds))
        yaw = 0.12 * np.sin(2 * np.pi * t / seconds)     # about ±7 degrees
        pitch = 0.04 * np.sin(2 * np.pi * t / seconds * 2)
        points.append(face_points(expression, yaw=yaw, pitch=pitch, scale=170.0, center=(256.0, 200.0)))
    return LandmarkSequence(np.stack(points), frames, IMAGE_SIZE)
