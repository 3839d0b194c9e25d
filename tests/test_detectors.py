"""Detectors behind one interface, on real photographs: the astronaut, moved by known affine maps,
several faces in one frame, and images with no face."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import data

from livingportrait_backend.detectors import (Detection, detect_portrait_landmarks,
                                              get_detector)
from livingportrait_wire.errors import BadInput
from livingportrait_wire.layout import interocular_distance


@pytest.fixture(scope="module")
def mediapipe():
    return get_detector("mediapipe")


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(mediapipe, astronaut):
    return mediapipe.detect(astronaut)[0]


def test_one_face_in_the_ibug_layout(astronaut_face):
    d = astronaut_face
    assert isinstance(d, Detection)
    assert d.points.shape == (68, 2) and d.points.dtype == np.float32
    assert d.confidence.shape == (68,) and d.confidence.dtype == np.float32
    assert np.all((d.confidence >= 0) & (d.confidence <= 1))
    x0, y0, x1, y1 = d.box
    assert np.all((d.points[:, 0] >= x0 - 1) & (d.points[:, 0] <= x1 + 1))
    assert np.all((d.points[:, 1] >= y0 - 1) & (d.points[:, 1] <= y1 + 1))


def test_points_sit_where_the_ibug_layout_puts_them(astronaut_face):
    p = astronaut_face.points
    # the subject's right (image left) comes first: jaw, brows and eyes run left to right
    assert p[0, 0] < p[8, 0] < p[16, 0] and p[8, 1] == pytest.approx(p[:17, 1].max())
    assert p[17, 0] < p[21, 0] < p[22, 0] < p[26, 0]
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]
    # top to bottom: brows, eyes, nose tip, mouth, chin
    brow_y, eye_y = p[17:27, 1].mean(), p[36:48, 1].mean()
    assert brow_y < eye_y < p[30, 1] < p[51, 1] < p[57, 1] < p[8, 1]
    # upper lids above lower lids; the nose bridge runs downwards
    assert p[37, 1] < p[41, 1] and p[44, 1] < p[46, 1]
    assert np.all(np.diff(p[27:31, 1]) > 0)


def test_eye_centres_agree_with_an_independent_eye_detector(astronaut, astronaut_face):
    # OpenCV's Haar eye cascade (a different method and model) finds the two eyes; each eye's landmark
    # centre must lie within a few pixels of one of its boxes' centres.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")
    boxes = cascade.detectMultiScale(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), 1.1, 5)
    assert len(boxes) == 2
    haar = sorted((x + w / 2, y + h / 2) for x, y, w, h in boxes)  # image left first
    p = astronaut_face.points
    for eye, centre in zip((p[36:42].mean(axis=0), p[42:48].mean(axis=0)), haar):
        assert np.linalg.norm(eye - centre) < 0.1 * interocular_distance(p)


@pytest.mark.parametrize("scale, degrees, shift", [(1.0, 0.0, (25, -15)), (0.8, 8.0, (10, 20)),
                                                    (1.25, -10.0, (-40, -30))])
def test_points_follow_a_known_affine_motion(mediapipe, astronaut, astronaut_face, scale, degrees, shift):
    centre = astronaut_face.points[30]
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, scale)
    m[:, 2] += shift
    moved = cv2.warpAffine(astronaut, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    expected = astronaut_face.points @ m[:, :2].T + m[:, 2]
    got = mediapipe.detect(moved)[0].points
    error = np.linalg.norm(got - expected, axis=1) / interocular_distance(expected)
    # features (brows, eyes, nose, mouth) within a few percent of the eye distance; the jaw contour
    # is less certain on any detector
    assert np.median(error[17:]) < 0.05, error
    assert np.median(error[:17]) < 0.1, error


def two_face_photo(astronaut):
    """A 1024x640 canvas with the astronaut at full size and, beside it, at 3/4 size."""
    canvas = np.full((640, 1024, 3), 90, np.uint8)
    canvas[64:576, 0:512] = astronaut
    canvas[200:584, 600:984] = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    return canvas


def test_several_faces_come_largest_first(mediapipe, astronaut):
    faces = mediapipe.detect(two_face_photo(astronaut))
    assert len(faces) == 2
    assert faces[0].area > 1.4 * faces[1].area
    assert faces[0].points[:, 0].max() < 512 and faces[1].points[:, 0].min() > 600
    second = detect_portrait_landmarks(two_face_photo(astronaut), "pair.png", mediapipe, face_index=1)
    np.testing.assert_array_equal(second.points, faces[1].points)


def test_no_face_is_an_empty_list_and_a_clear_portrait_error(mediapipe):
    sky = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    sky = cv2.GaussianBlur(sky, (31, 31), 0)
    assert mediapipe.detect(sky) == []
    with pytest.raises(BadInput, match=r"^sky\.png: no face found; pass --portrait-landmarks FILE"):
        detect_portrait_landmarks(sky, "sky.png", mediapipe)


def test_face_index_out_of_range_says_how_many_faces(mediapipe, astronaut):
    with pytest.raises(BadInput, match=r"astro\.png: face index 3 is out of range: 1 face\(s\) found"):
        detect_portrait_landmarks(astronaut, "astro.png", mediapipe, face_index=3)


def test_unknown_detector_lists_the_known_ones():
    with pytest.raises(BadInput, match=r"unknown detector 'dlib'; choose one of: mediapipe, fan"):
        get_detector("dlib")


def list_detectors_in_a_fresh_process(torch_home):
    """(available_detectors(), the model packages that listing imported), in a new interpreter."""
    code = ("import sys; from livingportrait_backend.detectors import available_detectors as a; "
            "print(a()); print([m for m in ('torch', 'mediapipe', 'face_alignment') if m in sys.modules])")
    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.strip().splitlines()


def test_listing_detectors_imports_no_model_package_and_needs_fan_weights(tmp_path):
    assert list_detectors_in_a_fresh_process(tmp_path / "empty") == ["['mediapipe']", "[]"]
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth"):
        (checkpoints / name).write_bytes(b"weights")
    assert list_detectors_in_a_fresh_process(tmp_path) == ["['mediapipe', 'fan']", "[]"]


def test_a_small_face_in_a_wide_frame_is_found(mediapipe, astronaut, astronaut_face):
    # The astronaut's face is about 100 px wide: 5% of a 1920 px frame, as in a wide shot.
    frame = np.full((1080, 1920, 3), 40, np.uint8)
    frame[300:812, 900:1412] = astronaut
    found = mediapipe.detect(frame)
    assert len(found) == 1
    error = np.linalg.norm(found[0].points - (astronaut_face.points + [900, 300]), axis=1)
    assert np.median(error) < 0.05 * interocular_distance(astronaut_face.points)
