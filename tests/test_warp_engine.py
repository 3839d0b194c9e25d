"""The warp engine's promises: landmarks land where asked, the far background stays, mouths open
into an interior rather than stretched lips, lids close for blinks."""
import cv2
import numpy as np
import pytest
from skimage import data

from livingportrait_backend.detectors import get_detector
from livingportrait_backend.engines import create_engine
from livingportrait_backend.images import decode_portrait
from livingportrait_backend.landmarks.face_model import TEMPLATE
from livingportrait_wire.errors import BadInput


@pytest.fixture(scope="module")
def portrait():
    ok, png = cv2.imencode(".png", data.astronaut()[:, :, ::-1])
    return decode_portrait(png.tobytes(), "astronaut.png")


@pytest.fixture(scope="module")
def points(portrait):
    return get_detector("mediapipe").detect(portrait.srgb8)[0].points


@pytest.fixture(scope="module")
def engine(portrait, points):
    e = create_engine("warp")
    e.prepare([portrait], points)
    return e


def compose(portrait, patch):
    out = portrait.linear.copy()
    h, w = patch.matte.shape
    out[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w] = patch.rgb
    return out


def test_neutral_targets_reproduce_the_portrait(engine, portrait, points):
    patch = engine.render(points)
    np.testing.assert_allclose(compose(portrait, patch), portrait.linear, atol=1e-4)
    assert patch.matte.max() < 0.05


def test_a_moved_point_takes_its_pixels_with_it(engine, portrait, points):
    # Move the whole face 6 px right: the nose tip's colour should now be 6 px to the right.
    patch = engine.render(points + np.array([6.0, 0.0], np.float32))
    out = compose(portrait, patch)
    x, y = np.round(points[30]).astype(int)
    np.testing.assert_allclose(out[y, x + 6], portrait.linear[y, x], atol=0.03)


def test_background_outside_the_face_region_is_untouched(engine, portrait, points):
    patch = engine.render(points + np.array([10.0, 4.0], np.float32))
    h, w = patch.matte.shape
    H, W = portrait.linear.shape[:2]
    assert h * w < H * W / 2, "a frame changes a region around the face, not the whole portrait"
    # Where the region does not meet the image edge, its border has faded to exactly no motion.
    bottom = portrait.linear[patch.y0 + h - 1, patch.x0:patch.x0 + w]
    np.testing.assert_allclose(patch.rgb[-1], bottom, atol=1e-5)
    assert patch.matte[-1].max() == 0
    if patch.x0 > 0:
        np.testing.assert_allclose(patch.rgb[:, 0], portrait.linear[patch.y0:patch.y0 + h, patch.x0], atol=1e-5)


def test_an_opening_mouth_gets_a_dark_interior_not_stretched_lips(engine, portrait, points):
    t = points.copy()
    jaw = (TEMPLATE[8, 1] - TEMPLATE[27, 1])  # move the lower face down by a fifth of a face unit
    drop = 0.25 * np.linalg.norm(points[8] - points[27]) / jaw * np.array([0, 1])
    t[list(range(5, 12)) + [55, 56, 57, 58, 59, 65, 66, 67]] += drop
    patch = engine.render(t)
    out = compose(portrait, patch)
    mid = np.round((t[62] + t[66]) / 2).astype(int)
    inside = out[mid[1] - 1:mid[1] + 2, mid[0] - 1:mid[0] + 2].mean((0, 1))
    assert inside.mean() < portrait.linear[mid[1], mid[0]].mean() * 0.6 or inside.mean() < 0.05
    assert patch.matte[mid[1] - patch.y0, mid[0] - patch.x0] > 0.9


def test_a_blink_pulls_the_upper_lid_down(engine, portrait, points):
    t = points.copy()
    for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
        t[up] = t[lo] - np.array([0, 0.5], np.float32)
    out = compose(portrait, engine.render(t))
    # Where the eye was open, its darkest part (the pupil) is covered by the lid's skin: the eye's
    # darkest pixels above the lash line (the lower quarter of the opening) are much brighter.
    for eye in (points[36:42], points[42:48]):
        inside = np.zeros(portrait.linear.shape[:2], np.uint8)
        cv2.fillPoly(inside, [np.round(eye).astype(np.int32)], 1)
        bottom = eye[[1, 2], 1].mean() + 0.75 * np.mean(eye[[5, 4], 1] - eye[[1, 2], 1])
        inside[int(bottom):] = 0
        inside = inside > 0

        def dark(img):
            return np.percentile(img[inside].mean(-1), 10)
        assert dark(out) > 1.5 * dark(portrait.linear)


def test_landmarks_outside_the_image_are_refused(portrait):
    e = create_engine("warp")
    with pytest.raises(BadInput, match="outside the image"):
        e.prepare([portrait], np.full((68, 2), -5000, np.float32) + np.random.rand(68, 2).astype(np.float32))


def test_unknown_engines_are_named():
    with pytest.raises(BadInput, match="engine 'dreamy' is not available"):
        create_engine("dreamy")
