"""One render job, the same in the server and in farm mode: portraits + performance -> EXR bytes.

``FrameRenderer.prepare()`` runs once (portrait landmarks, retargeting of the whole performance, engine
set-up); ``FrameRenderer.encoded(frames)`` makes each frame's EXR file as bytes. Retargeting always sees the
whole performance, so a farm chunk (``frame_range``) renders exactly the frames a full run would.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from livingportrait_wire.errors import BadInput, Cancelled
from livingportrait_wire.landmarks import LandmarkSequence, check_points
from livingportrait_wire.naming import check_name, frame_filename
from livingportrait_wire.protocol import PROTOCOL_VERSION
from livingportrait_wire.render_settings import RenderSettings

from . import __version__
from .engines import check_engine, create_engine
from .exr import ExrFrameEncoder
from .images import Portrait

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class RenderSpec:
    """What to render. ``settings``: a RenderSettings (engine, detector, retargeting, engine options);
    a plain mapping is read with ``RenderSettings.from_dict`` (BadInput naming every bad field).
    ``portrait_landmarks``: float32 (68, 2) pixels of portraits[0], or None to detect.
    ``frames``: the frame numbers asked for (a farm task's list), or None for ``frame_range`` (inclusive
    first, last) or, when that is None too, every frame of the performance."""

    portraits: list[Portrait]
    driver: LandmarkSequence
    name: str = "portrait"
    settings: RenderSettings = field(default_factory=RenderSettings)
    frame_range: tuple[int, int] | None = None
    portrait_landmarks: np.ndarray | None = None
    frames: list[int] | None = None

    def __post_init__(self):
        if not isinstance(self.settings, RenderSettings):
            self.settings = RenderSettings.from_dict(self.settings)

    @property
    def engine(self) -> str:
        return self.settings.engine

    @property
    def detector(self) -> str:
        return self.settings.detector


def job_digest(spec: RenderSpec) -> str:
    """16 hex digits naming everything that decides a frame's pixels: portraits, performance,
    engine, settings, portrait landmarks. Farm resume skips a frame only when its file carries the
    same digest, so re-rendering with changed settings redoes the frames."""
    import hashlib
    import json

    h = hashlib.sha256()
    for portrait in spec.portraits:
        h.update(portrait.digest.encode())
    h.update(np.ascontiguousarray(spec.driver.landmarks, np.float32).tobytes())
    h.update(np.ascontiguousarray(spec.driver.frames, np.int32).tobytes())
    if spec.portrait_landmarks is not None:
        h.update(np.ascontiguousarray(spec.portrait_landmarks, np.float32).tobytes())
    for key in ("gaze", "mouth", "mouth_lips"):  # footage a performance carries decides pixels too
        if key in spec.driver.extras:
            h.update(key.encode() + np.ascontiguousarray(spec.driver.extras[key]).tobytes())
    # Effective settings: an explicit default and an absent key make the same pictures.
    h.update(json.dumps(spec.settings.look(), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def select_frames(driver: LandmarkSequence, frames) -> tuple[list[int], list[int]]:
    """(frames to render, frames asked for that the performance does not have) for the frame numbers
    ``frames`` (None: all of them). BadInput when the performance has none of the frames asked for."""
    from livingportrait_wire.naming import format_frames

    have = [int(f) for f in driver.frames]
    if frames is None:
        return have, []
    wanted = set(int(f) for f in frames)
    selected = [f for f in have if f in wanted]
    missing = sorted(wanted.difference(have))
    if not selected:
        raise BadInput(f"frames {format_frames(missing)}: the performance has none of them (it has frames "
                       f"{format_frames(have)}); ask for frames it has")
    return selected, missing


class FrameRenderer:
    def __init__(self, spec: RenderSpec, on_progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, cache_dir: str | None = None):
        """``cache_dir``: the job's prepare cache (``prepare_cache.job_cache_dir``), or None for none."""
        if not spec.portraits:
            raise BadInput("a render job needs at least one portrait image")
        check_name(spec.name)
        self.spec = spec
        self.cache_dir = cache_dir
        self.cache_hits: list[str] = []  # what prepare() took from the cache
        self.cancel = cancel or threading.Event()
        self._report = on_progress
        if spec.frames is None and spec.frame_range:
            self.frames, self.missing_frames = [int(f) for f in spec.driver.select(*spec.frame_range).frames], []
        else:
            self.frames, self.missing_frames = select_frames(spec.driver, spec.frames)
        # The settings were checked when the spec was made; what this backend has is checked here,
        # before any expensive work (detection, fine-tuning).
        check_engine(spec.engine, spec.settings)
        self.job_digest = job_digest(spec)
        # frame -> float32 (68, 2): the landmarks it shows, in portrait pixels (filled by prepare()).
        self.targets: dict[int, np.ndarray] = {}
        self._encoder: ExrFrameEncoder | None = None

    def on_progress(self, stage: str, done: int, total: int) -> None:
        """Report progress. Every report is also a cancellation point, so long engine work
        (fine-tuning) stops promptly without knowing about jobs. A method, not a stored closure:
        a closure over ``self`` kept on ``self`` would hold each finished job's buffers until a full
        garbage collection."""
        self._check_cancel()
        if self._report is not None:
            self._report(stage, done, total)

    @property
    def prepared(self) -> bool:
        """prepare() has completed (a cancelled or failed one leaves this False)."""
        return self._encoder is not None

    def filename(self, frame: int) -> str:
        return frame_filename(self.spec.name, frame)

    def prepare(self) -> None:
        """Portrait landmarks, retargeting and engine set-up. BadInput on unusable input."""
        from .detectors import detect_portrait_landmarks
        from .landmarks.retarget import RetargetOptions, retarget

        spec = self.spec
        options = RetargetOptions.from_settings(spec.settings)
        portrait = spec.portraits[0]
        self.on_progress("landmarks", 0, 1)
        if spec.portrait_landmarks is not None:
            points = check_points(spec.portrait_landmarks)
        else:
            points = self._cached("portrait landmarks", "landmarks", (portrait.digest, spec.detector),
                                  lambda: {"points": detect_portrait_landmarks(portrait.srgb8, portrait.source,
                                                                               spec.detector).points})["points"]
        self.portrait_points = points
        self._check_cancel()
        driver = spec.driver
        if spec.settings.smoothing is not None:
            # Hand-made drivers (clip tracks, a keyed rig) are cleaned up here; the whole performance
            # is smoothed, as it is retargeted, so a farm chunk matches a full run.
            from .landmarks.smoothing import SmoothingOptions, smooth_sequence

            driver = smooth_sequence(driver, SmoothingOptions(strength=spec.settings.smoothing))
        targets = retarget(points, driver, options)
        wanted = set(self.frames)
        self.targets = {int(f): targets[i] for i, f in enumerate(spec.driver.frames) if int(f) in wanted}
        # Gaze (when the performance carries it): per eye, the iris's move from the neutral frame in
        # eye widths; an engine that moves irises (``uses_gaze``) takes it with each frame.
        self.gaze = {}
        if spec.driver.gaze is not None:
            from .landmarks.retarget import gaze_offsets

            offsets = gaze_offsets(spec.driver, options.neutral_frame)
            self.gaze = {int(f): offsets[i] for i, f in enumerate(spec.driver.frames) if int(f) in wanted}
        # The actor's mouth interior per frame, when the performance was tracked from footage.
        self.mouths = {}
        crops, lips = spec.driver.extras.get("mouth"), spec.driver.extras.get("mouth_lips")
        if crops is not None and lips is not None:
            self.mouths = {int(f): (crops[i], lips[i]) for i, f in enumerate(spec.driver.frames) if int(f) in wanted}
        self.on_progress("prepare", 0, 1)
        engine = create_engine(spec.engine, spec.settings)
        # Engines that keep preparation on disk (``cache_dir``; warp's person layers, few-shot's
        # personalised model) keep it in the job's cache and say so with ``cache_hit``.
        engine.cache_dir = self.cache_dir
        engine.prepare(spec.portraits, points, spec.settings, self.on_progress)
        if getattr(engine, "cache_hit", False):
            self.cache_hits.append(f"{spec.engine} engine preparation")
        self.engine = engine
        self._encoder = ExrFrameEncoder(portrait.linear, level=spec.settings.zip_level, attributes={
            "livingportrait.engine": spec.engine,
            "livingportrait.portrait": portrait.digest,
            "livingportrait.protocol": PROTOCOL_VERSION,
            "livingportrait.version": __version__,
            "livingportrait.name": spec.name,
            "livingportrait.job": self.job_digest,
        })
        self.on_progress("prepare", 1, 1)

    def _cached(self, what: str, kind: str, key_parts: tuple, make) -> dict:
        """``make()``'s arrays, from the job's prepare cache when it holds them (noted in cache_hits)."""
        if self.cache_dir is None:
            return make()
        from . import prepare_cache

        key = prepare_cache.entry_key(*key_parts)
        arrays = prepare_cache.load_arrays(self.cache_dir, kind, key)
        if arrays is not None:
            self.cache_hits.append(what)
            return arrays
        arrays = make()
        prepare_cache.save_arrays(self.cache_dir, kind, key, arrays)
        return arrays

    def batches(self, frames: list[int]) -> list[list[int]]:
        """``frames`` in groups of the engine's preferred batch size (its ``batch``; 1 if it has none)."""
        size = max(int(getattr(self.engine, "batch", 1) or 1), 1)
        return [frames[i:i + size] for i in range(0, len(frames), size)]

    def encoded(self, frames: list[int]) -> Iterator[tuple[int, bytes]]:
        """(frame, EXR bytes) for ``frames`` in order. The engine renders the next batch on a worker
        thread while this one is compressed and handed on (written, sent): synthesis, compression and
        I/O overlap instead of taking turns. Engines with ``render_batch`` render whole batches."""
        if self._encoder is None:
            raise RuntimeError("prepare() must run before encoded()")
        groups = self.batches(list(frames))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-ahead") as ahead:
            pending = ahead.submit(self._render_group, groups[0]) if groups else None
            for i, group in enumerate(groups):
                patches = pending.result()
                self._check_cancel()
                pending = ahead.submit(self._render_group, groups[i + 1]) if i + 1 < len(groups) else None
                for frame, patch in zip(group, patches):
                    yield frame, self._encoder.encode(patch, {"livingportrait.frame": int(frame)})

    def _render_group(self, frames: list[int]) -> list:
        self._check_cancel()
        targets = [self.targets[f] for f in frames]
        batch = getattr(self.engine, "render_batch", None)
        if batch is not None and len(frames) > 1:
            return batch(targets)
        if (self.gaze or self.mouths) and getattr(self.engine, "uses_gaze", False):
            return [self.engine.render(t, gaze=self.gaze.get(f), mouth=self.mouths.get(f))
                    for f, t in zip(frames, targets)]
        return [self.engine.render(t) for t in targets]

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("the job was cancelled")
