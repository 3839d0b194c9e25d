"""sRGB <-> scene-linear (Rec.709 primaries, D65) conversions.

The sRGB transfer function (IEC 61966-2-1) is piecewise: linear below 0.04045, a 2.4 power above.
"""
from __future__ import annotations

import numpy as np


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Encoded sRGB values in [0, 1] -> linear, float32."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear values -> encoded sRGB in [0, 1] (clipped), float32."""
    v = np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055).astype(np.float32)


# Exact decode of every 8-bit code value: one table lookup per pixel instead of a power.
SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)


def linear_to_srgb8(v: np.ndarray) -> np.ndarray:
    """Linear -> 8-bit sRGB (rounded), for detectors and previews."""
    return np.round(linear_to_srgb(v) * 255.0).astype(np.uint8)
