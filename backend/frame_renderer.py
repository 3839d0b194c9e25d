"""One render job, the same in the server and in farm mode: portraits + performance -> EXR bytes.

``FrameRenderer.prepare()`` runs once (portrait landmarks, retargeting of the whole performance, engine
set-up); ``FrameRenderer.encode(frame)`` makes one frame's EXR file as bytes. Retargeting always sees the
whole performance, so a farm chunk (``frame_range``) renders exactly the frames a full run would.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from livingportrait_wire.errors import BadInput, Cancelled
from livingportrait_wire.landmarks import LandmarkSequence
from livingportrait_wire.naming import check_name, frame_filename
from livingportrait_wire.protocol import PROTOCOL_VERSION

from . import __version__
from .engines import create_engine
from .exr import ExrFrameEncoder
from .images import Portrait

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class RenderSpec:
    """What to render. ``portrait_landmarks``: float32 (68, 2) pixels of portraits[0], or None to detect."""

    portraits: list[Portrait]
    driver: LandmarkSequence
    engine: str = "warp"
    name: str = "portrait"
    settings: dict = field(default_factory=dict)
    frame_range: tuple[int, int] | None = None
    portrait_landmarks: np.ndarray | None = None
    detector: str = "mediapipe"


class FrameRenderer:
    def __init__(self, spec: RenderSpec, on_progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None):
        if not spec.portraits:
            raise BadInput("a render job needs at least one portrait image")
        check_name(spec.name)
        if not isinstance(spec.settings, dict):
            raise BadInput("settings must be a mapping of names to values")
        self.spec = spec
        self.cancel = cancel or threading.Event()
        self._report = on_progress
        first, last = spec.frame_range or (int(spec.driver.frames[0]), int(spec.driver.frames[-1]))
        selected = spec.driver.frames[(spec.driver.frames >= first) & (spec.driver.frames <= last)]
        if selected.size == 0:
            raise BadInput(f"frame range {first}-{last} holds none of the performance's frames "
                           f"({int(spec.driver.frames[0])}-{int(spec.driver.frames[-1])})")
        self.frames: list[int] = [int(f) for f in selected]
        self._targets: dict[int, np.ndarray] = {}
        self._encoder: ExrFrameEncoder | None = None

    def on_progress(self, stage: str, done: int, total: int) -> None:
        """Report progress. Every report is also a cancellation point, so long engine work
        (fine-tuning) stops promptly without knowing about jobs. A method, not a stored closure:
        a closure over ``self`` kept on ``self`` would hold each finished job's buffers until a full
        garbage collection."""
        self._check_cancel()
        if self._report is not None:
            self._report(stage, done, total)

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
            points = np.asarray(spec.portrait_landmarks, np.float32)
            if points.shape != (68, 2) or not np.all(np.isfinite(points)):
                raise BadInput(f"portrait landmarks must be 68 finite (x, y) points, got shape {list(points.shape)}")
        else:
            points = detect_portrait_landmarks(portrait.srgb8, portrait.source, spec.detector).points
        self.portrait_points = points
        self._check_cancel()
        driver = spec.driver
        if spec.settings.get("smoothing") is not None:
            # Hand-made drivers (clip tracks, a keyed rig) are cleaned up here; the whole performance
            # is smoothed, as it is retargeted, so a farm chunk matches a full run.
            from .landmarks.smoothing import SmoothingOptions, smooth_sequence

            driver = smooth_sequence(driver, SmoothingOptions.parse(str(spec.settings["smoothing"])))
        targets = retarget(points, driver, options)
        self._targets = {int(f): targets[i] for i, f in enumerate(spec.driver.frames) if int(f) in set(self.frames)}
        self.on_progress("prepare", 0, 1)
        engine = create_engine(spec.engine)
        engine.prepare(spec.portraits, points, spec.settings, self.on_progress)
        self.engine = engine
        self._encoder = ExrFrameEncoder(portrait.linear, {
            "livingportrait.engine": spec.engine,
            "livingportrait.portrait": portrait.digest,
            "livingportrait.protocol": PROTOCOL_VERSION,
            "livingportrait.version": __version__,
            "livingportrait.name": spec.name,
        })
        self.on_progress("prepare", 1, 1)

    def targets(self, frame: int) -> np.ndarray:
        """float32 (68, 2): the landmarks ``frame`` shows, in portrait pixels."""
        return self._targets[frame]

    def encode(self, frame: int) -> bytes:
        """The complete EXR file of ``frame`` as bytes (deterministic)."""
        return self.encode_many([frame])[0]

    def batches(self, frames: list[int]) -> list[list[int]]:
        """``frames`` in groups of the engine's preferred batch size (its ``batch``; 1 if it has none)."""
        size = max(int(getattr(self.engine, "batch", 1) or 1), 1)
        return [frames[i:i + size] for i in range(0, len(frames), size)]

    def encode_many(self, frames: list[int]) -> list[bytes]:
        """EXR bytes for several frames; engines with ``render_batch`` render them in one batch."""
        if self._encoder is None:
            raise RuntimeError("prepare() must run before encode()")
        self._check_cancel()
        targets = [self._targets[f] for f in frames]
        batch = getattr(self.engine, "render_batch", None)
        patches = batch(targets) if batch is not None and len(frames) > 1 else [self.engine.render(t) for t in targets]
        return [self._encoder.encode(p, {"livingportrait.frame": int(f)}) for p, f in zip(patches, frames)]

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("the job was cancelled")
