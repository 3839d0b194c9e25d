"""The classical engine: a dense, smooth landmark-driven warp of the full-resolution portrait.

No weights, runs anywhere. Per frame:

- the head's rigid motion (a similarity fitted on the stable points) carries the face, the hair and a
  hat as one piece; a thin-plate spline adds the expression on top of it, fitted on the 68 landmarks,
  forehead points and a ring of anchors around the face where it fades to zero. It is evaluated on a
  coarse grid and upsampled (it is smooth, so nothing is lost). Below the chin the motion fades out
  over the neck, so the jaw never drags the collar or the shoulders;
- the person (mediapipe's selfie segmentation, found once in ``prepare``) is resampled once, bicubically
  in linear light, and laid with its warped matte over a clean plate of the background, so the
  background never bends and what a moving head uncovers is filled from the background around it;
- lids close by sliding their own skin down over the eye (``warp_eyes``), and a mouth that opens wider
  than the portrait's own gets an interior in the mouth's own tilted frame (``warp_mouth``): the
  portrait's own teeth when they show, a synthesised one otherwise.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from livingportrait_wire.errors import BadInput
from livingportrait_wire.layout import STABLE_POINTS, interocular_distance
from livingportrait_wire.render_settings import RenderSettings

from ..landmarks.forehead import FOREHEAD_LIFT, face_up, forehead_points
from ..landmarks.similarity import fit_similarity
from . import FramePatch
from .warp_eyes import BROWS, EYES, Irises, close_lid, fill_from_above, rigid_overlays
from .warp_mouth import MouthModel
from .warp_person import person_layers

RING_POINTS = 40
INNER_RADIUS = 1.25   # the expression's spline is whole inside this many face-ellipse radii
OUTER_RADIUS = 1.75   # ... and exactly 0 from here on (its anchors sit here)
HEAD_RADIUS = 1.45    # the head's rigid motion is whole inside this (hair, a hat) ...
REGION_RADIUS = 2.0   # ... and 0 from here on: the region a frame may change
NECK = (0.05, 0.35)   # below the jaw line the head's motion fades from whole to 0 over this (face heights)


# (upper, lower) point pairs of the eyelids and inner lips: an upper point must never pass below its
# lower partner, or the warp would fold the image over itself.
_LID_AND_LIP_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46), (61, 67), (62, 66), (63, 65))


def _unfold(t: np.ndarray) -> np.ndarray:
    """Targets with crossed eyelids/lips closed instead (both points meet at their midpoint)."""
    t = t.copy()
    for up, lo in _LID_AND_LIP_PAIRS:
        if t[up, 1] > t[lo, 1]:
            mid = (t[up] + t[lo]) / 2
            t[up], t[lo] = mid, mid
    return t


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _below_jaw(points: np.ndarray, jaw: np.ndarray, face_h: float) -> np.ndarray:
    """How far each point (n, 2) lies below the jaw line (17 points, ear to ear), in pixels: the
    distance to the line for points under it, 0 above. A distance, not a vertical gap: along the
    steep sides of the jaw a vertical gap jumps from column to column, and a motion fading with it
    would fold the neck's edge over itself. Beside the face (past the ears) the vertical gap to the
    ear's level takes over within 0.15 face heights, so the shoulders and a collar there stay."""
    a, b = jaw[:-1], jaw[1:]
    ab = b - a
    rel = points[:, None, :] - a[None]
    f = np.clip((rel * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9)[None], 0.0, 1.0)
    nearest = a[None] + f[..., None] * ab[None]
    dist = np.sqrt(((points[:, None, :] - nearest) ** 2).sum(-1)).min(1)
    order = np.argsort(jaw[:, 0])
    gap = points[:, 1] - np.interp(points[:, 0], jaw[order, 0], jaw[order, 1])
    beside = np.maximum(jaw[order[0], 0] - points[:, 0], points[:, 0] - jaw[order[-1], 0])
    dist = np.maximum(dist, _smoothstep(beside / (0.15 * face_h)) * gap)
    return np.where(gap > 0, dist, 0.0)


class WarpEngine:
    name = "warp"

    def prepare(self, portraits: list, points: np.ndarray, settings: RenderSettings | None = None,
                on_progress: Callable[[str, int, int], None] | None = None) -> None:
        """Fix the geometry for a job: portraits[0] is warped; ``points`` are its 68 landmarks;
        ``settings`` the job's (its ``warp`` part; None: the defaults). Everything that depends only
        on the portrait (the person matte, the clean plate, the mouth's light, grain and teeth) is
        found here, once."""
        options = (settings or RenderSettings()).warp
        self.mouth_interior = options.mouth_interior
        self.mouth_source = options.mouth_source
        portrait = portraits[0]
        self.src = portrait.linear
        self.portrait = portrait
        h, w = self.src.shape[:2]
        p = np.asarray(points, np.float64)
        self.points = p
        if not np.all(np.isfinite(p)):
            raise BadInput(f"{portrait.source}: portrait landmarks are not finite")
        self.iod = max(interocular_distance(p), 1.0)
        brow_y, chin_y = p[17:27, 1].min(), p[8, 1]
        face_h = max(chin_y - brow_y, self.iod)
        top = brow_y - FOREHEAD_LIFT * face_h
        self.center = np.array([(p[:17, 0].min() + p[:17, 0].max()) / 2, (top + chin_y) / 2])
        self.axes = np.array([max((p[:17, 0].max() - p[:17, 0].min()) / 2, self.iod),
                              max((chin_y - top) / 2, self.iod)])
        self.forehead_src = forehead_points(p)  # they follow the head (see render)
        angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
        self.ring = self.center + OUTER_RADIUS * self.axes * np.stack([np.cos(angles), np.sin(angles)], 1)
        # The region a frame may change: the head's support, clipped to the image.
        lo = np.floor(self.center - REGION_RADIUS * self.axes).astype(int)
        hi = np.ceil(self.center + REGION_RADIUS * self.axes).astype(int) + 1
        self.x0, self.y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        self.x1, self.y1 = min(int(hi[0]), w), min(int(hi[1]), h)
        if self.x1 - self.x0 < 4 or self.y1 - self.y0 < 4:
            raise BadInput(f"{portrait.source}: the face landmarks lie outside the image")
        rw, rh = self.x1 - self.x0, self.y1 - self.y0
        # The motion is smooth: ~48 cells across the region, upsampled bicubically, keeps it sub-pixel.
        self.step = max(2, int(round(max(rw, rh) / 48)))
        gx = np.arange(self.x0, self.x1 + self.step, self.step, dtype=np.float64)
        gy = np.arange(self.y0, self.y1 + self.step, self.step, dtype=np.float64)
        self.grid_shape = (len(gy), len(gx))
        gxx, gyy = np.meshgrid(gx, gy)
        self.grid = np.stack([gxx.ravel(), gyy.ravel()], 1)
        xs, ys = np.meshgrid(np.arange(self.x0, self.x1, dtype=np.float32),
                             np.arange(self.y0, self.y1, dtype=np.float32))
        self.base_x, self.base_y = xs, ys
        # The motion is smooth everywhere, so all of it (head, expression, windows) is computed on the
        # coarse grid and upsampled once; only the resampling itself runs per pixel.
        radius = np.sqrt((((self.grid - self.center) / self.axes) ** 2).sum(1))
        self.window = 1.0 - _smoothstep((radius - INNER_RADIUS) / (OUTER_RADIUS - INNER_RADIUS))
        self.head_weight = 1.0 - _smoothstep((radius - HEAD_RADIUS) / (REGION_RADIUS - HEAD_RADIUS))
        self.down = -face_up(p)
        self.face_h = face_h
        # The person over a clean plate of the background (None: no person found, warp everything).
        roi = (slice(self.y0, self.y1), slice(self.x0, self.x1))
        found = person_layers(portrait, roi, getattr(self, "cache_dir", None)) if options.person_matte else None
        self.cache_hit = bool(found and found[3])
        self.alpha, self.person, self.plate = found[:3] if found and found[0] is not None else (None, None, None)
        if self.alpha is not None:
            # Only in the matte's soft edge is person + plate the portrait merely to rounding (where
            # the matte is 0 or 1 the sum is exact): those pixels are copied back where nothing moved.
            self.edge = np.flatnonzero((self.alpha > 0) & (self.alpha < 1))
            self.src_roi = np.ascontiguousarray(self.src[roi]).reshape(-1, 3)
        # Glasses' rims and lens reflections stay put when a lid closes behind them: the lid slides
        # on a copy of the portrait with them filled from the skin above, and they are laid back on top.
        overlay = rigid_overlays(portrait.srgb8, p, self.iod)
        self.overlay = self.unglazed = None
        if overlay is not None:
            self.overlay = np.ascontiguousarray(overlay[roi])
            self.unglazed = fill_from_above(self.src[roi], overlay[roi] > 0.05)
        self.mouth = MouthModel(self.src, p, self.iod)
        self.gaze_on = options.gaze
        self.irises: Irises | None = None  # found at the first frame that has a gaze
        self.lid_gaps = [float(np.mean(p[list(lower), 1] - p[list(upper), 1])) for _, upper, lower in EYES]

    uses_gaze = True  # FrameRenderer passes the performance's gaze and actor's mouths to render()

    def render(self, targets: np.ndarray, gaze: np.ndarray | None = None, mouth=None) -> FramePatch:
        """One frame: ``targets`` float32 (68, 2) portrait pixels -> the changed region. ``gaze``:
        float32 (2, 2) per eye (36-41, 42-47), the iris's move from the neutral frame in eye widths
        (``retarget.gaze_offsets``), or None: the eyes stay as painted. ``mouth``: the actor's mouth
        interior in this frame (``warp_mouth.driver_mouth``), or None: from the portrait or synthesised."""
        t = _unfold(np.asarray(targets, np.float64))
        head = fit_similarity(self.points[list(STABLE_POINTS)], t[list(STABLE_POINTS)])
        t, closures = self._hold_lids_open(t, head)
        back = head.inverse()
        # Expression: what the spline adds on top of the head's motion (zero on the forehead points
        # and the ring).
        forehead_dst = head.apply(self.forehead_src)
        ctrl = np.concatenate([t, forehead_dst, self.ring])
        residual = np.concatenate([self.points - back.apply(t), np.zeros((len(forehead_dst) + len(self.ring), 2))])
        expression = self._spline_field(ctrl, residual)
        # Where each output point's head point was in the portrait, and how much of the head's motion
        # a point takes: all of it on the head, none beyond the region, fading out below this
        # frame's jaw line so the neck stretches and the collar and shoulders stay.
        rigid = back.apply(self.grid) - self.grid
        jaw = t[:17][np.argsort(t[:17, 0])]
        below = _below_jaw(self.grid, t[:17], self.face_h)
        lo, hi = NECK[0] * self.face_h, NECK[1] * self.face_h
        carry = self.head_weight * (1.0 - _smoothstep((below - lo) / (hi - lo)))
        head_field = carry[:, None] * rigid
        face_field = self.window[:, None] * expression
        dx = self._upsample(head_field[:, 0])
        dy = self._upsample(head_field[:, 1])
        # The expression stops at the jaw line: the chin moves over the neck (an occluding edge), it
        # does not drag the neck and the collar with it. Above the line a pixel takes the face's
        # motion, below it the body's; the one-pixel edge between is antialiased by sampling both
        # (a blended motion there would squeeze the skin under the chin into a drawn-looking line).
        cols = np.arange(self.x0, self.x1, dtype=np.float64)
        jaw_y = np.interp(cols, jaw[:, 0], jaw[:, 1]).astype(np.float32)
        rows = np.arange(self.y0, self.y1, dtype=np.float32)[:, None]
        face_side = np.clip(jaw_y[None, :] - rows + np.float32(0.5), 0.0, 1.0)
        ex, ey = self._upsample(face_field[:, 0]), self._upsample(face_field[:, 1])
        edge = np.flatnonzero((face_side > 0) & (face_side < 1))
        above = (face_side >= 0.5).astype(np.float32)
        edge_maps = (dx.ravel()[edge], dy.ravel()[edge], ex.ravel()[edge], ey.ravel()[edge],
                     face_side.ravel()[edge])
        dx += above * ex
        dy += above * ey
        # The matte: 1 where the frame moved by 2% of the eye distance or more (smooth, so coarse).
        moved = np.sqrt(((head_field + face_field) ** 2).sum(1)) / (0.02 * self.iod)
        matte = self._upsample(_smoothstep(moved), cv2.INTER_LINEAR)
        mx, my = self.base_x + dx, self.base_y + dy
        if self.alpha is None:
            roi = cv2.remap(self.src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        else:
            # The premultiplied person and its alpha, warped alike, over the still plate.
            mx -= np.float32(self.x0)
            my -= np.float32(self.y0)
            roi = cv2.remap(self.person, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            a = cv2.remap(self.alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            roi += self.plate * (1.0 - a)[..., None]
            matte = np.maximum(matte * np.maximum(a, self.alpha), np.abs(a - self.alpha))
            # Exactly the portrait where nothing moved (see prepare: only the matte's edge needs it).
            still = self.edge[(dx.ravel()[self.edge] == 0) & (dy.ravel()[self.edge] == 0)]
            roi.reshape(-1, 3)[still] = self.src_roi[still]
        if len(edge):
            roi.reshape(-1, 3)[edge] = self._jaw_edge(edge, edge_maps)
        np.maximum(roi, 0.0, out=roi)  # bicubic overshoot below black
        offset = np.array([self.x0, self.y0], np.float64)
        if gaze is not None and self.gaze_on and np.abs(gaze).max() > 1e-3:
            if self.irises is None:
                self.irises = Irises(self.portrait, self.points, (self.x0, self.y0, self.x1, self.y1))
            lx, ly = (mx, my) if self.alpha is not None else (mx - np.float32(self.x0), my - np.float32(self.y0))
            roi, moved_eyes = self.irises.move(roi, t, np.asarray(gaze, np.float64), lx, ly)
            matte = np.maximum(matte, moved_eyes)
        if max(closures) > 0.02:
            lids = roi
            if self.overlay is not None:
                ox, oy = (mx, my) if self.alpha is not None else (mx - np.float32(self.x0), my - np.float32(self.y0))
                lids = cv2.remap(self.unglazed, ox, oy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
                glass = cv2.remap(self.overlay, ox, oy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[..., None]
            changed = np.zeros(roi.shape[:2], np.float32)
            for eye, brow, closure in zip(EYES, BROWS, closures):
                if closure > 0.02:
                    lids, lid = close_lid(lids, t, eye, closure, offset, brow)
                    changed = np.maximum(changed, lid)
            if self.overlay is not None:
                a = changed[..., None] * (1.0 - glass)
                roi = roi * (1.0 - a) + lids * a
            else:
                roi = lids
            matte = np.maximum(matte, changed)
        if self.mouth_interior:
            fill = self.mouth.render(t, roi.shape[:2], offset, mouth if self.mouth_source != "synthesis" else None)
            if fill is not None:
                y0, x0, rgb, alpha = fill
                hh, ww = alpha.shape
                a = alpha[..., None]
                box = roi[y0:y0 + hh, x0:x0 + ww]
                roi[y0:y0 + hh, x0:x0 + ww] = box * (1 - a) + rgb * a
                matte[y0:y0 + hh, x0:x0 + ww] = np.maximum(matte[y0:y0 + hh, x0:x0 + ww], alpha)
        return self._changed_part(roi, matte)

    def _changed_part(self, roi: np.ndarray, matte: np.ndarray) -> FramePatch:
        """The patch cut to the rows and columns that changed (the EXR encoder recompresses every tile
        a patch touches). Everything that changed is in the matte (motion, lids, irises, mouth, the
        person's edge); the cut keeps two grid cells around it, as far as a cell's motion reaches."""
        rows, cols = np.flatnonzero(matte.any(1)), np.flatnonzero(matte.any(0))
        if not len(rows):
            return FramePatch(self.y0, self.x0, roi[:1, :1], matte[:1, :1])
        pad = 2 * self.step
        r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, roi.shape[0])
        c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, roi.shape[1])
        return FramePatch(self.y0 + r0, self.x0 + c0, roi[r0:r1, c0:c1], matte[r0:r1, c0:c1])

    def _jaw_edge(self, idx: np.ndarray, maps) -> np.ndarray:
        """The jaw line's edge pixels (flat indices into the region): the face's and the body's
        samples, mixed by how much of the pixel lies above the line. float32 (n, 3)."""
        hx, hy, ex, ey, w = maps
        bx = self.base_x.ravel()[idx] + hx
        by = self.base_y.ravel()[idx] + hy
        out = []
        for mx, my in ((bx + ex, by + ey), (bx, by)):
            mx, my = mx[None].astype(np.float32), my[None].astype(np.float32)
            if self.alpha is None:
                out.append(cv2.remap(self.src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)[0])
                continue
            mx, my = mx - np.float32(self.x0), my - np.float32(self.y0)
            person = cv2.remap(self.person, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)[0]
            a = cv2.remap(self.alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
            out.append(person + self.plate.reshape(-1, 3)[idx] * (1.0 - a)[:, None])
        return out[1] + (out[0] - out[1]) * w[:, None]  # exactly the body's where both agree

    def _hold_lids_open(self, t: np.ndarray, head) -> tuple[np.ndarray, list[float]]:
        """Targets whose upper lids keep the portrait's own opening (moved with the head), and per eye
        how far (0 open .. 1 shut) the lid should close, for ``close_lid``."""
        t = t.copy()
        closures = []
        for (_, upper, lower), gap in zip(EYES, self.lid_gaps):
            wanted = float(np.mean(t[list(lower), 1] - t[list(upper), 1]))
            if gap <= 0.5:  # the portrait's eye is already shut: nothing to close
                closures.append(0.0)
                continue
            closures.append(float(np.clip(1.0 - wanted / (gap * head.scale), 0.0, 1.0)))
            for u, lo in zip(upper, lower):
                t[u] = t[lo] + head.matrix @ (self.points[u] - self.points[lo])
        return t, closures

    def _upsample(self, coarse: np.ndarray, interpolation=cv2.INTER_CUBIC) -> np.ndarray:
        """A field on the coarse grid, float32 (rh, rw) over the region."""
        c = coarse.reshape(self.grid_shape).astype(np.float32)
        full_w, full_h = (self.grid_shape[1] - 1) * self.step + 1, (self.grid_shape[0] - 1) * self.step + 1
        fine = cv2.resize(c, (full_w, full_h), interpolation=interpolation)
        return np.ascontiguousarray(fine[:self.y1 - self.y0, :self.x1 - self.x0])

    def _spline_field(self, ctrl: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The thin-plate spline through (ctrl -> values) on the coarse grid, float64 (n, 2).

        scipy's RBFInterpolator solves and evaluates it (kernel r^2 log r plus an affine part); the
        coordinates are centred on the face and scaled by the inter-ocular distance so the system is
        well conditioned. A little smoothing keeps coinciding targets (a closed mouth) from making it
        singular."""
        scale = self.iod
        spline = RBFInterpolator((ctrl - self.center) / scale, values / scale, kernel="thin_plate_spline",
                                 degree=1, smoothing=1e-4)
        return spline((self.grid - self.center) / scale) * scale
