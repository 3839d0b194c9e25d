"""What an artist sees in the warp engine's frames, checked on real portraits with an INDEPENDENT
detector (dlib's 68 points and identity embedding, not the mediapipe mesh the engine uses): blinks
that close, a still background, a collar the jaw does not drag, kept detail, teeth that tilt with the
mouth and a smiling portrait's own teeth."""
import cv2
import numpy as np
import pytest

import warp_subjects as ws
from livingportrait_backend.colorspace import linear_to_srgb8
from livingportrait_backend.detectors import get_detector
from livingportrait_backend.engines import create_engine
from livingportrait_backend.images import decode_portrait


@pytest.fixture(scope="module")
def subjects():
    """name -> (portrait, mediapipe points, prepared engine)."""
    det = get_detector("mediapipe")
    out = {}
    for name, rgb in ws.portraits().items():
        portrait = decode_portrait(ws.png_bytes(rgb), name + ".png")
        points = det.detect(portrait.srgb8)[0].points
        engine = create_engine("warp")
        engine.prepare([portrait], points)
        out[name] = (portrait, points, engine)
    return out


def render(subject, targets):
    portrait, _, engine = subject
    return ws.compose(portrait.linear, engine.render(np.asarray(targets, np.float32)))


@pytest.mark.parametrize("name", ["astronaut", "astronaut_glasses"])
def test_a_full_blink_closes_the_eye_for_an_independent_detector(subjects, name):
    portrait, points, _ = subjects[name]
    dlib = ws.measurer()
    open_ear = ws.eye_openness(dlib.landmarks(linear_to_srgb8(render(subjects[name], points))))
    curve = []
    for closure in (0.0, 0.5, 1.0):
        lm = dlib.landmarks(linear_to_srgb8(render(subjects[name], ws.blink(points, closure))))
        assert lm is not None, "the face is still found mid-blink"
        curve.append(ws.eye_openness(lm))
    assert curve[2] <= 0.5 * open_ear, f"eye aspect ratio {curve[2]:.3f} at full blink vs {open_ear:.3f} open"
    assert curve[0] > curve[1] > curve[2], f"the eye follows the blink's curve: {curve}"


def test_glasses_stay_rigid_and_straight_through_a_blink(subjects):
    portrait, points, _ = subjects["hopper_glasses"]
    # The rims and their edges (where a bent rim shows first).
    rims = cv2.dilate(ws.with_glasses(ws.grace_hopper(), ws.hopper_eyes(), rims_only=True),
                      np.ones((3, 3), np.uint8)) > 0
    out = render(subjects["hopper_glasses"], ws.blink(points, 1.0))
    change = np.abs(out - portrait.linear).max(-1)
    eyes = np.zeros(change.shape, np.uint8)
    for eye in (points[36:42], points[42:48]):
        cv2.fillPoly(eyes, [np.round(eye).astype(np.int32)], 1)
    assert change[eyes > 0].mean() > 0.02, "the lids did close"
    moved = int((change[rims] > 0.02).sum())
    assert moved < 0.02 * rims.sum() and change[rims].max() < 0.3, \
        f"the rims moved: {moved} of {int(rims.sum())} rim pixels, by up to {change[rims].max():.2f}"


def person_region(portrait, points):
    import mediapipe as mp
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        m = seg.process(np.ascontiguousarray(portrait.srgb8)).segmentation_mask > 0.05
    # Wide enough for the hair and the hat to move in (a head move of up to 4 degrees and 7 px).
    iod = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    k = max(3, int(0.7 * iod)) | 1
    return cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


@pytest.mark.parametrize("name", ["astronaut", "hopper_glasses"])
def test_background_pixels_outside_the_person_never_change(subjects, name):
    portrait, points, _ = subjects[name]
    person = person_region(portrait, points)
    for t in (ws.head_move(points, (6.0, -4.0), 4.0), ws.open_mouth(ws.head_move(points, (-5, 3), -4), 1.0)):
        out = render(subjects[name], t)
        changed = np.abs(out - portrait.linear).max(-1) > 0
        assert changed[person].any(), "the head did move"
        assert not changed[~person].any(), f"{int(changed[~person].sum())} background pixels changed"


@pytest.mark.parametrize("name", ["astronaut", "hopper_glasses"])
def test_opening_the_jaw_leaves_the_collar_and_shoulders_alone(subjects, name):
    portrait, points, _ = subjects[name]
    out = render(subjects[name], ws.open_mouth(points, 1.0))
    fh = points[8, 1] - points[17:27, 1].min()
    below = out[int(points[8, 1] + 0.45 * fh):]
    np.testing.assert_array_equal(below, portrait.linear[int(points[8, 1] + 0.45 * fh):])
    assert np.abs(out - portrait.linear).max() > 0.1, "the mouth did open"


def laplacian_var(rgb8, pts):
    lo, hi = pts.min(0), pts.max(0)
    m = 0.15 * (hi - lo)
    x0, y0 = np.round(lo + m).astype(int)
    x1, y1 = np.round(hi - m).astype(int)
    g = cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(g, cv2.CV_32F)[y0:y1, x0:x1].var())


@pytest.mark.parametrize("name", ["astronaut", "hopper_glasses"])
def test_a_head_move_keeps_the_fine_detail(subjects, name):
    portrait, points, _ = subjects[name]
    t = ws.head_move(points, (5.5, -3.3), 4.0)
    kept = laplacian_var(linear_to_srgb8(render(subjects[name], t)), t) / laplacian_var(portrait.srgb8, points)
    assert kept >= 0.8, f"{kept:.2f} of the face's Laplacian variance kept"


def test_a_tilted_mouths_teeth_tilt_with_it(subjects):
    # Grace Hopper's mouth is closed: the interior is synthesised. Roll the head 12 degrees with the
    # jaw open: the teeth (the interior's bright pixels) lie along the tilted lip line.
    portrait, points, _ = subjects["hopper_glasses"]
    t = ws.head_move(ws.open_mouth(points, 1.0), (0, 0), 12.0)
    out = render(subjects["hopper_glasses"], t)
    inner = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
    lum = out.mean(-1)
    teeth = (inner > 0) & (lum > np.percentile(lum[inner > 0], 70))
    ys, xs = np.nonzero(teeth)
    w, v = np.linalg.eigh(np.cov(np.stack([xs, ys])))
    major = v[:, np.argmax(w)] * np.sign(v[0, np.argmax(w)])
    angle = np.degrees(np.arctan2(major[1], major[0]))
    lip = np.degrees(np.arctan2(t[64, 1] - t[60, 1], t[64, 0] - t[60, 0]))
    assert abs(angle - lip) < 4, f"teeth at {angle:.1f} deg, lip line at {lip:.1f} deg"
    # ... and the interior is dark behind them, not a flat band.
    assert np.percentile(lum[inner > 0], 10) < 0.3 * np.percentile(lum[inner > 0], 90)


def her_teeth_below_the_upper_lip(subjects, depth):
    """Mean linear colour of a small patch ``depth`` of her own inner-lip opening below the middle of the
    upper inner lip: in the portrait, and in a frame whose jaw is fully open."""
    portrait, points, _ = subjects["astronaut"]
    t = ws.open_mouth(points, 1.0)
    out = render(subjects["astronaut"], t)
    below = (points[66] - points[62]) * depth

    def patch(img, c):
        x, y = np.round(c).astype(int)
        return img[y - 1:y + 2, x - 2:x + 3].reshape(-1, 3).mean(0)

    return patch(portrait.linear, points[62] + below), patch(out, t[62] + below)


def test_a_smiling_portraits_own_teeth_show_when_the_mouth_opens(subjects):
    # Upper teeth hang from the upper lip: a quarter of her own opening below it is her front teeth, in
    # the portrait and in the opened frame alike.
    own, shown = her_teeth_below_the_upper_lip(subjects, 0.25)
    np.testing.assert_allclose(shown, own, atol=0.08)
    assert own.mean() > 0.3, "the patch is on her (bright) teeth"


def test_a_smiling_portraits_upper_teeth_keep_their_full_height_when_the_jaw_drops(subjects):
    # Her upper teeth reach her lower lip; opening the jaw must reveal the throat BELOW them, not cut them
    # at half height: three quarters of her own opening below the upper lip is still her teeth.
    own, shown = her_teeth_below_the_upper_lip(subjects, 0.75)
    assert own.mean() > 0.3, "the patch is on her (bright) teeth in the portrait"
    assert shown.mean() > 0.75 * own.mean(), f"teeth, not throat: {shown} vs her own {own}"


@pytest.mark.parametrize("name", ["astronaut", "hopper_glasses", "painting"])
def test_the_person_stays_the_same_person(subjects, name):
    portrait, points, _ = subjects[name]
    dlib = ws.measurer()
    ref = dlib.embedding(portrait.srgb8)
    out = linear_to_srgb8(render(subjects[name], ws.head_move(ws.open_mouth(points, 0.7), (4, -2), 4)))
    assert np.linalg.norm(dlib.embedding(out) - ref) < 0.6
