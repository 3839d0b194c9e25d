"""Gaze: a performance may carry per-frame iris centres (``gaze`` in the .npz, optional); ``track``
records them; the warp engine moves the irises inside the eye opening, clipped by the lids."""
import cv2
import numpy as np
import pytest

import warp_subjects as ws
from livingportrait_backend.detectors import get_detector
from livingportrait_backend.engines import create_engine
from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
from livingportrait_backend.images import decode_portrait
from livingportrait_backend.landmarks.tracking import track_frames
from livingportrait_wire.landmarks import LandmarkSequence, load_sequence, save_sequence


@pytest.fixture(scope="module")
def astronaut():
    portrait = decode_portrait(ws.png_bytes(ws.astronaut()), "astronaut.png")
    face = get_detector("mediapipe").detect(portrait.srgb8)[0]
    engine = create_engine("warp")
    engine.prepare([portrait], face.points)
    return portrait, face, engine


def test_gaze_round_trips_through_the_npz_and_old_files_still_load(tmp_path):
    rng = np.random.default_rng(1)
    lm = rng.uniform(100, 200, (4, 68, 2)).astype(np.float32)
    gaze = rng.uniform(100, 200, (4, 2, 2)).astype(np.float32)
    seq = LandmarkSequence(lm, np.arange(1, 5), (320, 240), extras={"gaze": gaze})
    save_sequence(seq, tmp_path / "with.npz")
    back = load_sequence(tmp_path / "with.npz")
    np.testing.assert_array_equal(back.gaze, gaze)
    np.testing.assert_array_equal(back.select(2, 3).gaze, gaze[1:3])
    # A file written before gaze existed: no key, loads, no gaze.
    np.savez(tmp_path / "old.npz", landmarks=lm, frames=np.arange(1, 5, dtype=np.int32),
             image_size=np.array([320, 240], np.int32), layout=np.asarray("ibug68"))
    assert load_sequence(tmp_path / "old.npz").gaze is None


def test_track_records_the_gaze(astronaut):
    portrait, face, _ = astronaut
    # Three frames of the photo shifted right by 0, 4 and 8 px: the irises go with it.
    frames = [(i + 1, np.ascontiguousarray(np.roll(portrait.srgb8, 4 * i, axis=1))) for i in range(3)]
    seq = track_frames(frames, "mediapipe")
    assert seq.gaze is not None and seq.gaze.shape == (3, 2, 2)
    np.testing.assert_allclose(seq.gaze[0], face.iris[:, :2], atol=1.5)
    np.testing.assert_allclose(seq.gaze[2] - seq.gaze[0], [[8, 0], [8, 0]], atol=1.5)


def eye_openings(shape, points):
    mask = np.zeros(shape, np.uint8)
    for eye in (points[36:42], points[42:48]):
        cv2.fillPoly(mask, [np.round(eye).astype(np.int32)], 1)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0


def test_gaze_moves_the_iris_inside_the_eye_clipped_by_the_lids(astronaut):
    portrait, face, engine = astronaut
    p = face.points
    still = ws.compose(portrait.linear, engine.render(p))
    looking = ws.compose(portrait.linear, engine.render(p, gaze=np.array([[0.18, 0], [0.18, 0]], np.float32)))
    inside = eye_openings(still.shape[:2], p)
    # Nothing outside the eye openings changes: the lids and the skin clip the iris.
    np.testing.assert_array_equal(looking[~inside], still[~inside])
    for k, eye in enumerate((p[36:42], p[42:48])):
        m = np.zeros(still.shape[:2], np.uint8)
        cv2.fillPoly(m, [np.round(eye).astype(np.int32)], 1)
        ys, xs = np.nonzero(m)

        def dark_x(img):  # the darkest fifth of the opening: the iris and pupil
            lum = img[ys, xs].mean(-1)
            return xs[lum <= np.percentile(lum, 20)].mean()
        width = np.linalg.norm(eye[3] - eye[0])
        moved = dark_x(looking) - dark_x(still)
        assert 0.08 * width < moved < 0.3 * width, f"eye {k}: iris moved {moved:.1f} px of a {width:.0f} px eye"


def test_a_tracked_gaze_reaches_the_frames(astronaut):
    portrait, face, _ = astronaut
    p = face.points[None].repeat(3, 0)
    eye_w = np.linalg.norm(face.points[39] - face.points[36])
    gaze = face.iris[None, :, :2].repeat(3, 0).copy()
    gaze[2, :, 0] += 0.15 * eye_w  # the actor looks to the side at frame 3
    driver = LandmarkSequence(p, np.arange(1, 4), (512, 512), extras={"gaze": gaze})
    r = FrameRenderer(RenderSpec([portrait], driver, portrait_landmarks=face.points))
    r.prepare()
    first, last = (ws.compose(portrait.linear, r._render_group([f])[0]) for f in (1, 3))
    inside = eye_openings(first.shape[:2], face.points)
    assert np.abs(last - first)[inside].max() > 0.05
    np.testing.assert_array_equal(last[~inside], first[~inside])
