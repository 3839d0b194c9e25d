"""A folder of prepared videos: one ``<name>.npz`` per video, as ``livingportrait prepare`` writes it.

Each file holds ``frames`` uint8 (T, S, S, 3) RGB crops, ``landmarks`` float32 (T, 68, 2) pixels in
the crop (top-left origin), ``source_frames`` int32 (T,) frame numbers in the source video and
``crop`` float32 (T, 2, 3) the affine that maps source pixels to crop pixels.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from livingportrait_wire.errors import BadInput

SUFFIX = ".npz"


class PreparedVideos:
    """The dataset interface the episode loader uses (like SyntheticTalkingHeads):
    ``len``, ``resolution``, ``frame_count(video)``, ``frame(video, index)`` -> (uint8 RGB, landmarks)."""

    def __init__(self, folder: str | os.PathLike, cache_videos: int = 16):
        self.folder = os.fspath(folder)
        if not os.path.isdir(self.folder):
            raise BadInput(f"{self.folder}: no such data folder; create one with `livingportrait prepare VIDEOS --out DATA`")
        self.files = sorted(f for f in os.listdir(self.folder) if f.endswith(SUFFIX) and not f.startswith("."))
        if not self.files:
            raise BadInput(f"{self.folder}: holds no prepared videos (*.npz); run `livingportrait prepare` first")
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_videos = cache_videos
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()  # the episode prefetcher reads from several threads
        frames, _ = self._load(0)
        self.resolution = int(frames.shape[1])

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, video: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if video in self._cache:
                self._cache.move_to_end(video)
                return self._cache[video]
        path = os.path.join(self.folder, self.files[video])
        try:
            with np.load(path, allow_pickle=False) as z:
                frames, landmarks = z["frames"], z["landmarks"].astype(np.float32)
        except (OSError, KeyError, ValueError) as err:
            raise BadInput(f"{path}: not a prepared video ({err}); delete it and re-run prepare") from None
        if frames.ndim != 4 or frames.dtype != np.uint8 or landmarks.shape != (frames.shape[0], 68, 2):
            raise BadInput(f"{path}: frames/landmarks have the wrong shapes; delete it and re-run prepare")
        size = getattr(self, "resolution", frames.shape[1])
        if frames.shape[1:] != (size, size, 3):
            raise BadInput(f"{path}: frames are {frames.shape[2]}x{frames.shape[1]} but this data set's are "
                           f"{size}x{size}; re-run `livingportrait prepare --size {size}` for it")
        with self._lock:
            self._cache[video] = (frames, landmarks)
            if len(self._cache) > self._cache_videos:
                self._cache.popitem(last=False)
        return frames, landmarks

    def frame_count(self, video: int) -> int:
        if video not in self._counts:
            self._counts[video] = int(self._load(video)[0].shape[0])
        return self._counts[video]

    def frame(self, video: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        frames, landmarks = self._load(video)
        return frames[index], landmarks[index]
