"""The synthetic talking heads: deterministic, varied, fast, with landmarks that match the pixels."""
import time

import numpy as np

from livingportrait_backend.data.synthetic import SyntheticTalkingHeads


def test_frames_are_a_pure_function_of_seed_video_and_index():
    a = SyntheticTalkingHeads(10, 64, seed=5)
    b = SyntheticTalkingHeads(10, 64, seed=5)
    img_b, pts_b = b.frame(7, 3)  # rendered in a different order on purpose
    b.frame(2, 9)
    img_a, pts_a = a.frame(7, 3)
    assert np.array_equal(img_a, img_b) and np.array_equal(pts_a, pts_b)
    assert img_a.shape == (64, 64, 3) and img_a.dtype == np.uint8
    assert pts_a.shape == (68, 2) and pts_a.dtype == np.float32
    other_seed, _ = SyntheticTalkingHeads(10, 64, seed=6).frame(7, 3)
    assert not np.array_equal(img_a, other_seed)


def test_identities_differ_and_frames_of_one_video_move():
    d = SyntheticTalkingHeads(20, 64, seed=0)
    firsts = np.stack([d.frame(v, 0)[0] for v in range(20)]).astype(np.float32)
    pairwise = [np.abs(firsts[i] - firsts[j]).mean() for i in range(20) for j in range(i + 1, 20)]
    assert min(pairwise) > 5  # every pair of identities differs visibly
    pts = np.stack([d.landmarks(3, t) for t in range(0, 64, 4)])
    assert pts.std(axis=0).mean() > 0.5  # pose and expression change along the video
    assert (pts >= 0).all() and (pts < 64).all()


def test_the_face_is_drawn_where_its_landmarks_are():
    d = SyntheticTalkingHeads(6, 128, seed=1)
    for v in range(6):
        img, pts = d.frame(v, 10)
        # Cheeks: halfway between the nose bridge and the jaw line, well inside the face outline.
        cheeks = [(pts[28] + pts[j]) / 2 for j in (2, 3, 4, 12, 13, 14)]
        colours = np.array([img[int(round(y)), int(round(x))] for x, y in cheeks], np.float32)
        assert np.abs(np.median(colours, axis=0) - d.identity(v).skin).max() < 25


def test_hundreds_of_identities_in_seconds():
    d = SyntheticTalkingHeads(300, 64, seed=2)
    start = time.perf_counter()
    for v in range(300):
        d.frame(v, v % 64)
    assert time.perf_counter() - start < 10.0  # ~3 ms a frame measured; generous on busy cores
