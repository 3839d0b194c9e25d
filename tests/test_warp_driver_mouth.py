"""Footage-driven mouths: a performance tracked from an actor's footage carries the actor's mouth
interior per frame, and the warp engine lays it into the portrait's opened mouth, aligned with the lips
and in the portrait's light."""
import cv2
import numpy as np
import pytest

import warp_subjects as ws
from livingportrait_backend.colorspace import linear_to_srgb8
from livingportrait_backend.detectors import get_detector
from livingportrait_backend.engines import create_engine
from livingportrait_backend.engines.warp_mouth import lip_colour
from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
from livingportrait_backend.images import decode_portrait
from livingportrait_backend.landmarks.tracking import track_frames
from livingportrait_wire.landmarks import load_sequence, save_sequence
from livingportrait_wire.render_settings import RenderSettings, WarpOptions

GREEN, BLUE = (40, 170, 60), (50, 70, 210)


@pytest.fixture(scope="module")
def actor_performance(tmp_path_factory):
    """An actor (the astronaut photo, her jaw opened by the engine) whose mouth interior is a known
    pattern: the left half of the opening green, the right half blue. Tracked like footage."""
    actor = decode_portrait(ws.png_bytes(ws.astronaut()), "actor.png")
    points = get_detector("mediapipe").detect(actor.srgb8)[0].points
    engine = create_engine("warp")
    engine.prepare([actor], points)
    frames = []
    for i, amount in enumerate((0.0, 0.5, 1.0, 1.0)):
        t = ws.open_mouth(points, amount)
        img = linear_to_srgb8(ws.compose(actor.linear, engine.render(t.astype(np.float32)))).copy()
        inner = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
        mid = (t[60, 0] + t[64, 0]) / 2
        cols = np.arange(img.shape[1])[None, :]
        img[(inner > 0) & (cols < mid)] = GREEN
        img[(inner > 0) & (cols >= mid)] = BLUE
        frames.append((i + 1, img))
    seq = track_frames(frames, "mediapipe")
    path = tmp_path_factory.mktemp("perf") / "actor.npz"
    save_sequence(seq, path)  # the crops travel in the performance file
    return load_sequence(path)


def render_last(perf, settings=RenderSettings()):
    portrait = decode_portrait(ws.png_bytes(ws.portraits()["hopper_glasses"]), "hopper.png")
    r = FrameRenderer(RenderSpec([portrait], perf, settings=settings))
    r.prepare()
    f = int(perf.frames[-1])
    return portrait, r.targets[f], ws.compose(portrait.linear, r._render_group([f])[0])


def halves(img, t):
    """Mean colours of the opening's left and right halves, away from the lips and the middle."""
    inner = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inner, [np.round(t[60:68]).astype(np.int32)], 1)
    inner = cv2.erode(inner, np.ones((5, 5), np.uint8)) > 0
    mid, quarter = (t[60, 0] + t[64, 0]) / 2, (t[64, 0] - t[60, 0]) / 4
    cols = np.arange(img.shape[1])[None, :]
    return (img[inner & (cols < mid - quarter / 2)].mean(0),
            img[inner & (cols >= mid + quarter / 2)].mean(0))


def test_the_teeth_come_from_the_drivers_frame_aligned_and_colour_matched(actor_performance):
    assert actor_performance.extras["mouth"].shape == (4, 32, 64, 3)
    portrait, t, out = render_last(actor_performance)
    left, right = halves(out, t)
    # Aligned: the actor's left half lies in the portrait's left half, the right in the right.
    assert left[1] > 1.5 * left[2] and right[2] > 1.5 * right[1], (left, right)
    # Colour-matched in linear light: the pattern arrives scaled by the portrait's lip colour over the
    # actor's (each measured on its own image), in each half's strong channel.
    from livingportrait_backend.colorspace import srgb_to_linear
    gain = (lip_colour(portrait.linear, get_detector("mediapipe").detect(portrait.srgb8)[0].points)
            / actor_performance.extras["mouth_lips"][-1])
    want_left = srgb_to_linear(np.asarray(GREEN) / 255.0) * gain
    want_right = srgb_to_linear(np.asarray(BLUE) / 255.0) * gain
    assert abs(left[1] / want_left[1] - 1) < 0.3 and abs(right[2] / want_right[2] - 1) < 0.3, \
        (left, want_left, right, want_right)
    assert np.abs(gain - 1).max() > 0.15, "the portraits' lips differ: a real match was made"


def test_without_footage_mouths_the_interior_is_synthesised(actor_performance):
    settings = RenderSettings(warp=WarpOptions(mouth_source="synthesis"))
    _, t, out = render_last(actor_performance, settings)
    left, right = halves(out, t)
    assert not (left[1] > 1.5 * left[2]) and not (right[2] > 1.5 * right[1])


def test_the_actors_mouths_and_gaze_travel_with_a_render_job_on_the_wire(actor_performance):
    from livingportrait_backend.server.job_requests import driver_from_message
    from livingportrait_wire.codec import decode
    from livingportrait_wire.jobs import RenderJob
    from livingportrait_wire.protocol import Limits

    job = RenderJob([ws.png_bytes(ws.astronaut())], actor_performance, "/tmp/unused")
    frames = job.message("job-1")
    driver = driver_from_message(decode(frames), Limits())
    driver.validate("the job's performance")
    for key in ("gaze", "mouth", "mouth_lips"):
        np.testing.assert_array_equal(driver.extras[key], actor_performance.extras[key])
