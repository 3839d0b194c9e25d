"""Blinks for the warp engine: the upper lid's own skin slides down over the eye.

The spline keeps each eye at the portrait's own opening (squeezing an eye into a slit makes it
overshoot and fold). The closing is done here, per eye, as a vertical resample of the lid: column by
column, the band of skin between ``LID_BAND`` lid-gaps above the upper lid and the lid's edge is
stretched down so that the edge (the lash line) lands where the blink wants it, and everything below
that edge is hidden behind it. The lid's texture, crease and lashes come along; at full closure the
upper lashes meet the lower lid, so the eye is shut, not painted over.
"""
from __future__ import annotations

import cv2
import numpy as np

# Per eye: corners, upper lid pair, lower lid pair (lower listed under the matching upper).
EYES = (((36, 39), (37, 38), (41, 40)), ((42, 45), (43, 44), (47, 46)))
BROWS = ((17, 18, 19, 20, 21), (22, 23, 24, 25, 26))  # the brow over each eye, in EYES' order
OVERLAP = 0.15  # at full closure the upper lid passes the lower lid's line by this many lid gaps
LASH = 0.3  # the lid's edge that keeps its size as it slides (the lashes), in lid gaps
BROW_KEEP = 0.4  # the band stops this fraction of the lid-to-brow distance below the brow
LID_BAND = 1.6  # the skin above the lid that stretches, in lid gaps (at full closure it grows by 1/1.6)


def _lid_curve(xs: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """A smooth lid line through (corner, two lid points, corner): a parabola by least squares."""
    order = np.argsort(pts[:, 0])
    px, py = pts[order, 0], pts[order, 1]
    coef = np.polyfit(px, py, 2)
    return np.polyval(coef, xs)


def close_lid(roi: np.ndarray, t: np.ndarray, eye, closure: float, offset: np.ndarray, brow=None):
    """Close ``eye`` by ``closure`` (0 open .. 1 shut) in ``roi`` (changed in place) (float32 (h, w, 3), whose pixel 0 is
    portrait pixel ``offset`` (x, y)); ``t`` are the frame's 68 points with the lid open.
    Returns (roi, mask float32 (h, w) of the pixels that changed)."""
    corners, upper, lower = eye
    h, w = roi.shape[:2]
    up_pts = t[[corners[0], *upper, corners[1]]] - offset
    lo_pts = t[[corners[0], *lower, corners[1]]] - offset
    x0 = int(np.floor(min(up_pts[:, 0].min(), lo_pts[:, 0].min()))) - 1
    x1 = int(np.ceil(max(up_pts[:, 0].max(), lo_pts[:, 0].max()))) + 2
    xs = np.arange(max(x0, 0), min(x1, w), dtype=np.float32)
    if len(xs) < 2:
        return roi, np.zeros((h, w), np.float32)
    cx = np.clip(xs, up_pts[:, 0].min(), up_pts[:, 0].max())
    u = _lid_curve(cx, up_pts)
    lo = _lid_curve(cx, lo_pts)
    gap = np.maximum(lo - u, 0.0)
    # Beyond the corners the lid has no gap to close: fade the band out over two pixels.
    inside = np.clip(1.0 - np.maximum(up_pts[:, 0].min() - xs, xs - up_pts[:, 0].max()) / 2.0, 0.0, 1.0)
    gap = gap * inside
    band = LID_BAND * gap.max() * np.sqrt(np.clip(gap / max(gap.max(), 1e-6), 0, 1)) + 1.0
    top = u - band
    if brow is not None:  # never stretch the brow: the band stays below it
        b = t[list(brow)] - offset
        order = np.argsort(b[:, 0])
        brow_y = np.interp(xs, b[order, 0], b[order, 1])
        top = np.maximum(top, brow_y + BROW_KEEP * (u - brow_y))
    # Shut, the upper lashes come to rest just over the lower lid's edge.
    new_edge = u + closure * (gap + OVERLAP * gap.max() * np.sqrt(gap / max(gap.max(), 1e-6)))
    y0 = max(int(np.floor(top.min())) - 1, 0)
    y1 = min(int(np.ceil(lo.max())) + 2, h)
    if y1 - y0 < 2:
        return roi, np.zeros((h, w), np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    # Above the new edge: the lid's edge (lashes, LASH lid gaps thick) slides down as it is, and the
    # skin above it, [top, u - lash], unfolds over [top, new_edge - lash]; below the edge: unchanged.
    lash = max(1.0, LASH * float(gap.max()))
    edge_top = np.maximum(u - lash, top + 0.5)
    stretch = (edge_top - top) / np.maximum(new_edge - lash - top, 1e-3)
    src_y = np.where(ys > new_edge, ys,
                     np.where(ys >= new_edge - lash, ys - (new_edge - u),
                              np.where(ys >= top, top + (ys - top) * stretch, ys))).astype(np.float32)
    map_x = np.broadcast_to(xs[None, :], src_y.shape).astype(np.float32)
    moved = cv2.remap(roi, map_x, src_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    # A faint shadow under the lid's edge: the lashes and the lid shade the eye below them.
    below = np.clip((ys - new_edge) / max(0.25 * gap.max(), 1.0), 0.0, 1.0)
    shade = 1.0 - 0.25 * closure * (1.0 - below) * ((ys > new_edge) & (ys < lo))
    moved = moved * shade[..., None]
    changed = np.abs(src_y - ys) > 1e-3
    mask_box = np.clip(changed.astype(np.float32) + (shade < 1), 0.0, 1.0)
    roi[y0:y1, int(xs[0]):int(xs[-1]) + 1] = np.maximum(moved, 0.0)
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, int(xs[0]):int(xs[-1]) + 1] = mask_box
    return roi, mask


def rigid_overlays(srgb8: np.ndarray, p: np.ndarray, iod: float) -> np.ndarray | None:
    """What lies in front of the eyes and must not move with a blink: glasses' rims and the
    reflections on their lenses. float32 (h, w) mask, or None when there is none.

    Per eye, in a box around it: thin dark structures (a morphological black-hat) that reach both
    above the upper lid and below the lower lid and span wider than the eye (a rim goes round the eye;
    lashes, the crease and the brow do not); then, only behind such a rim, thin bright marks that reach
    above the upper lid."""
    h, w = srgb8.shape[:2]
    gray = cv2.cvtColor(np.ascontiguousarray(srgb8[:, :, :3]), cv2.COLOR_RGB2GRAY)
    k = max(3, int(0.12 * iod)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = np.zeros((h, w), np.uint8)
    for corners, upper, lower in EYES:
        cx0, cx1 = p[corners[0], 0], p[corners[1], 0]
        ew = abs(cx1 - cx0)
        up_y, lo_y = float(p[list(upper), 1].min()), float(p[list(lower), 1].max())
        gap = max(lo_y - up_y, 1.0)
        x0, x1 = int(max(min(cx0, cx1) - 0.6 * ew, 0)), int(min(max(cx0, cx1) + 0.6 * ew, w))
        y0, y1 = int(max(up_y - 0.6 * ew, 0)), int(min(lo_y + 0.6 * ew, h))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        box = gray[y0:y1, x0:x1]
        skin = float(np.median(box))
        # Rims: much darker than the skin, going round the eye.
        dark = (cv2.morphologyEx(box, cv2.MORPH_BLACKHAT, kernel) > 60) & (box < 0.45 * skin)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(dark.astype(np.uint8), 8)
        rims = [i for i in range(1, n)
                if y0 + stats[i, 1] < up_y - 0.5 * gap and y0 + stats[i, 1] + stats[i, 3] > lo_y + 0.5 * gap
                and stats[i, 2] > 1.1 * ew]
        if not rims:
            continue
        for i in rims:
            mask[y0:y1, x0:x1][labels == i] = 1
        # Behind a rim (a lens), bright thin marks reaching above the upper lid are reflections on
        # the glass (the eye's white and catchlight stay below the lid): they stay put too.
        bright = (cv2.morphologyEx(box, cv2.MORPH_TOPHAT, kernel) > 25) & (box > skin + 0.4 * (255 - skin))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(bright.astype(np.uint8), 8)
        for i in range(1, n):
            bx, by, bw, bh, area = stats[i]
            if (y0 + by < up_y - 0.3 * gap and area >= 3
                    and x0 + bx + bw > min(cx0, cx1) and x0 + bx < max(cx0, cx1)):
                mask[y0:y1, x0:x1][labels == i] = 1
    if not mask.any():
        return None
    # Out to the rims' antialiased edges, softly.
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.7)


class Irises:
    """The portrait's irises, to move with a gaze: found once (mediapipe's refined iris points), each
    with a plate of its eye where the iris is painted out (the white and the lids filled in from around
    it). Per frame an iris, with its own highlights, is shifted over its plate and shown only inside
    the eye's opening, so the lids clip it."""

    MAX_SHIFT = (0.22, 0.1)  # the farthest an iris goes, in eye widths (sideways, up/down)

    def __init__(self, portrait, points: np.ndarray, region: tuple[int, int, int, int]):
        from ..detectors import get_detector
        from .warp_person import inpaint_linear

        self.x0, self.y0, x1, y1 = region
        self.eyes = []
        faces = get_detector("mediapipe").detect(portrait.srgb8)
        face = min(faces, key=lambda f: np.abs(f.points - points).mean(), default=None)
        if face is None or face.iris is None:
            return
        h, w = portrait.linear.shape[:2]
        for (corners, _, _), (cx, cy, r) in zip(EYES, face.iris):
            a, b = points[corners[0]], points[corners[1]]
            width = float(np.linalg.norm(b - a))
            if r < 1.0 or width < 4:
                continue
            pad = int(np.ceil(0.5 * width + 2 * r))
            bx0, by0 = max(int(min(a[0], b[0])) - pad, self.x0), max(int(cy) - pad, self.y0)
            bx1, by1 = min(int(max(a[0], b[0])) + pad, x1, w), min(int(cy) + pad, y1, h)
            if bx1 - bx0 < 4 or by1 - by0 < 4:
                continue
            box = (slice(by0, by1), slice(bx0, bx1))
            yy, xx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
            dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            disc = np.clip(r + 0.5 - dist, 0.0, 1.0).astype(np.float32)
            plate = inpaint_linear(portrait.linear[box], portrait.srgb8[box], dist <= r * 1.15 + 1)
            axis = (b - a) / width
            self.eyes.append(dict(origin=np.array([bx0, by0], np.float32), plate=plate,
                                  iris=np.ascontiguousarray(portrait.linear[box]), disc=disc,
                                  width=width, axis=axis, corners=corners))

    def move(self, roi: np.ndarray, t: np.ndarray, gaze: np.ndarray, lx: np.ndarray, ly: np.ndarray):
        """``roi`` with each iris moved by ``gaze`` (2, 2), given the frame's maps (``lx``, ``ly``: where
        each region pixel comes from, region coordinates). Returns (roi, mask of changed pixels)."""
        changed = np.zeros(roi.shape[:2], np.float32)
        for k, eye in enumerate(self.eyes):
            g = np.clip(gaze[min(k, len(gaze) - 1)], [-self.MAX_SHIFT[0], -self.MAX_SHIFT[1]], self.MAX_SHIFT)
            ux, uy = eye["axis"], np.array([-eye["axis"][1], eye["axis"][0]])
            shift = (g[0] * ux + g[1] * uy) * eye["width"]
            m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
            hh, ww = eye["disc"].shape
            disc = cv2.warpAffine(eye["disc"], m, (ww, hh), flags=cv2.INTER_LINEAR, borderValue=0)
            iris = cv2.warpAffine(eye["iris"], m, (ww, hh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            eyeball = eye["plate"] * (1 - disc[..., None]) + np.maximum(iris, 0) * disc[..., None]
            # Where the eye shows in this frame: its opening (lids as the warp left them).
            corners, upper, lower = EYES[k][0], EYES[k][1], EYES[k][2]
            outline = t[[corners[0], *upper, corners[1], *lower[::-1]]] - [self.x0, self.y0]
            ox0, oy0 = np.maximum(np.floor(outline.min(0)).astype(int) - 1, 0)
            ox1, oy1 = np.ceil(outline.max(0)).astype(int) + 2
            ox1, oy1 = min(ox1, roi.shape[1]), min(oy1, roi.shape[0])
            if ox1 - ox0 < 2 or oy1 - oy0 < 2:
                continue
            shift4 = 4
            opening = np.zeros((oy1 - oy0, ox1 - ox0), np.uint8)
            cv2.fillPoly(opening, [np.round((outline - [ox0, oy0]) * (1 << shift4)).astype(np.int32)], 255,
                         cv2.LINE_AA, shift4)
            opening = opening.astype(np.float32) / 255.0
            mx = lx[oy0:oy1, ox0:ox1] - (eye["origin"][0] - self.x0)
            my = ly[oy0:oy1, ox0:ox1] - (eye["origin"][1] - self.y0)
            moved = cv2.remap(eyeball, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            a = opening[..., None]
            roi[oy0:oy1, ox0:ox1] = roi[oy0:oy1, ox0:ox1] * (1 - a) + np.maximum(moved, 0) * a
            changed[oy0:oy1, ox0:ox1] = np.maximum(changed[oy0:oy1, ox0:ox1], opening)
        return roi, changed


def fill_from_above(linear: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``linear`` with each pixel of ``hole`` (bool (h, w)) taking the colour of the nearest pixel above
    it outside the hole: what a lid slides on where glasses were, so the stretched band shows the
    skin above the rim and the lid, never a smear of the eye under a reflection."""
    out = linear.copy()
    rows = np.nonzero(hole.any(1))[0]
    for y in rows:
        if y == 0:
            continue
        cols = hole[y]
        out[y, cols] = out[y - 1, cols]
    # Copied rows streak: soften the fill sideways (only the filled pixels change).
    soft = cv2.GaussianBlur(out, (0, 0), sigmaX=3.0, sigmaY=1.0)
    out[hole] = soft[hole]
    return out
