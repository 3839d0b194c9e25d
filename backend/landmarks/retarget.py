"""Retargeting: the ONE function that turns a driver's landmark performance into target landmarks on
a portrait. Every engine and every client goes through ``retarget``.

Relative mode (the default) transfers the driver's motion, not its face shape. Each driver frame is
split into
  - head pose: the similarity transform A_t (rotation, scale, translation) that best maps the neutral
    frame's stable points (eye corners, nose; ``layout.STABLE_POINTS``) onto this frame's, and
  - expression: what is left, E_t = A_t^-1(frame) - neutral, i.e. the non-rigid displacement measured in
    the neutral frame's head coordinates (a blink or an open jaw, with the head motion taken out).
The driver's neutral face is aligned onto the portrait by a similarity B fitted on the stable points;
B's scale is the face-size ratio (scale adaptation) and its rotation the difference in head roll. Then
    target_t = (B o A_t o B^-1)(portrait + expression_scale * mask * B_linear(E_t))
so the portrait keeps its own face shape, the expression is resized to the portrait's face, and the
pose change is replayed about the portrait's own face (same rotation and relative scale, translation
scaled by the size ratio). Pure head translation therefore moves every point by the same amount, and
pure jaw motion leaves the eyes where they are.

Absolute mode uses the driver's aligned neutral shape B(neutral) instead of the portrait's points as the
base, so (with all regions on) the result is exactly B(frame): the driver's face shape, which leaks the
driver's identity onto the portrait. It is there for drivers that are the portrait's own person.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import LandmarkSequence
from livingportrait_wire.layout import NUM_POINTS, STABLE_POINTS
from livingportrait_wire.render_settings import REGIONS, RenderSettings

from .similarity import Similarity, fit_similarity

# Expression regions -> iBUG points they move. "expression" is every point (all non-rigid motion,
# the nose included); "pose" is the head's similarity transform, not a set of points.
EXPRESSION_REGIONS: dict[str, tuple[int, ...]] = {
    "expression": tuple(range(NUM_POINTS)),
    "jaw": tuple(range(0, 17)),
    "brows": tuple(range(17, 27)),
    "eyes": tuple(range(36, 48)),
    "mouth": tuple(range(48, 68)),
}
assert set(REGIONS) == {"pose", *EXPRESSION_REGIONS}, "the settings' region names and the points they move"


@dataclass
class RetargetOptions:
    """How a driver's performance lands on a portrait (the retargeting fields of ``RenderSettings``,
    which checks them).

    ``mode``: "relative" (motion only, default) or "absolute" (driver's face shape, aligned).
    ``neutral_frame``: the driver frame NUMBER whose face counts as neutral; None = the first frame.
    ``expression_scale``: multiplies the expression (non-rigid) motion; 0 freezes the face, 1 as acted.
    ``regions``: which parts transfer, any of pose, expression, eyes, brows, mouth, jaw.
    """

    mode: str = "relative"
    neutral_frame: int | None = None
    expression_scale: float = 1.0
    regions: tuple[str, ...] = ("pose", "expression")

    @classmethod
    def from_settings(cls, settings: RenderSettings | dict) -> "RetargetOptions":
        """The retargeting part of a job's settings (a RenderSettings, or a mapping read by
        ``RenderSettings.from_dict``: BadInput names the bad key)."""
        if not isinstance(settings, RenderSettings):
            settings = RenderSettings.from_dict(settings)
        return cls(settings.mode, settings.neutral_frame, settings.expression_scale, settings.regions)

    def point_mask(self) -> np.ndarray:
        """float (68,) 1 where the expression transfers, 0 where the portrait keeps its neutral shape."""
        mask = np.zeros(NUM_POINTS)
        for region in self.regions:
            if region in EXPRESSION_REGIONS:
                mask[list(EXPRESSION_REGIONS[region])] = 1.0
        return mask


def _neutral_index(driver: LandmarkSequence, neutral_frame: int | None) -> int:
    if neutral_frame is None:
        return 0
    try:
        return driver.frame_index(int(neutral_frame))
    except KeyError:
        raise BadInput(f"neutral_frame: frame {neutral_frame} is not in the driver performance (it holds "
                       f"{len(driver)} frames, {int(driver.frames[0])}-{int(driver.frames[-1])})") from None


def head_poses(points: np.ndarray, reference: np.ndarray) -> list[Similarity]:
    """Per frame of ``points`` (T, 68, 2), the similarity taking ``reference``'s (68, 2) stable points
    onto that frame's: the head pose relative to the reference."""
    stable = list(STABLE_POINTS)
    return [fit_similarity(reference[stable], frame[stable]) for frame in points]


def retarget(portrait_points: np.ndarray, driver: LandmarkSequence,
             options: RetargetOptions | None = None) -> np.ndarray:
    """Target landmarks on the portrait for every driver frame.

    ``portrait_points`` float (68, 2): the portrait's own landmarks, pixels, top-left origin.
    ``driver``: the performance (pixels in the driver's own image; any size).
    Returns float32 (T, 68, 2) in PORTRAIT pixel coordinates, one per driver frame, in driver order.
    """
    options = options or RetargetOptions()
    portrait = np.asarray(portrait_points, np.float64)
    if portrait.shape != (NUM_POINTS, 2) or not np.all(np.isfinite(portrait)):
        raise BadInput(f"portrait landmarks must be 68 finite (x, y) points, got shape {list(portrait.shape)}")
    frames = driver.landmarks.astype(np.float64)
    neutral = frames[_neutral_index(driver, options.neutral_frame)]
    stable = list(STABLE_POINTS)
    to_portrait = fit_similarity(neutral[stable], portrait[stable])  # B
    from_portrait = to_portrait.inverse()
    base = portrait if options.mode == "relative" else to_portrait.apply(neutral)
    weight = options.point_mask()[:, None] * options.expression_scale
    use_pose = "pose" in options.regions

    out = np.empty(frames.shape, np.float32)
    for t, (frame, pose) in enumerate(zip(frames, head_poses(frames, neutral))):
        expression = pose.inverse().apply(frame) - neutral  # E_t, driver neutral head coordinates
        target = base + (weight * expression) @ to_portrait.matrix.T
        if use_pose:
            target = from_portrait.then(pose).then(to_portrait).apply(target)
        out[t] = target
    return out


def gaze_offsets(driver: LandmarkSequence, neutral_frame: int | None = None) -> np.ndarray:
    """float32 [T, 2, 2]: per frame and eye (36-41, then 42-47), how far the iris has moved from where
    it was in the neutral frame, in widths of that eye (corner to corner), in the face's own frame
    (rotated with the head's roll), so it carries over to a portrait of any size and pose."""
    gaze = np.asarray(driver.gaze, np.float64)
    lm = np.asarray(driver.landmarks, np.float64)
    out = np.zeros(gaze.shape, np.float64)
    for k, (a, b) in enumerate(((36, 39), (42, 45))):
        axis = lm[:, b] - lm[:, a]
        width = np.maximum(np.linalg.norm(axis, axis=1), 1e-6)
        ux = axis / width[:, None]
        uy = np.stack([-ux[:, 1], ux[:, 0]], 1)
        rel = gaze[:, k] - lm[:, a:a + 6].mean(1)
        out[:, k] = np.stack([(rel * ux).sum(1), (rel * uy).sum(1)], 1) / width[:, None]
    return (out - out[_neutral_index(driver, neutral_frame)]).astype(np.float32)
