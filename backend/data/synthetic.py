"""Procedural talking heads: per-identity faces drawn around the 68 landmarks of the parametric face.

Every identity has its own skin, hair (colour and style), eye, brow and lip colours, freckles, face
proportions and background; every frame its own head pose and expression. Everything is a pure
function of (seed, video, frame), so any frame can be rendered on demand, in any order, identically on
every machine and process. Frames are uint8 RGB (S, S, 3); landmarks float32 (68, 2) pixels, top-left
origin, in the same S x S image.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livingportrait_backend.landmarks.face_model import Expression, face_points

_SUPERSAMPLE = 2  # draw at 2x and area-downsample: smooth edges at any resolution


@dataclass(frozen=True)
class Identity:
    skin: np.ndarray  # (3,) RGB 0..255
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    brows: np.ndarray
    background: np.ndarray  # (2, 3) top and bottom colours of the backdrop gradient
    hair_style: int  # 0 short cap, 1 fringe, 2 long
    width: float  # face proportions
    height: float
    eye_spacing: float
    freckles: np.ndarray  # (F, 3) landmark indices; (F, 3) weights -> points that move with the face
    freckle_weights: np.ndarray
    texture: np.ndarray  # (8, 8) low-frequency backdrop pattern in [-1, 1]


def make_identity(rng: np.random.Generator) -> Identity:
    """A random identity drawn from ``rng``."""
    skin_tone = rng.uniform(0.0, 1.0)
    skin = (1 - skin_tone) * np.array([245, 210, 180]) + skin_tone * np.array([95, 60, 40])
    skin = np.clip(skin + rng.normal(0, 12, 3), 0, 255)
    n_freckles = int(rng.integers(0, 12))
    return Identity(
        skin=skin,
        hair=rng.uniform(10, 240, 3) * rng.uniform(0.3, 1.0),
        iris=rng.uniform(20, 200, 3),
        lips=np.clip(skin * rng.uniform(0.55, 0.85) + np.array([50, 0, 10]), 0, 255),
        brows=rng.uniform(10, 120, 3),
        background=rng.uniform(0, 255, (2, 3)),
        hair_style=int(rng.integers(0, 3)),
        width=float(rng.uniform(0.85, 1.15)),
        height=float(rng.uniform(0.9, 1.1)),
        eye_spacing=float(rng.uniform(-0.06, 0.06)),
        freckles=rng.integers(0, 68, (n_freckles, 3)),
        freckle_weights=rng.dirichlet(np.ones(3), n_freckles),
        texture=rng.uniform(-1, 1, (8, 8)),
    )


def identity_points(identity: Identity, expression: Expression, yaw: float, pitch: float, roll: float,
                    size: int, jitter: np.ndarray = np.zeros(3)) -> np.ndarray:
    """The identity's posed landmarks in an S x S crop: (68, 2) float32 pixels, top-left origin.

    ``jitter`` = (dx, dy, dscale) as fractions of S, the framing wobble a real tracker's crop has.
    """
    scale = size * 0.27 * (1 + jitter[2])
    center = (size * (0.5 + jitter[0]), size * (0.45 + jitter[1]))
    p = face_points(expression, yaw, pitch, roll, scale=scale, center=center).astype(np.float64)
    # Per-identity proportions, applied around the nose bridge in the head's rolled frame.
    c, s = np.cos(roll), np.sin(roll)
    rot = np.array([[c, -s], [s, c]])
    local = (p - center) @ rot
    local[:, 0] *= identity.width
    local[:, 1] *= identity.height
    eyes = np.r_[36:42]
    local[eyes, 0] -= identity.eye_spacing * scale
    local[np.r_[42:48], 0] += identity.eye_spacing * scale
    return (local @ rot.T + center).astype(np.float32)


def render_face(identity: Identity, points: np.ndarray, size: int) -> np.ndarray:
    """Draw the identity around ``points`` (68, 2) pixels -> uint8 RGB (size, size, 3)."""
    k = _SUPERSAMPLE
    s = size * k
    pts = points.astype(np.float64) * k
    lw = max(1, int(round(s / 64)))

    t = np.linspace(0, 1, s)[:, None, None]
    backdrop = (1 - t) * identity.background[0] + t * identity.background[1]
    backdrop = backdrop + 25 * cv2.resize(identity.texture, (s, s), interpolation=cv2.INTER_CUBIC)[..., None]
    img = np.clip(backdrop, 0, 255).astype(np.uint8)
    sh = 4  # cv2 fixed-point shift: sub-pixel drawing
    one = 1 << sh

    def col(c):
        return tuple(int(v) for v in np.clip(c, 0, 255))

    def poly(p):
        return [np.round(p * one).astype(np.int32)]

    jaw = pts[0:17]
    brow_mid = pts[17:27].mean(axis=0)
    chin = pts[8]
    up = brow_mid - chin
    up /= np.linalg.norm(up) + 1e-9
    face_h = np.linalg.norm(brow_mid - chin)
    # Forehead: the jaw's ends arched up over the brows.
    arc = np.linspace(0, np.pi, 9)[1:-1]
    left, right = jaw[0], jaw[16]
    mid = (left + right) / 2
    half = (right - left) / 2
    forehead = np.array([mid - np.cos(a) * half + np.sin(a) * up * face_h * 0.75 for a in arc])
    outline = np.concatenate([jaw, forehead[::-1]])
    # Neck and back hair.
    neck_w = np.linalg.norm(half) * 0.55
    side = np.array([-up[1], up[0]])
    neck = np.array([chin - side * neck_w - up * 0.1 * face_h, chin + side * neck_w - up * 0.1 * face_h,
                     chin + side * neck_w * 1.3 - up * face_h * 2, chin - side * neck_w * 1.3 - up * face_h * 2])
    cv2.fillPoly(img, poly(neck), col(identity.skin * 0.8), cv2.LINE_AA, sh)
    head_c = mid + up * face_h * 0.35
    if identity.hair_style == 2:
        long_hair = np.concatenate([forehead * 1.0 + (forehead - head_c) * 0.25,
                                    [right - up * face_h * 0.9 + (right - mid) * 0.25,
                                     left - up * face_h * 0.9 + (left - mid) * 0.25]])
        cv2.fillPoly(img, poly(long_hair), col(identity.hair), cv2.LINE_AA, sh)
    cap = np.concatenate([forehead + (forehead - head_c) * 0.18, [right, left]])
    cv2.fillPoly(img, poly(cap), col(identity.hair), cv2.LINE_AA, sh)
    cv2.fillPoly(img, poly(outline), col(identity.skin), cv2.LINE_AA, sh)
    if identity.hair_style == 1:
        fringe = np.concatenate([forehead, [pts[24] + up * face_h * 0.12, pts[19] + up * face_h * 0.12]])
        cv2.fillPoly(img, poly(fringe), col(identity.hair), cv2.LINE_AA, sh)
    else:
        top = np.concatenate([forehead, (forehead[::-1] - head_c) * 0.85 + head_c])
        cv2.fillPoly(img, poly(top), col(identity.hair * 0.95), cv2.LINE_AA, sh)
    # Freckles: fixed blends of landmarks, so they move with the face.
    for idx, w in zip(identity.freckles, identity.freckle_weights):
        c = (pts[idx] * w[:, None]).sum(axis=0)
        cv2.circle(img, tuple(np.round(c * one).astype(int)), lw * one, col(identity.skin * 0.75),
                   -1, cv2.LINE_AA, sh)
    # Eyes: white, iris clipped to the lids, lid outline.
    for sl in (slice(36, 42), slice(42, 48)):
        eye = pts[sl]
        mask = np.zeros((s, s), np.uint8)
        cv2.fillPoly(mask, poly(eye), 255, cv2.LINE_AA, sh)
        layer = img.copy()
        cv2.fillPoly(layer, poly(eye), (235, 235, 230), cv2.LINE_AA, sh)
        centre = eye.mean(axis=0)
        r = np.linalg.norm(eye[3] - eye[0]) * 0.22
        cv2.circle(layer, tuple(np.round(centre * one).astype(int)), int(r * one), col(identity.iris), -1, cv2.LINE_AA, sh)
        cv2.circle(layer, tuple(np.round(centre * one).astype(int)), int(r * one / 2), (10, 10, 10), -1, cv2.LINE_AA, sh)
        a = (mask.astype(np.float32) / 255.0)[..., None]
        img = (img * (1 - a) + layer * a).astype(np.uint8)
        cv2.polylines(img, poly(eye), True, col(identity.skin * 0.45), max(1, lw // 2), cv2.LINE_AA, sh)
    for sl in (slice(17, 22), slice(22, 27)):
        cv2.polylines(img, poly(pts[sl]), False, col(identity.brows), lw * 2, cv2.LINE_AA, sh)
    cv2.polylines(img, poly(pts[27:31]), False, col(identity.skin * 0.7), lw, cv2.LINE_AA, sh)
    cv2.polylines(img, poly(pts[31:36]), False, col(identity.skin * 0.55), lw, cv2.LINE_AA, sh)
    cv2.fillPoly(img, poly(pts[48:60]), col(identity.lips), cv2.LINE_AA, sh)
    inner = pts[60:68]
    if np.linalg.norm(inner[6] - inner[2]) > lw:
        cv2.fillPoly(img, poly(inner), (60, 20, 25), cv2.LINE_AA, sh)
        teeth = np.array([inner[0], inner[1], inner[2], inner[3], inner[4],
                          inner[4] * 0.7 + inner[5] * 0.3, inner[0] * 0.7 + inner[7] * 0.3])
        cv2.fillPoly(img, poly(teeth), (240, 240, 235), cv2.LINE_AA, sh)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


class SyntheticTalkingHeads:
    """``num_videos`` synthetic videos of ``frames_per_video`` frames at ``resolution`` px, from ``seed``.

    ``frame(video, index)`` -> (uint8 RGB (S, S, 3), float32 landmarks (68, 2)); poses vary smoothly
    along each video (a sum of slow sinusoids with per-video phases) so consecutive frames look like a
    talking-head clip; any frame is rendered on demand and is the same on every call.
    """

    def __init__(self, num_videos: int, resolution: int, seed: int = 0, frames_per_video: int = 64):
        self.num_videos = int(num_videos)
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.frames_per_video = int(frames_per_video)
        self._identities: dict[int, tuple[Identity, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.num_videos

    def frame_count(self, video: int) -> int:
        return self.frames_per_video

    def identity(self, video: int) -> Identity:
        return self._video(video)[0]

    def _video(self, video: int) -> tuple[Identity, np.ndarray]:
        if video not in self._identities:
            rng = np.random.default_rng([self.seed, video])
            identity = make_identity(rng)
            # 9 driven quantities x (amplitude, frequency, phase) for the smooth trajectory.
            motion = np.stack([rng.uniform(0.3, 1.0, 9), rng.uniform(0.02, 0.15, 9), rng.uniform(0, 2 * np.pi, 9)])
            self._identities[video] = (identity, motion)
        return self._identities[video]

    def landmarks(self, video: int, index: int) -> np.ndarray:
        identity, (amp, freq, phase) = self._video(video)
        w = amp * np.sin(2 * np.pi * freq * index + phase)  # each in [-1, 1]
        expr = Expression(jaw_open=float(max(w[0], 0.0)), blink_left=float(w[1] > 0.8), blink_right=float(w[1] > 0.8),
                          smile=float(0.25 + 0.5 * w[2]), brow_raise=float(0.5 * w[3]))
        jitter = np.array([0.03 * w[7], 0.03 * w[8], 0.05 * w[7] * w[8]])
        return identity_points(identity, expr, 0.4 * w[4], 0.2 * w[5], 0.15 * w[6], self.resolution, jitter)

    def frame(self, video: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        points = self.landmarks(video, index)
        return render_face(self._video(video)[0], points, self.resolution), points
