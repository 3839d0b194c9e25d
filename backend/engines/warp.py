"""The classical engine: a dense, smooth landmark-driven warp of the full-resolution portrait.

No weights, runs anywhere. Per frame, a thin-plate spline maps each output pixel back to where it
comes from in the portrait, fitted on the 68 landmarks, forehead points that follow the head, and a
ring of fixed anchors around the face; a smooth window makes the displacement exactly zero beyond the
ring, so the background never moves. The spline is evaluated on a coarse grid and upsampled (it is
smooth, so nothing is lost) and the portrait is resampled once, in linear light. A mouth that opens
wider than the portrait's own gets a painted interior instead of stretched lips; eyelids follow the
lid landmarks down over the eye for blinks.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from livingportrait_wire.errors import BadInput
from livingportrait_wire.layout import STABLE_POINTS, interocular_distance
from livingportrait_wire.render_settings import RenderSettings

from . import FramePatch
from ..landmarks.similarity import fit_similarity

RING_POINTS = 40
INNER_RADIUS = 1.25   # window is 1 inside this many face-ellipse radii
OUTER_RADIUS = 1.75   # ... and exactly 0 from here on (anchors sit here too)
FOREHEAD_LIFT = 0.55  # forehead points: brows lifted by this fraction of the brow-to-chin height


# (upper, lower) point pairs of the eyelids and inner lips: an upper point must never pass below its
# lower partner, or the warp would fold the image over itself.
_LID_AND_LIP_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46), (61, 67), (62, 66), (63, 65))
# Per eye: corner, upper lid pair, corner, lower lid pair (lower listed under the matching upper).
_EYES = (((36, 39), (37, 38), (41, 40)), ((42, 45), (43, 44), (47, 46)))
# Squeezing a whole eye into a slit makes the spline overshoot; the warp keeps this fraction of the
# portrait's own lid gap and the lid closes the rest as paint.
MIN_LID_GAP = 0.35


def _unfold(t: np.ndarray) -> np.ndarray:
    """Targets with crossed eyelids/lips closed instead (both points meet at their midpoint)."""
    t = t.copy()
    for up, lo in _LID_AND_LIP_PAIRS:
        if t[up, 1] > t[lo, 1]:
            mid = (t[up] + t[lo]) / 2
            t[up], t[lo] = mid, mid
    return t


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class WarpEngine:
    name = "warp"

    def prepare(self, portraits: list, points: np.ndarray, settings: RenderSettings | None = None,
                on_progress: Callable[[str, int, int], None] | None = None) -> None:
        """Fix the geometry for a job: portraits[0] is warped; ``points`` are its 68 landmarks;
        ``settings`` the job's (its ``warp`` part; None: the defaults)."""
        self.mouth_interior = (settings or RenderSettings()).warp.mouth_interior
        portrait = portraits[0]
        self.src = portrait.linear
        h, w = self.src.shape[:2]
        p = np.asarray(points, np.float64)
        self.points = p
        self.iod = max(interocular_distance(p), 1.0)
        if not np.all(np.isfinite(p)):
            raise BadInput(f"{portrait.source}: portrait landmarks are not finite")
        brow_y, chin_y = p[17:27, 1].min(), p[8, 1]
        face_h = max(chin_y - brow_y, self.iod)
        top = brow_y - FOREHEAD_LIFT * face_h
        self.center = np.array([(p[:17, 0].min() + p[:17, 0].max()) / 2, (top + chin_y) / 2])
        self.axes = np.array([max((p[:17, 0].max() - p[:17, 0].min()) / 2, self.iod),
                              max((chin_y - top) / 2, self.iod)])
        # Forehead points follow the head: brows lifted along the face's up direction.
        up = p[27] - p[8]
        up /= max(np.linalg.norm(up), 1e-6)
        self.forehead_src = p[[17, 19, 21, 22, 24, 26]] + up * FOREHEAD_LIFT * face_h
        angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
        self.ring = self.center + OUTER_RADIUS * self.axes * np.stack([np.cos(angles), np.sin(angles)], 1)
        # The region a frame may change: the window's support, clipped to the image.
        lo = np.floor(self.center - OUTER_RADIUS * self.axes).astype(int)
        hi = np.ceil(self.center + OUTER_RADIUS * self.axes).astype(int) + 1
        self.x0, self.y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        self.x1, self.y1 = min(int(hi[0]), w), min(int(hi[1]), h)
        if self.x1 - self.x0 < 4 or self.y1 - self.y0 < 4:
            raise BadInput(f"{portrait.source}: the face landmarks lie outside the image")
        rw, rh = self.x1 - self.x0, self.y1 - self.y0
        # The spline is smooth: ~64 cells across the face, upsampled bicubically, keeps it sub-pixel.
        self.step = max(2, int(round(max(rw, rh) / 64)))
        gx = np.arange(self.x0, self.x1 + self.step, self.step, dtype=np.float64)
        gy = np.arange(self.y0, self.y1 + self.step, self.step, dtype=np.float64)
        self.grid_shape = (len(gy), len(gx))
        gxx, gyy = np.meshgrid(gx, gy)
        self.grid = np.stack([gxx.ravel(), gyy.ravel()], 1)
        xs, ys = np.meshgrid(np.arange(self.x0, self.x1, dtype=np.float32),
                             np.arange(self.y0, self.y1, dtype=np.float32))
        self.base_x, self.base_y = xs, ys
        radius = np.sqrt(((xs - self.center[0]) / self.axes[0]) ** 2 + ((ys - self.center[1]) / self.axes[1]) ** 2)
        self.window = (1.0 - _smoothstep((radius - INNER_RADIUS) / (OUTER_RADIUS - INNER_RADIUS))).astype(np.float32)
        # Colour reference for a painted mouth interior: the portrait's own skin around the mouth.
        mx0, my0 = np.floor(p[48:60].min(0)).astype(int)
        mx1, my1 = np.ceil(p[48:60].max(0)).astype(int)
        lips = self.src[max(my0, 0):max(my1, 1), max(mx0, 0):max(mx1, 1)]
        self.skin = lips.reshape(-1, 3).mean(0) if lips.size else np.full(3, 0.2, np.float32)
        self.source_mouth_area = _polygon_area(p[60:68])
        self.lid_gaps = [float(np.mean(p[list(lower), 1] - p[list(upper), 1])) for _, upper, lower in _EYES]

    def render(self, targets: np.ndarray) -> FramePatch:
        """One frame: ``targets`` float32 (68, 2) portrait pixels -> the changed region."""
        t = _unfold(np.asarray(targets, np.float64))
        t, closures = self._hold_lids_open(t)
        head = fit_similarity(self.points[list(STABLE_POINTS)], t[list(STABLE_POINTS)])
        forehead_dst = head.apply(self.forehead_src)
        ctrl = np.concatenate([t, forehead_dst, self.ring])
        back = np.concatenate([self.points, self.forehead_src, self.ring]) - ctrl
        dx, dy = self._displacement(ctrl, back)
        dx *= self.window
        dy *= self.window
        roi = cv2.remap(self.src, self.base_x + dx, self.base_y + dy, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        moved = np.sqrt(dx * dx + dy * dy)
        matte = _smoothstep(moved / (0.02 * self.iod)).astype(np.float32)
        for eye, closure in zip(_EYES, closures):
            if closure > 0.02:
                roi, lid = self._close_lid(roi, t, eye, closure)
                matte = np.maximum(matte, lid)
        if self.mouth_interior:
            fill = self._mouth_mask(t)
            if fill is not None:
                mask, strength = fill
                interior = self._mouth_colours(t, mask.shape)
                a = (mask * strength)[..., None]
                roi = roi * (1 - a) + interior * a
                matte = np.maximum(matte, mask * strength)
        return FramePatch(self.y0, self.x0, roi.astype(np.float32), matte)

    def _hold_lids_open(self, t: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Targets whose lids keep at least MIN_LID_GAP of the portrait's gap, and per eye how far
        (0 open .. 1 shut) the lid should close beyond that, to be painted by ``_close_lid``."""
        t = t.copy()
        closures = []
        for (_, upper, lower), gap in zip(_EYES, self.lid_gaps):
            if gap <= 0.5:  # the portrait's eye is already shut: nothing to paint
                closures.append(0.0)
                continue
            wanted = float(np.mean(t[list(lower), 1] - t[list(upper), 1]))
            closures.append(float(np.clip(1.0 - wanted / gap, 0.0, 1.0)))
            for u, lo in zip(upper, lower):
                t[u, 1] = min(t[u, 1], t[lo, 1] - MIN_LID_GAP * gap)
        return t, closures

    def _close_lid(self, roi: np.ndarray, t: np.ndarray, eye, closure: float):
        """Paint the eye shut by ``closure``: the skin just above the lid slides over the eye, with a
        dark lash line where the lids meet. Returns (roi, mask of what was painted)."""
        corners, upper, lower = eye
        strength = float(_smoothstep((closure - 0.25) / 0.6))
        if strength <= 0:
            return roi, np.zeros(roi.shape[:2], np.float32)
        outline = t[[corners[0], *upper, corners[1], *lower[::-1]]] - [self.x0, self.y0]
        shift = 4
        mask = np.zeros(roi.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(outline * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
        soft = max(0.02 * self.iod, 0.7)
        mask = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), soft)
        # Lid skin: the band just above the upper lid in this very frame.
        gap = max(float(np.mean(t[list(lower), 1] - t[list(upper), 1])), 1.0)
        x0, x1 = int(np.floor(outline[:, 0].min())), int(np.ceil(outline[:, 0].max())) + 1
        y1 = int(np.floor(outline[[1, 2], 1].min()))
        y0 = max(y1 - int(np.ceil(1.5 * gap)) - 2, 0)
        band = roi[y0:max(y1, y0 + 1), max(x0, 0):max(x1, 1)]
        skin = band.reshape(-1, 3).mean(0) if band.size else self.skin
        a = (mask * strength)[..., None]
        roi = roi * (1 - a) + skin * a
        # Lashes: a darker line along the lower lid, where the closed lids meet.
        line = np.zeros(roi.shape[:2], np.uint8)
        lash = t[[corners[0], *lower, corners[1]]] - [self.x0, self.y0]
        cv2.polylines(line, [np.round(lash * (1 << shift)).astype(np.int32)], False, 255,
                      max(1, int(round(0.02 * self.iod))), cv2.LINE_AA, shift)
        la = (cv2.GaussianBlur(line.astype(np.float32) / 255.0, (0, 0), soft * 0.6) * strength * 0.6)[..., None]
        roi = roi * (1 - la) + roi * 0.35 * la
        return roi, np.maximum(mask, la[..., 0]) * strength

    def _displacement(self, ctrl: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Thin-plate spline through (ctrl -> values), evaluated over the region, float32 (rh, rw) x2.

        scipy's RBFInterpolator solves and evaluates it (kernel r^2 log r plus an affine part); the
        coordinates are centred on the face and scaled by the inter-ocular distance so the system is
        well conditioned. A little smoothing keeps coinciding targets (a closed mouth) from making it
        singular. It is evaluated on the coarse grid only and upsampled below."""
        field = self._spline_field(ctrl, values)
        rh, rw = self.y1 - self.y0, self.x1 - self.x0
        out = []
        for axis in range(2):
            coarse = field[:, axis].reshape(self.grid_shape).astype(np.float32)
            full_w, full_h = (self.grid_shape[1] - 1) * self.step + 1, (self.grid_shape[0] - 1) * self.step + 1
            fine = cv2.resize(coarse, (full_w, full_h), interpolation=cv2.INTER_CUBIC)
            out.append(np.ascontiguousarray(fine[:rh, :rw]))
        return out[0], out[1]

    def _spline_field(self, ctrl: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The spline's values on the coarse grid, float64 (n, 2)."""
        scale = self.iod
        spline = RBFInterpolator((ctrl - self.center) / scale, values / scale, kernel="thin_plate_spline",
                                 degree=1, smoothing=1e-4)
        return spline((self.grid - self.center) / scale) * scale

    def _mouth_mask(self, t: np.ndarray):
        """Soft mask of the opened mouth (rh, rw) and how much of it is new opening, or None."""
        area = _polygon_area(t[60:68])
        if area < 0.004 * self.iod ** 2 or area <= self.source_mouth_area:
            return None
        # Fully painted once the mouth is half again as open as the portrait's own, so a smiling
        # portrait's teeth are not stretched into stripes.
        strength = float(_smoothstep((area / max(self.source_mouth_area, 1e-6) - 1.0) / 0.5))
        rh, rw = self.y1 - self.y0, self.x1 - self.x0
        shift = 4  # sub-pixel polygon edges
        poly = np.round((t[60:68] - [self.x0, self.y0]) * (1 << shift)).astype(np.int32)
        mask = np.zeros((rh, rw), np.uint8)
        cv2.fillPoly(mask, [poly], 255, lineType=cv2.LINE_AA, shift=shift)
        sigma = max(0.015 * self.iod, 0.6)
        mask = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
        return mask, strength

    def _mouth_colours(self, t: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """A mouth interior in the portrait's own light: teeth under the upper lip, a dark throat,
        a tongue toward the lower lip. float32 (rh, rw, 3) linear."""
        top = t[61:64, 1].mean() - self.y0
        bottom = t[65:68, 1].mean() - self.y0
        rows = np.arange(shape[0], dtype=np.float32)[:, None]
        v = np.clip((rows - top) / max(bottom - top, 1.0), 0.0, 1.0)  # 0 at the upper lip, 1 at the lower
        light = float(np.clip(self.skin.mean() / 0.25, 0.25, 1.5))
        teeth = np.array([0.55, 0.50, 0.42], np.float32) * light
        throat = np.array([0.030, 0.008, 0.008], np.float32) * light
        tongue = np.array([0.22, 0.06, 0.06], np.float32) * light
        opening = (bottom - top) / self.iod
        teeth_band = float(np.clip(opening * 0.9, 0.0, 0.28))  # teeth show as the jaw drops
        w_teeth = 1.0 - _smoothstep((v - teeth_band * 0.6) / max(teeth_band * 0.5, 1e-3)) if teeth_band > 0.02 else v * 0
        w_tongue = _smoothstep((v - 0.7) / 0.3)
        colour = throat * (1 - w_tongue)[..., None] + tongue * w_tongue[..., None]
        colour = colour * (1 - w_teeth)[..., None] + teeth * w_teeth[..., None]
        return np.broadcast_to(colour, (shape[0], shape[1], 3))
