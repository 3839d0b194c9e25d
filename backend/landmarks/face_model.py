"""A tiny parametric 68-point face: a neutral template, expressions and a 3-D head pose.

Used to make built-in performances (the demo) and synthetic talking heads (training data, tests).
Face units: the template is centred on the nose bridge, x to the image right, y down, the jaw about
two units wide; ``scale`` turns units into pixels. Every function returns float32 (68, 2) pixels,
top-left origin, in the iBUG order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _eye(cx: float, cy: float) -> list[tuple[float, float]]:
    # corner, two upper-lid points, corner, two lower-lid points (clockwise from the image-left corner)
    return [(cx - 0.18, cy), (cx - 0.06, cy - 0.07), (cx + 0.06, cy - 0.07),
            (cx + 0.18, cy), (cx + 0.06, cy + 0.06), (cx - 0.06, cy + 0.06)]


def _template() -> np.ndarray:
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw: ear (image left) under the chin to ear (image right)
        a = np.pi * (1.0 - i / 16.0)
        pts.append((0.95 * np.cos(a), -0.15 + 1.25 * np.sin(a) ** 0.9))
    for k in range(5):  # brows, arched
        pts.append((-0.8 + 0.16 * k, -0.55 - 0.08 * np.sin(np.pi * k / 4)))
    for k in range(5):
        pts.append((0.16 + 0.16 * k, -0.55 - 0.08 * np.sin(np.pi * k / 4)))
    pts += [(0.0, -0.35 + 0.17 * k) for k in range(4)]  # nose bridge down to the tip
    pts += [(-0.2, 0.26), (-0.1, 0.29), (0.0, 0.31), (0.1, 0.29), (0.2, 0.26)]  # nostrils
    pts += _eye(-0.42, -0.28) + _eye(0.42, -0.28)
    pts += [(-0.35, 0.62), (-0.22, 0.55), (-0.08, 0.52), (0.0, 0.54), (0.08, 0.52), (0.22, 0.55),
            (0.35, 0.62), (0.22, 0.72), (0.1, 0.76), (0.0, 0.77), (-0.1, 0.76), (-0.22, 0.72)]
    pts += [(-0.3, 0.62), (-0.1, 0.61), (0.0, 0.61), (0.1, 0.61),
            (0.3, 0.62), (0.1, 0.62), (0.0, 0.62), (-0.1, 0.62)]  # inner lips, closed
    return np.asarray(pts, dtype=np.float64)


TEMPLATE = _template()


def _depth(template: np.ndarray) -> np.ndarray:
    """A rough head surface: an ellipsoid with the nose sticking out, in face units."""
    x, y = template[:, 0], template[:, 1]
    z = 0.7 * np.sqrt(np.clip(1.0 - (x / 1.05) ** 2 - (y / 1.6) ** 2, 0.0, None))
    z[27:31] += np.array([0.08, 0.16, 0.25, 0.33])
    z[31:36] += np.array([0.12, 0.18, 0.22, 0.18, 0.12])
    return z


DEPTH = _depth(TEMPLATE)


@dataclass(frozen=True)
class Expression:
    """Expression controls, each 0 (neutral) to 1 (full); ``smile`` and ``brow_raise`` may go negative."""

    jaw_open: float = 0.0
    blink_left: float = 0.0   # the subject's left eye: image right (points 42-47)
    blink_right: float = 0.0  # the subject's right eye: image left (points 36-41)
    smile: float = 0.0
    brow_raise: float = 0.0


def expression_offsets(e: Expression) -> np.ndarray:
    """(68, 2) displacements in face units that ``e`` applies to the neutral template."""
    t = TEMPLATE
    d = np.zeros_like(t)
    # Jaw: the lower face follows the chin in proportion to how far below the ears it sits.
    jaw_w = np.clip((t[:17, 1] + 0.15) / 1.25, 0.0, 1.0) ** 1.5
    d[:17, 1] += 0.32 * e.jaw_open * jaw_w
    lower_lip = {55: 0.8, 56: 0.95, 57: 1.0, 58: 0.95, 59: 0.8, 65: 0.9, 66: 0.95, 67: 0.9}
    for i, w in lower_lip.items():
        d[i, 1] += 0.3 * e.jaw_open * w
    for i in (48, 54, 60, 64):
        d[i, 1] += 0.12 * e.jaw_open
    for i in (49, 50, 51, 52, 53, 61, 62, 63):
        d[i, 1] -= 0.02 * e.jaw_open
    # Blinks: the upper lid drops onto the lower lid, which rises a little.
    for amount, (u1, u2, l1, l2) in ((e.blink_right, (37, 38, 41, 40)), (e.blink_left, (43, 44, 47, 46))):
        for up, lo in ((u1, l1), (u2, l2)):
            gap = t[lo, 1] - t[up, 1]
            d[up, 1] += amount * 0.85 * gap
            d[lo, 1] -= amount * 0.15 * gap
    # Smile: mouth corners out and up.
    for i, side in ((48, -1), (60, -1), (54, 1), (64, 1)):
        d[i, 0] += 0.07 * e.smile * side
        d[i, 1] -= 0.06 * e.smile
    d[17:27, 1] -= 0.1 * e.brow_raise
    return d


def face_points(expression: Expression = Expression(), yaw: float = 0.0, pitch: float = 0.0,
                roll: float = 0.0, scale: float = 100.0, center: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The posed face in pixels: (68, 2) float32, top-left origin.

    ``yaw``/``pitch``/``roll`` are radians (orthographic projection of the rotated head);
    ``scale`` is pixels per face unit (the outer eye corners are 0.96 units apart);
    ``center`` is where the nose bridge's top (point 27 of the neutral face) lands.
    """
    p = TEMPLATE + expression_offsets(expression)
    xyz = np.stack([p[:, 0], p[:, 1], DEPTH], axis=1)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    anchor = np.array([TEMPLATE[27, 0], TEMPLATE[27, 1], DEPTH[27]])
    rotated = (xyz - anchor) @ (rz @ rx @ ry).T
    out = rotated[:, :2] * scale + np.asarray(center, dtype=np.float64)
    return out.astype(np.float32)
