"""VoxCeleb-style preprocessing: talking-head videos -> one compact ``.npz`` of aligned crops per video.

For each video: sample up to ``frames`` frames evenly, detect the tracked face's 68 landmarks on them
(the landmarks room's tracker and detectors; the raw, unsmoothed points, since sampled frames are far
apart in time), crop a square around each frame's face (scale and shift only: head rotation is part of
what the model learns), resize it to ``size`` px and store it as PreparedVideos reads it.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from livingportrait_wire.atomic_write import atomic_writer
from livingportrait_wire.errors import BadInput
from livingportrait_backend.model_input import apply_affine, crop_affine

from .prepared import SUFFIX

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def list_videos(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder; give the folder that holds the videos")
    videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not videos:
        raise BadInput(f"{folder}: no videos ({', '.join(VIDEO_SUFFIXES)}) found in it or its subfolders")
    return videos


def output_name(folder: Path, video: Path) -> str:
    """A unique, flat name per video: its path under ``folder`` with separators as '__'."""
    rel = video.relative_to(folder).with_suffix("")
    return "__".join(rel.parts) + SUFFIX


def prepare_video(path: Path, out_path: str, size: int, frames: int, detector) -> int:
    """Prepare one video into ``out_path`` (written atomically). Returns the number of frames stored.

    BadInput when the video cannot be read or no frame shows a face.
    """
    from livingportrait_backend.landmarks.tracking import open_frames, track_frames

    stream, total = open_frames(path)
    total = max(total, 1)
    wanted = set(np.unique(np.linspace(1, total, min(frames, total)).round().astype(int)).tolist())
    kept: list[tuple[int, np.ndarray]] = []

    def sampled():
        for number, image in stream:
            if number in wanted:
                kept.append((number, image))
                yield number, image

    seq = track_frames(sampled(), detector, source=str(path))
    raw = seq.extras.get("raw_landmarks", seq.landmarks)
    found = seq.confidence.max(axis=1) > 0 if seq.confidence is not None else np.ones(len(seq), bool)
    crops, points, numbers, affines = [], [], [], []
    for (number, image), pts, ok in zip(kept, raw, found):
        if not ok:  # interpolated points would not match this frame's pixels
            continue
        m = crop_affine(pts, size)
        crops.append(cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE))
        points.append(apply_affine(m, pts))
        numbers.append(number)
        affines.append(m)
    if len(crops) < 2:
        raise BadInput(f"{path}: a face was found on only {len(crops)} sampled frame(s); a video needs at "
                       "least 2 to give meta-learning episodes")
    with atomic_writer(out_path) as f:
        np.savez_compressed(f, frames=np.stack(crops).astype(np.uint8), landmarks=np.stack(points).astype(np.float32),
                            source_frames=np.asarray(numbers, np.int32), crop=np.stack(affines).astype(np.float32))
    return len(crops)
