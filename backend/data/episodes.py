"""Meta-learning episodes: for each of a batch of videos, K shots and one target frame.

Batches are a pure function of (seed, step): a resumed run or another process sees exactly the
same episodes, and each of ``world_size`` processes takes its own slice of the global batch.
Images and rasters are float32 in [-1, 1], channels first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livingportrait_backend.model_input import raster_for, shot_input, to_network
from livingportrait_wire.errors import BadInput


@dataclass
class Episodes:
    """One process's share of a batch: B episodes of K shots.

    shots (B, K, 6, S, S) frame ⊕ raster; target_image, target_raster (B, 3, S, S); video (B,) int64.
    """

    shots: np.ndarray
    target_image: np.ndarray
    target_raster: np.ndarray
    video: np.ndarray


class EpisodeLoader:
    """Draws episodes from a dataset with ``len``, ``resolution``, ``frame_count``, ``frame``."""

    def __init__(self, dataset, k_shots: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise BadInput(f"--batch-size {batch_size} must divide evenly among the {world_size} training "
                           "processes; choose a multiple of the process count")
        self.dataset = dataset
        self.k_shots = k_shots
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def batch(self, step: int) -> Episodes:
        rng = np.random.default_rng([self.seed, step])
        n = len(self.dataset)
        videos = rng.choice(n, self.batch_size, replace=self.batch_size > n)
        picks = []
        for v in videos:  # draw every video's frames so each rank's slice matches the global batch
            count = self.dataset.frame_count(int(v))
            picks.append(rng.choice(count, self.k_shots + 1, replace=self.k_shots + 1 > count))
        share = self.batch_size // self.world_size
        lo = self.rank * share
        s = self.dataset.resolution
        shots = np.empty((share, self.k_shots, 6, s, s), np.float32)
        target_image = np.empty((share, 3, s, s), np.float32)
        target_raster = np.empty((share, 3, s, s), np.float32)
        for j, (v, frames) in enumerate(zip(videos[lo:lo + share], picks[lo:lo + share])):
            for k, f in enumerate(frames):
                image, points = self.dataset.frame(int(v), int(f))
                if k < self.k_shots:
                    shots[j, k] = shot_input(image, points, s)
                else:
                    target_image[j] = to_network(image)
                    target_raster[j] = raster_for(points, s)
        return Episodes(shots, target_image, target_raster, videos[lo:lo + share].astype(np.int64))


class Prefetcher:
    """Builds ``loader.batch(step)`` for the next steps on worker threads while the caller trains.

    Frame decoding, rendering and raster drawing (numpy, zlib, OpenCV) release the GIL, so threads
    overlap them with GPU work. Batches are a pure function of the step, so prefetching changes no
    result. ``workers`` = 0 builds each batch on the caller's thread (the right choice on a busy CPU).
    """

    def __init__(self, loader: EpisodeLoader, workers: int):
        self.loader = loader
        self.workers = workers
        self._pool = None
        self._pending: dict[int, object] = {}
        if workers > 0:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="episodes")

    def batch(self, step: int) -> Episodes:
        if self._pool is None:
            return self.loader.batch(step)
        for ahead in range(step, step + self.workers + 1):
            if ahead not in self._pending:
                self._pending[ahead] = self._pool.submit(self.loader.batch, ahead)
        for old in [s for s in self._pending if s < step]:
            self._pending.pop(old).cancel()
        return self._pending.pop(step).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
