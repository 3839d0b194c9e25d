"""Mouth interiors for the warp engine, from landmarks alone.

Everything is laid out in the mouth's own frame, so it tilts with the lip line: ``u`` runs from one
inner corner (-1) to the other (+1), and at each ``u`` a pixel is ``d_up`` below the upper inner lip and
``d_lo`` above the lower one. In that frame:

- a portrait whose own teeth show keeps them: upper teeth hang from the upper lip (they move with the
  head), lower teeth stand on the lower lip (they move with the jaw), each resampled from the portrait
  at the same distance from its lip; what opens between them is throat;
- a performance tracked from footage carries the actor's own mouth interior per frame (``driver_mouth``:
  the opening resampled onto a fixed (u, v) grid, v from the upper inner lip (0) to the lower (1));
  it is laid onto the portrait's opening in the same (u, v), its light and colour matched to the
  portrait's in linear light (the ratio of the portraits' lip colours) and given the portrait's grain;
- otherwise an interior is synthesised: a throat darker toward the back and the corners, the upper
  lip's shadow, upper teeth of decreasing width toward the corners with dark separations and rounded
  tips, lower teeth and a tongue when the jaw drops far enough, all scaled to the portrait's light and
  carrying the portrait's own grain (its high frequencies, taken from the cheek).
"""
from __future__ import annotations

import cv2
import numpy as np

UPPER = (60, 61, 62, 63, 64)
LOWER = (60, 67, 66, 65, 64)
# Tooth boundaries along the half mouth (|u|): incisors, lateral incisors, canines, premolars, molars.
TOOTH_EDGES = np.array([0.0, 0.2, 0.37, 0.52, 0.66, 0.79, 0.91, 1.2])


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


DRIVER_MOUTH = (32, 64)  # (v, u) samples of an actor's mouth opening carried per frame


def driver_mouth(rgb8: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An actor's mouth interior in one frame: uint8 sRGB (32, 64, 3) of the inner-lip opening on the
    (u, v) grid, and the linear mean colour (3,) of the lips around it (for colour matching)."""
    from ..colorspace import SRGB8_TO_LINEAR

    f = MouthFrame(np.asarray(points, np.float64))
    rows, cols = DRIVER_MOUTH
    xr = np.linspace(-1.0, 1.0, cols)[None, :] * f.half
    yu, yl = f.curves(xr)
    yr = yu + np.linspace(0.0, 1.0, rows)[:, None] * (yl - yu)
    mx, my = f.to_image(np.broadcast_to(xr, yr.shape), yr)
    crop = cv2.remap(np.ascontiguousarray(rgb8[:, :, :3]), mx.astype(np.float32), my.astype(np.float32),
                     cv2.INTER_AREA if f.half > cols else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, lip_colour(SRGB8_TO_LINEAR[rgb8[:, :, :3]], points)


def lip_colour(linear: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mean linear colour (3,) of the lips (between the outer and the inner lip line): the reference
    an actor's mouth interior is matched to a portrait's by."""
    h, w = linear.shape[:2]
    x0, y0 = np.clip(np.floor(points[48:60].min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(points[48:60].max(0)).astype(int) + 1, 1, [w, h])
    ring = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(ring, [np.round(points[48:60] - [x0, y0]).astype(np.int32)], 1)
    cv2.fillPoly(ring, [np.round(points[60:68] - [x0, y0]).astype(np.int32)], 0)
    lips = linear[y0:y1, x0:x1][ring > 0]
    return (lips.mean(0) if len(lips) else np.full(3, 0.2)).astype(np.float32)


class MouthFrame:
    """The mouth's own frame for 68 points: centre, axis along the inner lip corners, lip curves."""

    def __init__(self, pts: np.ndarray):
        a, b = pts[60], pts[64]
        self.center = (a + b) / 2
        d = b - a
        self.half = max(float(np.linalg.norm(d)) / 2, 1.0)
        self.axis = d / (2 * self.half)
        self.normal = np.array([-self.axis[1], self.axis[0]])  # points down the face
        self.up = self._rot(pts[list(UPPER)])
        self.lo = self._rot(pts[list(LOWER)])

    def _rot(self, q):
        q = np.asarray(q, np.float64) - self.center
        r = np.stack([q @ self.axis, q @ self.normal], -1)
        return r[np.argsort(r[:, 0])]

    def curves(self, xr):
        return np.interp(xr, self.up[:, 0], self.up[:, 1]), np.interp(xr, self.lo[:, 0], self.lo[:, 1])

    def to_image(self, xr, yr):
        return (self.center[0] + xr * self.axis[0] + yr * self.normal[0],
                self.center[1] + xr * self.axis[1] + yr * self.normal[1])


def _luma(rgb):
    return rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)


class MouthModel:
    """What the portrait offers a mouth: its light, grain, and its own teeth if they show."""

    def __init__(self, src: np.ndarray, p: np.ndarray, iod: float):
        self.src = src
        self.iod = iod
        self.frame = MouthFrame(p)
        h, w = src.shape[:2]
        mx0, my0 = np.floor(p[48:60].min(0)).astype(int)
        mx1, my1 = np.ceil(p[48:60].max(0)).astype(int)
        lips = src[max(my0, 0):max(my1, 1), max(mx0, 0):max(mx1, 1)]
        self.skin = lips.reshape(-1, 3).mean(0) if lips.size else np.full(3, 0.2, np.float32)
        self.lips = lip_colour(src, p)
        # Grain: the portrait's relative high frequencies on the cheek below the eye.
        x0 = int(max(p[36, 0], 0)); x1 = int(min(max(p[39, 0], x0 + 8), w))
        y0 = int(max(p[29, 1], 0)); y1 = int(min(max(p[33, 1], y0 + 8), h))
        cheek = _luma(src[y0:y1, x0:x1]) if (y1 > y0 and x1 > x0) else np.full((8, 8), 0.2, np.float32)
        base = cv2.GaussianBlur(cheek, (0, 0), 1.5)
        self.grain = np.clip((cheek - base) / np.maximum(base, 1e-3), -0.5, 0.5).astype(np.float32)
        # The portrait's own teeth: an inner mouth open by a few percent of the eye distance whose
        # brighter pixels are clearly brighter than the lips around them.
        gaps = self.frame.lo[1:-1, 1] - self.frame.up[1:-1, 1]
        self.open = float(np.mean(gaps))
        self.own_teeth = False
        if self.open > 0.04 * iod:
            inner = np.zeros((h, w), np.uint8)
            cv2.fillPoly(inner, [np.round(p[60:68]).astype(np.int32)], 1)
            outer = np.zeros((h, w), np.uint8)
            cv2.fillPoly(outer, [np.round(p[48:60]).astype(np.int32)], 1)
            lip_ring = (outer > 0) & (cv2.dilate(inner, np.ones((3, 3), np.uint8)) == 0)
            inner = cv2.erode(inner, np.ones((3, 3), np.uint8)) > 0
            if inner.sum() > 10 and lip_ring.sum() > 10:
                lum = _luma(src)
                self.own_teeth = bool(np.percentile(lum[inner], 80) > 1.25 * np.median(lum[lip_ring]))
        self.split = self._teeth_split() if self.own_teeth else 0.5
        self.area = _polygon_area(p[60:68])

    def _teeth_split(self) -> float:
        """Where the portrait's own upper teeth end, as a fraction of its inner-lip opening (0 = the upper
        lip, 1 = the lower): the first clearly dark row below the bright upper teeth (the gap to the lower
        teeth or the throat), or 1 when the upper teeth reach the lower lip, as they do in most smiles.
        Splitting at the middle instead would cut the upper teeth in half when the jaw drops."""
        f = self.frame
        rows, cols = 48, 24
        xr = np.linspace(-0.5, 0.5, cols)[None, :] * f.half  # the front teeth, clear of the corners
        yu, yl = f.curves(xr)
        v = np.linspace(0.0, 1.0, rows)[:, None]
        mx, my = f.to_image(np.broadcast_to(xr, (rows, cols)), yu + v * (yl - yu))
        grid = cv2.remap(self.src, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        profile = np.median(_luma(grid), axis=1)
        bright = float(np.percentile(profile, 90))
        top = int(np.argmax(profile > 0.6 * bright))  # the first row of upper teeth
        dark = np.nonzero(profile[top:] < 0.45 * bright)[0]
        return float((top + dark[0]) / (rows - 1)) if len(dark) else 1.0

    def strength(self, t: np.ndarray) -> float:
        """How much of the frame's inner mouth is painted (0 = the warped portrait shows)."""
        area = _polygon_area(t[60:68])
        if area < 0.004 * self.iod ** 2 or area <= self.area:
            return 0.0
        if self.own_teeth:  # the painted interior is the portrait's own: take over almost at once
            return float(_smoothstep((area / self.area - 1.0) / 0.1))
        return float(_smoothstep((area - self.area) / (0.5 * self.area + 0.01 * self.iod ** 2)))

    def render(self, t: np.ndarray, shape: tuple[int, int], offset: np.ndarray, driver=None):
        """The interior for targets ``t`` on a region of ``shape`` (h, w) whose pixel 0 is portrait pixel
        ``offset``: (y0, x0, rgb float32, alpha float32) over the mouth's box only, or None.
        ``driver``: this frame's (crop, lip colour) from ``driver_mouth``, or None."""
        strength = self.strength(t)
        if strength <= 0:
            return None
        f = MouthFrame(t)
        lo_xy = np.floor(t[60:68].min(0) - offset).astype(int) - 2
        hi_xy = np.ceil(t[60:68].max(0) - offset).astype(int) + 3
        x0, y0 = max(lo_xy[0], 0), max(lo_xy[1], 0)
        x1, y1 = min(hi_xy[0], shape[1]), min(hi_xy[1], shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        xx, yy = np.meshgrid(np.arange(x0, x1, dtype=np.float64) + offset[0],
                             np.arange(y0, y1, dtype=np.float64) + offset[1])
        qx, qy = xx - f.center[0], yy - f.center[1]
        xr = qx * f.axis[0] + qy * f.axis[1]
        yr = qx * f.normal[0] + qy * f.normal[1]
        yu, yl = f.curves(xr)
        d_up, d_lo = yr - yu, yl - yr
        opening = np.maximum(yl - yu, 1e-3)
        u = np.clip(xr / f.half, -1.0, 1.0)
        if driver is not None:
            rgb = self._from_driver(driver, u, d_up / opening)
        else:
            # A portrait whose upper teeth reach its lower lip shows no lower teeth to keep: none are
            # invented under its own (a row of small synthetic ones reads as a comb against real teeth).
            lower = not (self.own_teeth and self.split >= 1.0)
            rgb = self._synthesise(u, d_up, d_lo, opening, f.half, lower)
            if self.own_teeth:
                rgb = self._own_teeth(rgb, u, d_up, d_lo, f.half)
        # Grain: the portrait's own, tiled over the box.
        g = self.grain
        gy = (np.arange(y0, y1) % g.shape[0])[:, None]
        gx = (np.arange(x0, x1) % g.shape[1])[None, :]
        rgb = rgb * (1.0 + g[gy, gx])[..., None]
        # Alpha: the inner-lip opening, antialiased and feathered so the lips' edge lies over it.
        shift = 4
        poly = np.round((t[60:68] - offset - [x0, y0]) * (1 << shift)).astype(np.int32)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA, shift)
        sigma = max(0.012 * self.iod, 0.5)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma) * strength
        return y0, x0, np.maximum(rgb, 0.0).astype(np.float32), alpha.astype(np.float32)

    def _synthesise(self, u, d_up, d_lo, opening, half, lower_teeth=True):
        light = float(np.clip(self.skin.mean() / 0.25, 0.25, 1.5))
        tint = self.skin / max(float(self.skin.mean()), 1e-4)  # the portrait's light colour
        throat = np.array([0.022, 0.005, 0.005], np.float32) * light
        tongue = np.array([0.20, 0.055, 0.055], np.float32) * light
        teeth = np.array([0.52, 0.47, 0.40], np.float32) * light * np.clip(tint, 0.8, 1.2)
        depth = np.clip(np.minimum(d_up, d_lo) / np.maximum(opening / 2, 1.0), 0.0, 1.0)
        shade = (0.3 + 0.7 * (1 - depth) ** 2) * (1 - 0.5 * u * u)
        rgb = throat * shade[..., None]
        # Tongue: a rounded mound resting on the lower lip, lit from the front.
        r = np.sqrt((u / 0.7) ** 2 + (np.maximum(d_lo, 0) / np.maximum(0.45 * opening, 1.0)) ** 2)
        tw = _smoothstep((1.0 - r) / 0.25) * _smoothstep((opening / half - 0.15) / 0.2)
        lit = ((0.55 + 0.45 * (1 - r)) * (1 - 0.4 * u * u))[..., None]
        rgb = rgb * (1 - tw[..., None]) + tongue * lit * tw[..., None]
        # Upper teeth.
        th = np.minimum(0.2 * half, 0.55 * opening) * (1 - 0.45 * u * u)
        edge_px, frac = _tooth_position(np.abs(u), half)
        tip = th * (1 - 0.3 * (2 * frac - 1) ** 4)
        wt = _smoothstep(tip - d_up + 0.5)
        sep = np.exp(-(edge_px / 0.7) ** 2)
        gum_to_tip = 0.8 + 0.2 * np.clip(d_up / np.maximum(th, 1), 0, 1)
        tooth = teeth * ((1 - 0.6 * u * u) * (1 - 0.55 * sep) * gum_to_tip)[..., None]
        rgb = rgb * (1 - wt[..., None]) + tooth * wt[..., None]
        # Lower teeth: only once the jaw has dropped, smaller and in shadow.
        tl = 0.45 * th * _smoothstep((opening / half - 0.3) / 0.3) * lower_teeth
        edge_l, frac_l = _tooth_position(np.abs(u) * 1.25, half * 0.8)
        wl = _smoothstep(tl * (1 - 0.3 * (2 * frac_l - 1) ** 4) - d_lo + 0.5) * (np.abs(u) < 0.8)
        sep_l = np.exp(-(edge_l / 0.7) ** 2)
        ltooth = teeth * 0.7 * ((1 - 0.6 * u * u) * (1 - 0.55 * sep_l))[..., None]
        rgb = rgb * (1 - wl[..., None]) + ltooth * wl[..., None]
        # The upper lip's shadow over everything just below it.
        lip_shadow = 0.5 + 0.5 * _smoothstep(d_up / (0.12 * opening + 1.0))
        return (rgb * lip_shadow[..., None]).astype(np.float32)

    def _from_driver(self, driver, u, v):
        """The actor's interior at (u, v), in the portrait's light."""
        from ..colorspace import SRGB8_TO_LINEAR

        crop, lips = driver
        rows, cols = crop.shape[:2]
        linear = SRGB8_TO_LINEAR[crop]
        gain = np.clip(self.lips / np.maximum(lips, 1e-4), 0.25, 4.0).astype(np.float32)
        mx = ((u + 1.0) * 0.5 * (cols - 1)).astype(np.float32)
        my = (np.clip(v, 0.0, 1.0) * (rows - 1)).astype(np.float32)
        return cv2.remap(linear, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE) * gain

    def _own_teeth(self, rgb, u, d_up, d_lo, half):
        """The portrait's own interior, upper part hanging from the upper lip, lower part standing on
        the lower lip, over the synthesised throat between them."""
        s = self.frame
        k = s.half / half
        xs = u * s.half
        yu_s, yl_s = s.curves(xs)
        open_s = np.maximum(yl_s - yu_s, 0.0)
        out = rgb
        for anchor, dist, share in ((yu_s, d_up, self.split), (yl_s, -d_lo, 1.0 - self.split)):
            if share <= 0:
                continue
            ys = anchor + dist * k
            mx, my = s.to_image(xs, ys)
            sample = cv2.remap(self.src, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
            reach = np.abs(dist) * k
            w = _smoothstep((open_s * share - reach) / 1.5 + 0.5)
            out = out * (1 - w[..., None]) + np.maximum(sample, 0) * w[..., None]
        return out


def _tooth_position(au, half):
    """Distance in pixels to the nearest tooth boundary, and the position 0..1 across the tooth."""
    i = np.clip(np.searchsorted(TOOTH_EDGES, au, side="right") - 1, 0, len(TOOTH_EDGES) - 2)
    a, b = TOOTH_EDGES[i], TOOTH_EDGES[i + 1]
    frac = (au - a) / (b - a)
    edge_px = np.minimum(au - a, b - au) * half
    return edge_px, frac


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
