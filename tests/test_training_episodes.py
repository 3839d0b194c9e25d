"""Meta-learning episodes: K shots + a target per video, deterministic by (seed, step), split by rank."""
import numpy as np

from livingportrait_backend.data.episodes import EpisodeLoader, Prefetcher
from livingportrait_backend.data.synthetic import SyntheticTalkingHeads


def test_episodes_are_deterministic_and_well_formed():
    data = SyntheticTalkingHeads(12, 32, seed=0, frames_per_video=16)
    a = EpisodeLoader(data, k_shots=3, batch_size=4, seed=9).batch(5)
    b = EpisodeLoader(data, k_shots=3, batch_size=4, seed=9).batch(5)
    assert np.array_equal(a.shots, b.shots) and np.array_equal(a.video, b.video)
    assert a.shots.shape == (4, 3, 6, 32, 32)
    assert a.target_image.shape == a.target_raster.shape == (4, 3, 32, 32)
    assert a.shots.min() >= -1 and a.shots.max() <= 1
    assert not np.array_equal(a.shots, EpisodeLoader(data, 3, 4, seed=9).batch(6).shots)
    # The target is one of the video's frames, not one of the shots.
    for j in range(4):
        assert not any(np.array_equal(a.target_image[j], a.shots[j, k, :3]) for k in range(3))


def test_ranks_split_the_global_batch():
    data = SyntheticTalkingHeads(12, 32, seed=0, frames_per_video=16)
    whole = EpisodeLoader(data, 2, 4, seed=1).batch(3)
    parts = [EpisodeLoader(data, 2, 4, seed=1, rank=r, world_size=2).batch(3) for r in range(2)]
    assert np.array_equal(np.concatenate([p.video for p in parts]), whole.video)
    assert np.array_equal(np.concatenate([p.shots for p in parts]), whole.shots)


def test_prefetching_threads_change_no_batch():
    data = SyntheticTalkingHeads(12, 32, seed=0, frames_per_video=16)
    loader = EpisodeLoader(data, 2, 4, seed=3)
    prefetch = Prefetcher(EpisodeLoader(data, 2, 4, seed=3), workers=2)
    try:
        for step in (0, 1, 2, 5, 6):  # a jump, as after a resume
            a, b = loader.batch(step), prefetch.batch(step)
            assert np.array_equal(a.shots, b.shots) and np.array_equal(a.target_image, b.target_image)
    finally:
        prefetch.close()
