"""Retargeting maths against hand-computed cases: pose and expression are separated, expression is
resized to the portrait, regions and the expression multiplier mask what transfers."""
import numpy as np
import pytest
from skimage import data

from livingportrait_backend.detectors import detect_portrait_landmarks
from livingportrait_backend.landmarks import RetargetOptions, retarget
from livingportrait_backend.landmarks.similarity import Similarity, fit_similarity
from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import LandmarkSequence
from livingportrait_wire.layout import interocular_distance

JAW, EYES, MOUTH, BROWS = range(0, 17), range(36, 48), range(48, 68), range(17, 27)


@pytest.fixture(scope="module")
def face():
    """A real face shape: the astronaut's landmarks (68, 2), float64."""
    return detect_portrait_landmarks(data.astronaut(), "astronaut").points.astype(np.float64)


def sequence(frames, first_frame=0):
    frames = np.asarray(frames, np.float64)
    return LandmarkSequence(frames, np.arange(first_frame, first_frame + len(frames)), (640, 480))


def similarity(scale, degrees, tx, ty):
    return Similarity(scale, np.radians(degrees), np.array([tx, ty], np.float64))


def test_still_driver_leaves_the_portrait_as_it_is(face):
    portrait = similarity(1.7, 10, 40, -20).apply(face)
    out = retarget(portrait, sequence([face, face, face]))
    assert out.shape == (3, 68, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.broadcast_to(portrait, out.shape), atol=1e-3)


def test_pure_head_translation_moves_every_point_equally_scaled_by_face_size(face):
    portrait = similarity(2.0, 0, 100, 50).apply(face)  # the portrait's face is twice the driver's
    driver = sequence([face, face + [3.0, -1.0], face + [10.0, 4.0]])
    out = retarget(portrait, driver)
    motion = out - portrait
    np.testing.assert_allclose(motion[1], np.broadcast_to([6.0, -2.0], (68, 2)), atol=1e-3)
    np.testing.assert_allclose(motion[2], np.broadcast_to([20.0, 8.0], (68, 2)), atol=1e-3)


def test_translation_follows_the_portraits_roll(face):
    # The portrait's head is rolled 90 degrees: "driver moves right" becomes "portrait moves down".
    portrait = similarity(1.0, 90, 300, 0).apply(face)
    out = retarget(portrait, sequence([face, face + [5.0, 0.0]]))
    np.testing.assert_allclose(out[1] - portrait, np.broadcast_to([0.0, 5.0], (68, 2)), atol=1e-3)


def test_pure_jaw_motion_leaves_the_eyes(face):
    opened = face.copy()
    opened[list(JAW)] += [0.0, 6.0]
    opened[list(range(56, 60)) + [65, 66, 67]] += [0.0, 6.0]
    portrait = similarity(0.5, 0, 0, 0).apply(face)
    out = retarget(portrait, sequence([face, opened]))
    np.testing.assert_allclose(out[1, list(EYES)], portrait[list(EYES)], atol=1e-4)
    np.testing.assert_allclose(out[1, list(BROWS)], portrait[list(BROWS)], atol=1e-4)
    # scale adaptation: the jaw drops half as far on a face half the size
    np.testing.assert_allclose(out[1, 8] - portrait[8], [0.0, 3.0], atol=1e-3)


def test_expression_is_scaled_by_the_face_size_ratio(face):
    blink = face.copy()
    blink[[37, 38]] += [0.0, 2.0]  # upper lid comes down 2 px on the driver
    portrait = similarity(3.0, 0, 0, 0).apply(face)
    ratio = interocular_distance(portrait) / interocular_distance(face)
    out = retarget(portrait, sequence([face, blink]))
    np.testing.assert_allclose(out[1, [37, 38], 1] - portrait[[37, 38], 1], 2.0 * ratio, rtol=1e-3)


def test_head_rotation_turns_the_portrait_about_its_own_face(face):
    centre = face[[36, 45, 30]].mean(axis=0)
    turn = Similarity(1.0, np.radians(12), np.zeros(2))
    rolled = turn.apply(face - centre) + centre
    portrait = similarity(1.5, 0, 200, 100).apply(face)
    out = retarget(portrait, sequence([face, rolled]))
    got = fit_similarity(portrait, out[1])
    assert got.scale == pytest.approx(1.0, abs=1e-4)
    assert np.degrees(got.angle) == pytest.approx(12.0, abs=1e-3)
    # the portrait turns about its own face centre (the driver's centre mapped into the portrait)
    p_centre = similarity(1.5, 0, 200, 100).apply(centre)
    np.testing.assert_allclose(got.apply(p_centre), p_centre, atol=1e-2)


def test_head_scale_change_is_relative(face):
    centre = face[list(range(36, 48))].mean(axis=0)
    closer = (face - centre) * 1.2 + centre  # actor leans towards the camera
    portrait = similarity(0.4, 0, 10, 10).apply(face)
    out = retarget(portrait, sequence([face, closer]))
    assert fit_similarity(portrait, out[1]).scale == pytest.approx(1.2, abs=1e-4)


def test_absolute_mode_gives_the_drivers_shape_aligned_onto_the_portrait(face):
    other = face.copy()
    other[list(MOUTH)] *= [1.0, 1.03]  # a different person: a longer mouth region
    driver_frames = [other, other + [2.0, 0.0]]
    portrait = similarity(2.0, 0, 50, 0).apply(face)
    out = retarget(portrait, sequence(driver_frames), RetargetOptions(mode="absolute"))
    align = fit_similarity(other[[36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35]],
                           portrait[[36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35]])
    np.testing.assert_allclose(out[0], align.apply(other), atol=1e-3)
    np.testing.assert_allclose(out[1], align.apply(other + [2.0, 0.0]), atol=1e-3)
    # relative mode keeps the portrait's own mouth instead
    rel = retarget(portrait, sequence(driver_frames))
    np.testing.assert_allclose(rel[0], portrait, atol=1e-3)


def test_regions_pose_only_and_expression_only(face):
    moved = face.copy()
    moved[list(MOUTH)] += [0.0, 4.0]
    moved += [10.0, 0.0]  # the head moves right while the mouth opens
    portrait = face.copy()
    pose_only = retarget(portrait, sequence([face, moved]), RetargetOptions(regions=("pose",)))
    np.testing.assert_allclose(pose_only[1] - portrait, np.broadcast_to([10.0, 0.0], (68, 2)), atol=1e-3)
    expr_only = retarget(portrait, sequence([face, moved]), RetargetOptions(regions=("expression",)))
    np.testing.assert_allclose(expr_only[1, list(MOUTH)] - portrait[list(MOUTH)],
                               np.broadcast_to([0.0, 4.0], (20, 2)), atol=1e-3)
    np.testing.assert_allclose(expr_only[1, list(EYES)], portrait[list(EYES)], atol=1e-3)


def test_regions_eyes_only_ignore_the_mouth(face):
    acted = face.copy()
    acted[list(MOUTH)] += [0.0, 4.0]
    acted[[43, 44]] += [0.0, 2.0]
    out = retarget(face, sequence([face, acted]), RetargetOptions(regions=("eyes",)))
    np.testing.assert_allclose(out[1, list(MOUTH)], face[list(MOUTH)], atol=1e-3)
    np.testing.assert_allclose(out[1, [43, 44], 1] - face[[43, 44], 1], 2.0, atol=1e-3)


def test_expression_scale_multiplies_the_expression_only(face):
    acted = face.copy()
    acted[list(MOUTH)] += [0.0, 4.0]
    acted += [5.0, 5.0]
    out = retarget(face, sequence([face, acted]), RetargetOptions(expression_scale=0.5))
    np.testing.assert_allclose(out[1, list(MOUTH)] - face[list(MOUTH)],
                               np.broadcast_to([5.0, 7.0], (20, 2)), atol=1e-3)
    np.testing.assert_allclose(out[1, list(EYES)] - face[list(EYES)],
                               np.broadcast_to([5.0, 5.0], (12, 2)), atol=1e-3)


def test_neutral_frame_is_a_frame_number(face):
    acted = face.copy()
    acted[list(MOUTH)] += [0.0, 4.0]
    driver = sequence([acted, face, acted], first_frame=101)  # frames 101, 102, 103
    out = retarget(face, driver, RetargetOptions(neutral_frame=102))
    np.testing.assert_allclose(out[1], face, atol=1e-3)
    np.testing.assert_allclose(out[0, list(MOUTH), 1] - face[list(MOUTH), 1], 4.0, atol=1e-3)
    with pytest.raises(BadInput, match=r"neutral_frame: frame 7 is not in the driver.*101-103"):
        retarget(face, driver, RetargetOptions(neutral_frame=7))


def test_options_from_settings_reads_the_wire_keys():
    opts = RetargetOptions.from_settings({"mode": "absolute", "neutral_frame": 12, "expression_scale": 1.5,
                                          "regions": "pose, eyes,mouth", "engine": "warp"})
    assert opts == RetargetOptions("absolute", 12, 1.5, ("pose", "eyes", "mouth"))
    assert RetargetOptions.from_settings({}) == RetargetOptions()
    assert RetargetOptions.from_settings({"regions": ["jaw"]}).regions == ("jaw",)


@pytest.mark.parametrize("settings, key", [
    ({"mode": "sideways"}, "mode"),
    ({"expression_scale": -1}, "expression_scale"),
    ({"expression_scale": float("nan")}, "expression_scale"),
    ({"expression_scale": "big"}, "expression_scale"),
    ({"regions": ["pose", "ears"]}, "regions"),
    ({"regions": []}, "regions"),
    ({"regions": 3}, "regions"),
    ({"neutral_frame": 2.5}, "neutral_frame"),
])
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(BadInput, match=rf"^{key}: "):
        RetargetOptions.from_settings(settings)


def test_bad_portrait_points_are_refused(face):
    with pytest.raises(BadInput, match="portrait landmarks"):
        retarget(face[:60], sequence([face]))
