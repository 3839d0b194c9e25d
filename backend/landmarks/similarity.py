"""2-D similarity transforms (rotation, uniform scale, translation) and their least-squares fit.

A transform maps points ``p`` (N, 2) to ``scale * p @ rotation.T + translation``; it is how head pose is
separated from expression, both in retargeting and in temporal smoothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    scale: float
    angle: float  # radians; positive turns +x towards +y (clockwise on screen, where y points down)
    translation: np.ndarray  # (2,)

    @property
    def rotation(self) -> np.ndarray:
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.array([[c, -s], [s, c]])

    @property
    def matrix(self) -> np.ndarray:
        """The 2x2 linear part ``scale * rotation``."""
        return self.scale * self.rotation

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transformed points, same shape as ``points`` (..., 2), float64."""
        return np.asarray(points, np.float64) @ self.matrix.T + self.translation

    def inverse(self) -> "Similarity":
        inv_scale = 1.0 / self.scale
        rot_t = self.rotation.T
        return Similarity(inv_scale, -self.angle, -inv_scale * (rot_t @ self.translation))

    def then(self, other: "Similarity") -> "Similarity":
        """The transform applying ``self`` first, then ``other``."""
        return Similarity(self.scale * other.scale, self.angle + other.angle,
                          other.matrix @ self.translation + other.translation)


def fit_similarity(source: np.ndarray, target: np.ndarray) -> Similarity:
    """Least-squares similarity taking ``source`` (N, 2) onto ``target`` (N, 2) (Umeyama's method,
    reflections excluded). Needs at least two distinct source points."""
    src = np.asarray(source, np.float64)
    dst = np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - src_mean, dst - dst_mean
    # For 2-D similarities the optimum has a closed form in complex numbers: z_dst = k * z_src.
    za = a[:, 0] + 1j * a[:, 1]
    zb = b[:, 0] + 1j * b[:, 1]
    denom = float(np.sum(np.abs(za) ** 2))
    if denom <= 1e-12:
        raise ValueError("cannot fit a similarity: the source points coincide")
    k = np.sum(np.conj(za) * zb) / denom
    scale, angle = float(np.abs(k)), float(np.angle(k))
    rot_scale = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return Similarity(scale, angle, dst_mean - rot_scale @ src_mean)
