"""Temporal clean-up on real tracks: driver videos of the astronaut (known motion plus sensor noise)
tracked by the offline detector, then smoothed. Jitter goes down, the head does not lag or wobble in
size, blinks survive, frame gaps are respected, and the raw track stays recoverable."""
import numpy as np
import pytest
from landmark_videos import jitter, lag_frames, make_driver_video

from livingportrait_backend.landmarks.retarget import head_poses
from livingportrait_backend.landmarks.smoothing import SmoothingOptions, smooth_points, smooth_sequence
from livingportrait_backend.landmarks.tracking import TrackOptions, track_video
from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import LandmarkSequence
from livingportrait_wire.layout import interocular_distance

OFF = TrackOptions(smoothing=SmoothingOptions(0.0))


@pytest.fixture(scope="module")
def still_track(tmp_path_factory):
    video = make_driver_video(tmp_path_factory.mktemp("still") / "still.avi", count=64, kind="still")
    return track_video(video.path, OFF)


@pytest.fixture(scope="module")
def moving_track(tmp_path_factory):
    video = make_driver_video(tmp_path_factory.mktemp("moving") / "moving.avi", count=64, kind="moving")
    return track_video(video.path, OFF)


@pytest.mark.parametrize("causal", [False, True])
def test_smoothing_cuts_jitter_on_a_still_head_at_least_four_times(still_track, causal):
    raw = still_track.landmarks
    smoothed = smooth_points(raw, still_track.frames, SmoothingOptions(1.0, causal))
    assert jitter(raw) > 0.1  # the noisy video really does make the detector jitter
    assert jitter(smoothed) * 4 <= jitter(raw)


def test_smoothing_keeps_the_still_head_where_it_is(still_track):
    raw = still_track.landmarks
    smoothed = smooth_points(raw, still_track.frames)
    drift = np.linalg.norm(smoothed.mean(axis=0) - raw.mean(axis=0), axis=1).max()
    assert drift < 0.02 * interocular_distance(raw[0])


def test_head_scale_does_not_wobble(still_track):
    raw = still_track.landmarks
    smoothed = smooth_points(raw, still_track.frames)
    raw_scale = np.std([p.scale for p in head_poses(raw, raw[0])])
    smooth_scale = np.std([p.scale for p in head_poses(smoothed, smoothed[0])])
    assert smooth_scale * 3 <= raw_scale


@pytest.mark.parametrize("causal, most", [(False, 0.5), (True, 1.0)])
def test_a_moving_head_is_followed_without_lag(moving_track, causal, most):
    raw = moving_track.landmarks
    smoothed = smooth_points(raw, moving_track.frames, SmoothingOptions(1.0, causal))
    assert abs(lag_frames(raw, smoothed)) <= most
    # and it stays on the face: within a few percent of the eye distance of the raw track
    error = np.linalg.norm(smoothed - raw, axis=2).mean()
    assert error < (0.02 if not causal else 0.04) * interocular_distance(raw[0])


def test_a_blink_survives_smoothing(still_track):
    raw = still_track.landmarks.astype(np.float64)
    depth = 0.12 * interocular_distance(raw[0])
    lids = [37, 38, 43, 44]
    closing = np.zeros(len(raw))
    closing[30:37] = [0.5, 1, 1, 1, 0.66, 0.33, 0]  # a quick blink: two frames down, three up
    acted = raw.copy()
    acted[:, lids, 1] += depth * closing[:, None]
    smoothed = smooth_points(acted, still_track.frames)
    dip = smoothed[:, lids, 1].mean(axis=1) - smoothed[:20, lids, 1].mean()
    assert dip.max() > 0.85 * depth


def test_frame_gaps_are_respected():
    base = np.tile(np.linspace(0, 100, 136).reshape(68, 2), (20, 1, 1))
    step = base.copy()
    step[10:] += [2.0, 0.0]  # the head is a little further right after the cut
    causal = SmoothingOptions(1.0, causal=True)
    contiguous = smooth_points(step, np.arange(20), causal)
    with_gap = smooth_points(step, np.r_[np.arange(10), np.arange(500, 510)], causal)
    # after 490 frames without samples the filter has forgotten the old position; one frame later it has not
    assert np.abs(with_gap[10] - step[10]).max() < 0.1
    assert np.abs(contiguous[10] - step[10]).max() > 0.5


def test_off_leaves_the_track_and_the_raw_is_kept(moving_track):
    assert np.array_equal(smooth_points(moving_track.landmarks, moving_track.frames, SmoothingOptions(0.0)),
                          moving_track.landmarks)
    smoothed = smooth_sequence(moving_track)
    np.testing.assert_array_equal(smoothed.extras["raw_landmarks"], moving_track.landmarks)
    assert not np.array_equal(smoothed.landmarks, moving_track.landmarks)
    assert isinstance(smoothed, LandmarkSequence) and np.array_equal(smoothed.frames, moving_track.frames)


def test_strength_parsing():
    assert SmoothingOptions.parse("off").off and SmoothingOptions.parse("0").off
    assert SmoothingOptions.parse("2.5").strength == 2.5
    with pytest.raises(BadInput, match="--smoothing: 'lots'"):
        SmoothingOptions.parse("lots")
    with pytest.raises(BadInput, match="out of range"):
        SmoothingOptions.parse("-1")
