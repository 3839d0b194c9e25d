"""The warp's thin-plate spline is scipy's RBFInterpolator; it must be the spline we solved by hand
before (kernel r^2 log r, affine part, 1e-4 on the diagonal), on the same coarse grid and window."""
import cv2
import numpy as np
from skimage import data

from livingportrait_backend.detectors import get_detector
from livingportrait_backend.engines import create_engine
from livingportrait_backend.images import decode_portrait


def handwritten_spline(ctrl, values, center, scale, grid):
    """The solve the engine used until scipy took it over, kept here as the reference."""
    c = (ctrl - center) / scale
    n = len(c)

    def kernel(r2):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r2 > 0, 0.5 * r2 * np.log(r2), 0.0)

    k = kernel(((c[:, None] - c[None]) ** 2).sum(-1))
    k[np.diag_indices(n)] += 1e-4
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = k
    a[:n, n] = a[n, :n] = 1.0
    a[:n, n + 1:] = c
    a[n + 1:, :n] = c.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = values / scale
    coef = np.linalg.solve(a, rhs)
    g = (grid - center) / scale
    r2 = (g * g).sum(1)[:, None] + (c * c).sum(1)[None] - 2.0 * (g @ c.T)
    return (kernel(np.maximum(r2, 0.0)) @ coef[:n] + coef[n] + g @ coef[n + 1:]) * scale


def test_scipy_spline_matches_the_handwritten_solve():
    ok, png = cv2.imencode(".png", data.astronaut()[:, :, ::-1])
    portrait = decode_portrait(png.tobytes(), "astronaut.png")
    points = get_detector("mediapipe").detect(portrait.srgb8)[0].points
    e = create_engine("warp")
    e.prepare([portrait], points)
    rng = np.random.default_rng(3)
    for trial in range(3):
        t = points + rng.normal(0, 3, points.shape) + [4.0 * trial, -2.0]
        ctrl = np.concatenate([t, e.forehead_src + 2.0, e.ring])
        back = np.concatenate([e.points, e.forehead_src, e.ring]) - ctrl
        want = handwritten_spline(ctrl, back, e.center, e.iod, e.grid)
        got = e._spline_field(ctrl, back)
        assert np.abs(got - want).max() < 1e-9
        assert np.abs(want).max() > 1.0  # a real displacement was compared, not zeros
