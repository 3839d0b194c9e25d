"""Frame numbers between the scene, a movie clip, its footage and an EXR sequence (no bpy).

Conventions (Blender 4.2-5.0):
- a clip frame is counted from 1 at the clip's ``frame_start`` scene frame:
  clip frame = scene frame - clip.frame_start + 1 (``clip.frame_offset`` does not enter: it only
  shifts which footage frame is loaded);
- footage frame number (counted from 1 in the movie file, as the backend numbers video frames)
  = clip frame + clip.frame_offset; for an image-sequence clip, clip frame 1 shows the file the clip
  was opened with (number N in its name), so clip frame c shows file number N + c - 1 + frame_offset;
- Living Portrait names output files by scene frame, so file frame N is shown at scene frame N;
- a compositor Image node with source SEQUENCE shows file frame
  clamp(scene frame - frame_start + 1, 1, frame_duration) + frame_offset.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from .wire.errors import BadInput


def scene_to_clip(scene_frame, clip_frame_start: int):
    """Clip frame shown at ``scene_frame`` (int or int array)."""
    return scene_frame - clip_frame_start + 1


def clip_to_footage_frame(clip_frame, clip_frame_offset: int):
    """Number (from 1) of the footage frame in the movie file that ``clip_frame`` shows."""
    return clip_frame + clip_frame_offset


_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def sequence_file(first_path: str, clip_frame, clip_frame_offset: int) -> tuple[int, str]:
    """(file number, path) of the image an image-sequence clip opened as ``first_path`` shows at
    ``clip_frame``: the last number in the file name advanced, keeping its zero padding."""
    folder, name = os.path.split(first_path)
    m = _LAST_NUMBER.search(name)
    if m is None:
        raise BadInput(f"{name}: an image sequence's file names need a frame number (e.g. shot.0001.png)")
    number = int(m.group(1)) + int(clip_frame) - 1 + clip_frame_offset
    digits = f"{number:0{len(m.group(1))}d}"
    return number, os.path.join(folder, name[:m.start(1)] + digits + name[m.end(1):])


@dataclass(frozen=True)
class SequenceTiming:
    """The three Image node fields that place an image sequence on the scene timeline."""

    frame_start: int
    frame_offset: int
    frame_duration: int


def sequence_timing(first_file_frame: int, last_file_frame: int, first_scene_frame: int) -> SequenceTiming:
    """Timing that shows file frame ``first_file_frame`` at ``first_scene_frame`` and then one file per
    scene frame up to ``last_file_frame``."""
    if last_file_frame < first_file_frame:
        raise BadInput(f"sequence frames {first_file_frame}-{last_file_frame} end before they start")
    return SequenceTiming(frame_start=first_scene_frame, frame_offset=first_file_frame - 1,
                          frame_duration=last_file_frame - first_file_frame + 1)


def job_frame_range(use_scene_range: bool, scene_range: tuple[int, int],
                    custom_range: tuple[int, int]) -> tuple[int, int]:
    """The scene frames a job covers: the scene's range by default, or the artist's own."""
    first, last = scene_range if use_scene_range else custom_range
    if last < first:
        raise BadInput(f"frame range {first}-{last} ends before it starts; set the end after the start")
    if first < 0:
        raise BadInput(f"frame range {first}-{last} starts before frame 0; output files are numbered by "
                       "scene frame, so start the range at 0 or later")
    return int(first), int(last)


def shift_frames(frames: np.ndarray, first_scene_frame: int) -> np.ndarray:
    """A performance file's own frame numbers moved so its first sample lands on ``first_scene_frame``
    (gaps between samples are kept)."""
    frames = np.asarray(frames, dtype=np.int64)
    return (frames - frames[0] + first_scene_frame).astype(np.int32)


def format_spans(frames) -> str:
    """'3-7, 10, 12-13' for a sorted list of frame numbers (for messages)."""
    frames = [int(f) for f in frames]
    spans, start = [], None
    for i, f in enumerate(frames):
        if start is None:
            start = f
        if i + 1 == len(frames) or frames[i + 1] != f + 1:
            spans.append(str(start) if start == f else f"{start}-{f}")
            start = None
    return ", ".join(spans)
