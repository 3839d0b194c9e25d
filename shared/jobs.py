"""What a client asks the backend for: a render job or a detect job, each able to encode its SUBMIT.

``RenderJob`` carries encoded portrait files, the performance and where the frames go; ``DetectJob``
carries footage to track. ``message(job_id)`` -> the multipart SUBMIT frames (protocol.py's schema).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .codec import array_buffer, bytes_buffer, encode
from .errors import BadInput
from .landmarks import LandmarkSequence
from .naming import check_name
from .protocol import FOOTAGE_PART_BYTES, JOB_DETECT, JOB_RENDER, PART, SUBMIT
from .render_settings import RenderSettings


@dataclass
class RenderJob:
    """A render request. ``portraits``: encoded image file bytes (1..32 shots, the first is animated).
    ``settings``: a RenderSettings (whose ``engine`` is the job's), or a plain dict as older callers
    built it (beside ``engine``). ``portrait_landmarks``: optional float32 (68, 2) pixels of the first
    portrait (skips detection)."""

    portraits: list[bytes]
    driver: LandmarkSequence
    out_dir: str
    name: str = "portrait"
    engine: str = "warp"
    settings: RenderSettings | dict = field(default_factory=dict)
    frame_range: tuple[int, int] | None = None
    portrait_landmarks: np.ndarray | None = None
    portrait_names: list[str] | None = None
    window: int = 4

    def __post_init__(self):
        if isinstance(self.settings, RenderSettings):
            if self.engine not in ("warp", self.settings.engine):  # "warp": the field's default
                raise ValueError(f"engine {self.engine!r} given beside settings for {self.settings.engine!r}")
            self.engine = self.settings.engine

    def message(self, job_id: str) -> list[bytes]:
        check_name(self.name)
        buffers = [bytes_buffer("portrait", data, "image") for data in self.portraits]
        buffers += [array_buffer("landmarks", self.driver.landmarks),
                    array_buffer("frames", self.driver.frames)]
        if self.driver.confidence is not None:
            buffers.append(array_buffer("confidence", self.driver.confidence))
        for key in ("gaze", "mouth", "mouth_lips"):  # what footage a performance carries (optional)
            if key in self.driver.extras:
                buffers.append(array_buffer(key, np.ascontiguousarray(self.driver.extras[key])))
        if self.portrait_landmarks is not None:
            buffers.append(array_buffer("portrait_landmarks", np.asarray(self.portrait_landmarks, np.float32)))
        settings = self.settings.to_dict() if isinstance(self.settings, RenderSettings) else self.settings
        fields = {"kind": JOB_RENDER, "engine": self.engine, "name": self.name, "settings": settings,
                  "image_size": list(self.driver.image_size), "window": self.window}
        if self.frame_range is not None:
            fields["frame_range"] = [int(self.frame_range[0]), int(self.frame_range[1])]
        if self.portrait_names:
            fields["portrait_names"] = list(self.portrait_names)
        return encode(SUBMIT, job_id, fields, buffers)


@dataclass
class DetectJob:
    """Track a performance on the backend: a movie file's bytes (``video``), a movie file read in parts
    (``video_path``: footage of any size, see protocol.py), or encoded frames (``images`` with their
    ``frames`` numbers). The stream's ``result`` is a LandmarkSequence."""

    video: bytes | None = None
    images: list[bytes] | None = None
    frames: list[int] | None = None
    detector: str = "mediapipe"
    face_index: int = 0
    settings: dict = field(default_factory=dict)
    video_path: str | None = None
    part_bytes: int = FOOTAGE_PART_BYTES

    def video_parts(self) -> int:
        """How many parts ``video_path`` goes in (0 for a job without one)."""
        if self.video_path is None:
            return 0
        return max(1, -(-os.path.getsize(self.video_path) // self.part_bytes))

    def part(self, index: int) -> bytes:
        """Part ``index`` of ``video_path`` (read now: the caller's thread does the disk work)."""
        try:
            with open(self.video_path, "rb") as f:
                f.seek(index * self.part_bytes)
                return f.read(self.part_bytes)
        except OSError as exc:
            raise BadInput(f"cannot read the footage {self.video_path} ({exc.strerror or exc})") from None

    def message(self, job_id: str) -> list[bytes]:
        given = [self.video is not None, self.video_path is not None, self.images is not None]
        if sum(given) != 1:
            raise BadInput("a detect job needs one of a video, a video file or a list of images")
        fields = {}
        if self.video_path is not None:
            try:
                size = os.path.getsize(self.video_path)
            except OSError as exc:
                raise BadInput(f"cannot read the footage {self.video_path} ({exc.strerror or exc})") from None
            buffers = [bytes_buffer("video", self.part(0), "video")]
            fields = {"video_parts": self.video_parts(), "video_bytes": size}
        elif self.video is not None:
            buffers = [bytes_buffer("video", self.video, "video")]
        else:
            buffers = [bytes_buffer("image", data, "image") for data in self.images]
            numbers = self.frames if self.frames is not None else list(range(1, len(self.images) + 1))
            buffers.append(array_buffer("frames", np.asarray(numbers, np.int32)))
        if self.frames is not None and self.images is None:
            buffers.append(array_buffer("frames", np.asarray(self.frames, np.int32)))
        settings = {"face_index": self.face_index, **self.settings}
        return encode(SUBMIT, job_id, {"kind": JOB_DETECT, "detector": self.detector, "settings": settings,
                                       **fields}, buffers)

    def part_message(self, job_id: str, index: int) -> list[bytes]:
        """The PART message carrying part ``index`` (1..video_parts()-1) of ``video_path``."""
        return encode(PART, job_id, {"index": index}, [bytes_buffer("video", self.part(index), "video")])
