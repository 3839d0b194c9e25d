"""The 68-point iBUG landmark layout (the order face-alignment returns).

Points are (x, y) pixels with a top-left origin. Groups name the face parts; ``closed`` says whether
the part's outline is a closed loop (eyes, lips) or an open polyline (jaw, brows, nose bridge).
"""
from __future__ import annotations

from dataclasses import dataclass

LAYOUT_NAME = "ibug68"
NUM_POINTS = 68


@dataclass(frozen=True)
class Part:
    name: str
    indices: tuple[int, ...]
    closed: bool


PARTS: tuple[Part, ...] = (
    Part("jaw", tuple(range(0, 17)), False),
    Part("right_brow", tuple(range(17, 22)), False),  # the subject's right: image left
    Part("left_brow", tuple(range(22, 27)), False),
    Part("nose_bridge", tuple(range(27, 31)), False),
    Part("nostrils", tuple(range(31, 36)), False),
    Part("right_eye", tuple(range(36, 42)), True),
    Part("left_eye", tuple(range(42, 48)), True),
    Part("outer_lips", tuple(range(48, 60)), True),
    Part("inner_lips", tuple(range(60, 68)), True),
)

# Points that move little with expression: eye corners and the nose. Used to align head pose.
STABLE_POINTS = (36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35)


def interocular_distance(points) -> float:
    """Distance between the outer eye corners (points 36 and 45) of one (68, 2) frame, in pixels."""
    import numpy as np

    p = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(p[45] - p[36]))
