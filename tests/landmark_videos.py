"""Driver videos made from a real photograph: the astronaut moved by known affine maps, with
sensor-like noise, encoded by OpenCV's video writer. Used by the landmark tests and bench_landmarks.

Known positions: the astronaut's own detected landmarks carried through each frame's affine map.
Also the two measures the smoothing tests and the bench share: jitter and lag.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import data


@dataclass
class DriverVideo:
    path: Path
    frames: int
    size: tuple[int, int]  # width, height
    affines: np.ndarray  # (T, 2, 3) map from the still photo to each frame, pixels


def head_motion(count: int, kind: str) -> np.ndarray:
    """(T, 4) per-frame (dx, dy, degrees, scale) of the head: 'still', 'moving' (a smooth sway, turn
    and lean, as a talking actor does), or 'shift' (a step to the right half-way)."""
    t = np.arange(count, dtype=np.float64)
    motion = np.zeros((count, 4))
    motion[:, 3] = 1.0
    if kind == "moving":
        motion[:, 0] = 30 * np.sin(2 * np.pi * t / 40)
        motion[:, 1] = 12 * np.sin(2 * np.pi * t / 55 + 1.0)
        motion[:, 2] = 8 * np.sin(2 * np.pi * t / 50 + 0.5)
        motion[:, 3] = 1.0 + 0.08 * np.sin(2 * np.pi * t / 65)
    elif kind == "shift":
        motion[count // 2:, 0] = 20.0
    elif kind != "still":
        raise ValueError(kind)
    return motion


def affines_for(motion: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """(T, 2, 3) affine maps: rotate and scale about ``centre``, then shift."""
    out = []
    for dx, dy, degrees, scale in motion:
        m = cv2.getRotationMatrix2D(centre, float(degrees), float(scale))
        m[:, 2] += (dx, dy)
        out.append(m)
    return np.asarray(out)


def make_driver_video(path: Path, count: int = 48, kind: str = "moving", noise: float = 6.0,
                      seed: int = 0, codec: str = "MJPG", size: int = 384) -> DriverVideo:
    """Write a ``count``-frame video of the astronaut (scaled to ``size`` px square) at ``path``.
    ``noise`` is the standard deviation (0-255 levels) of per-frame Gaussian sensor noise."""
    photo = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    # rotate about a point on the face (the photo's face is in its upper middle)
    affines = affines_for(head_motion(count, kind), (0.44 * size, 0.26 * size))
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 24.0, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec} video to {path}")
    for m in affines:
        frame = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(frame + rng.normal(0.0, noise, frame.shape), 0, 255).astype(np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return DriverVideo(Path(path), count, (size, size), affines)


def still_photo(size: int = 384) -> np.ndarray:
    """The astronaut at the videos' size, uint8 RGB."""
    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def known_positions(points: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """(T, 68, 2): the still photo's landmarks ``points`` (68, 2) carried through each affine."""
    return np.einsum("tij,kj->tki", affines[:, :, :2], points) + affines[:, None, :, 2]


def jitter(points):
    """Mean frame-to-frame motion of the points, pixels."""
    return float(np.linalg.norm(np.diff(points, axis=0), axis=2).mean())


def lag_frames(reference, delayed):
    """How many frames ``delayed`` trails ``reference`` (both (T, 68, 2)): the peak of the
    cross-correlation of their frame-to-frame motion, refined to a fraction of a frame."""
    a = np.diff(reference.reshape(len(reference), -1), axis=0)
    b = np.diff(delayed.reshape(len(delayed), -1), axis=0)
    lags = np.arange(-5, 6)
    corr = np.array([np.sum(a[5:-5] * np.roll(b, -lag, axis=0)[5:-5]) for lag in lags])
    i = int(np.argmax(corr))
    if i in (0, len(lags) - 1):
        return float(lags[i])  # at the edge of the search: no neighbours to refine with
    y0, y1, y2 = corr[i - 1], corr[i], corr[i + 1]
    return float(lags[i] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2))
