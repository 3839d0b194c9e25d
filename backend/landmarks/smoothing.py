"""Temporal clean-up of a tracked performance: One-Euro filters on head pose and expression apart.

Each frame is split (as in retargeting) into a head pose, the similarity A_t taking a reference face's
stable points onto the frame's, and an expression, E_t = A_t^-1(frame) - reference. The pose is
filtered as (log scale, roll angle, face centre) and the expression per point, each with its own
One-Euro filter (Casiez et al. 2012: a low-pass whose cutoff rises with speed, so still faces are
steadied hard while fast motion passes). Filtering the scale as one number stops the head wobbling in
size, which independent point filters cannot. All quantities are measured in reference inter-ocular
distances and time in frames, so the same strength suits any resolution and frame rate.

Offline (the default, the whole clip is known) each filter runs forwards and backwards and the two
passes are averaged, which cancels the filter's lag; ``causal=True`` runs one forward pass, as a live
feed would need.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import LandmarkSequence
from livingportrait_wire.layout import STABLE_POINTS, interocular_distance
from livingportrait_wire.render_settings import smoothing_strength

from .retarget import head_poses
from .similarity import Similarity

# One-Euro settings at strength 1. Cutoffs in cycles per frame; beta in (cycles per frame) per
# (inter-ocular distance per frame). Pose is steadied harder than expression: heads move slower
# than eyelids and lips, and wobble there is what viewers notice.
POSE_MIN_CUTOFF = 0.01
POSE_BETA = 4.0
EXPRESSION_MIN_CUTOFF = 0.02
EXPRESSION_BETA = 6.0
DERIVATIVE_CUTOFF = 0.15


@dataclass(frozen=True)
class SmoothingOptions:
    """``strength``: 0 = off, 1 = default, higher = steadier (cutoffs divided by it);
    ``causal``: one forward pass (live) instead of the zero-lag forward-backward pass (offline)."""

    strength: float = 1.0
    causal: bool = False

    def __post_init__(self):
        try:
            smoothing_strength(self.strength)
        except ValueError as exc:
            raise BadInput(f"smoothing: {exc}") from None

    @property
    def off(self) -> bool:
        return self.strength == 0.0

    @classmethod
    def parse(cls, text) -> "SmoothingOptions":
        """From a command-line value (or the wire's): 'off' or a strength number (RenderSettings' check)."""
        try:
            strength = smoothing_strength(text)
        except ValueError as exc:
            raise BadInput(f"--smoothing: {exc}") from None
        return cls(strength=1.0 if strength is None else strength)


def one_euro(values: np.ndarray, frames: np.ndarray, min_cutoff: float, beta: float,
             derivative_cutoff: float = DERIVATIVE_CUTOFF) -> np.ndarray:
    """One forward One-Euro pass over ``values`` (T, K, D): K signals of D dimensions each, sampled at
    frame numbers ``frames`` (T,) (gaps allowed). The cutoff of each signal rises with the norm of its
    D-dimensional speed. Returns the filtered (T, K, D) float64."""
    x = np.asarray(values, np.float64)
    out = np.empty_like(x)
    out[0] = x[0]
    speed = np.zeros(x.shape[1:])
    for t in range(1, len(x)):
        dt = float(frames[t] - frames[t - 1])
        a_d = _alpha(derivative_cutoff, dt)
        speed = speed + a_d * ((x[t] - out[t - 1]) / dt - speed)
        cutoff = min_cutoff + beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        out[t] = out[t - 1] + _alpha(cutoff, dt) * (x[t] - out[t - 1])
    return out


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def _filter(values, frames, min_cutoff, beta, causal):
    forward = one_euro(values, frames, min_cutoff, beta)
    if causal:
        return forward
    # the backward pass sees the frames in reverse, with the same (positive) spacing
    backward = one_euro(values[::-1], -frames[::-1], min_cutoff, beta)[::-1]
    return 0.5 * (forward + backward)


def smooth_points(points: np.ndarray, frames: np.ndarray,
                  options: SmoothingOptions = SmoothingOptions()) -> np.ndarray:
    """Smoothed copy of ``points`` (T, 68, 2) pixels sampled at frame numbers ``frames`` (T,),
    as float32; unchanged when smoothing is off or there is a single frame."""
    pts = np.asarray(points, np.float64)
    frames = np.asarray(frames, np.float64)
    if options.off or len(pts) < 2:
        return pts.astype(np.float32)
    stable = list(STABLE_POINTS)
    reference = pts[0]
    unit = max(interocular_distance(reference), 1e-6)
    ref_centre = reference[stable].mean(axis=0)

    poses = head_poses(pts, reference)
    log_scale = np.log([p.scale for p in poses])
    angle = np.unwrap([p.angle for p in poses])
    centre = np.stack([p.apply(ref_centre) for p in poses]) / unit
    expression = np.stack([p.inverse().apply(frame) for p, frame in zip(poses, pts)]) - reference

    k = 1.0 / options.strength

    def smooth(values, min_cutoff, beta):
        return _filter(values, frames, min_cutoff * k, beta * k, options.causal)

    log_scale = smooth(log_scale[:, None, None], POSE_MIN_CUTOFF, POSE_BETA)[:, 0, 0]
    angle = smooth(angle[:, None, None], POSE_MIN_CUTOFF, POSE_BETA)[:, 0, 0]
    centre = smooth(centre[:, None, :], POSE_MIN_CUTOFF, POSE_BETA)[:, 0, :] * unit
    expression = smooth(expression / unit, EXPRESSION_MIN_CUTOFF, EXPRESSION_BETA) * unit

    out = np.empty_like(pts)
    for t in range(len(pts)):
        scale = float(np.exp(log_scale[t]))
        pose = Similarity(scale, float(angle[t]), np.zeros(2))
        pose = Similarity(scale, float(angle[t]), centre[t] - pose.apply(ref_centre))
        out[t] = pose.apply(reference + expression[t])
    return out.astype(np.float32)


def smooth_sequence(seq: LandmarkSequence, options: SmoothingOptions = SmoothingOptions()) -> LandmarkSequence:
    """A smoothed copy of ``seq``; the input track is kept in ``extras['raw_landmarks']`` (already
    there: left as it is), so the raw stays recoverable from the saved file."""
    extras = dict(seq.extras)
    extras.setdefault("raw_landmarks", seq.landmarks.copy())
    return LandmarkSequence(smooth_points(seq.landmarks, seq.frames, options), seq.frames.copy(),
                            seq.image_size, None if seq.confidence is None else seq.confidence.copy(), extras)
