"""Tracking a performance: landmarks on every frame of a video or a folder of frames.

Frame numbers are the source's: a video's frames are numbered from 1 (as Blender's movie clips and
ffmpeg's image sequences count them); a folder's frames take the number in each file name when every
name has one (``shot.0101.png`` -> 101), else their sorted order from 1. Frames where the chosen face is
not found are filled by interpolation, get confidence 0, and are listed in ``extras['missing_frames']``.
The saved sequence is smoothed; the raw track is kept in ``extras['raw_landmarks']``. With a detector
that sees irises (mediapipe's refined mesh) the iris centres are recorded as ``extras['gaze']``; the
actor's mouth interior is recorded per frame as ``extras['mouth']`` (uint8 [T, 32, 64, 3], the inner-lip
opening on a fixed grid) with the lips' colour ``extras['mouth_lips']`` (float32 [T, 3], linear).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import LandmarkSequence, load_sequence

from ..detectors import Detection, Detector, get_detector
from .smoothing import SmoothingOptions, smooth_sequence

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True)
class TrackOptions:
    """``detector`` a registry name; ``face_index`` 0 = the largest face on the first frame with one;
    ``smoothing`` the temporal clean-up; ``fan_weights`` a folder holding the fan detector's files;
    ``fan_download`` lets the fan detector download missing weights (connected machines only)."""

    detector: str = "mediapipe"
    face_index: int = 0
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    fan_weights: str | None = None
    fan_download: bool = False

    def make_detector(self) -> Detector:
        if self.face_index < 0:
            raise BadInput(f"--face-index: {self.face_index} is negative; 0 is the largest face")
        options = {}
        if self.detector == "fan":
            options = {"weights_dir": self.fan_weights, "download": self.fan_download}
        return get_detector(self.detector, **options)


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _follow(faces: list[Detection], previous: Detection | None, face_index: int) -> Detection | None:
    """The tracked face in this frame: once a face is chosen, the one overlapping it most (so the
    same person is kept when faces change size order); before that, the ``face_index``-th largest."""
    if previous is not None and faces:
        best = max(faces, key=lambda f: _overlap(f.box, previous.box))
        if _overlap(best.box, previous.box) > 0.3:
            return best
    return faces[face_index] if face_index < len(faces) else None


def track_frames(frames: Iterable[tuple[int, np.ndarray]], detector: Detector | str = "mediapipe",
                 face_index: int = 0, smoothing: SmoothingOptions = SmoothingOptions(),
                 on_progress: Callable[[int], None] | None = None, source: str = "frames") -> LandmarkSequence:
    """Track one face through ``frames``: (frame number, uint8 RGB (H, W, 3) image) pairs with strictly
    increasing numbers, all the same size.

    Returns the performance as a LandmarkSequence (pixels, top-left origin, image_size of the frames):
    smoothed landmarks, ``confidence`` (0 on filled frames), ``extras['raw_landmarks']`` (the track
    before smoothing, filled frames interpolated) and ``extras['missing_frames']`` (frame numbers
    without the face). ``on_progress(done)`` is called after each frame. BadInput if no frame has the
    face; ``source`` names the input in messages.
    """
    if isinstance(detector, str):
        detector = get_detector(detector)
    from ..engines.warp_mouth import DRIVER_MOUTH, driver_mouth

    numbers, points, confidence, missing, gaze, mouths, lips = [], [], [], [], [], [], []
    size, chosen = None, None
    for done, (number, image) in enumerate(frames, start=1):
        if size is None:
            size = (image.shape[1], image.shape[0])
        elif (image.shape[1], image.shape[0]) != size:
            raise BadInput(f"{source}: frame {number} is {image.shape[1]}x{image.shape[0]} but the first "
                           f"frame is {size[0]}x{size[1]}; all frames must have the same size")
        if numbers and number <= numbers[-1]:
            raise BadInput(f"{source}: frame numbers must increase; {number} follows {numbers[-1]}")
        face = _follow(detector.detect(image), chosen, face_index)
        numbers.append(number)
        if face is None:
            missing.append(number)
            points.append(np.full((68, 2), np.nan, np.float32))
            confidence.append(np.zeros(68, np.float32))
            gaze.append(np.full((2, 2), np.nan, np.float32))
            mouths.append(None)
            lips.append(None)
        else:
            chosen = face
            points.append(face.points)
            confidence.append(face.confidence)
            gaze.append(np.full((2, 2), np.nan, np.float32) if face.iris is None else face.iris[:, :2])
            crop, colour = driver_mouth(image, face.points)
            mouths.append(crop)
            lips.append(colour)
        if on_progress is not None:
            on_progress(done)
    if not numbers:
        raise BadInput(f"{source}: holds no frames")
    if len(missing) == len(numbers):
        which = "a face" if face_index == 0 else f"face {face_index} (0 = the largest)"
        raise BadInput(f"{source}: {which} was not found in any of the {len(numbers)} frames; "
                       "check the footage, or try --detector fan or another --face-index")
    frame_numbers = np.asarray(numbers, np.int32)
    raw = _fill_missing(np.stack(points), frame_numbers)
    extras = {"missing_frames": np.asarray(missing, np.int32)}
    gaze = np.stack(gaze)
    if not np.isnan(gaze[:, 0, 0]).all():  # the detector sees irises (mediapipe): record the gaze
        extras["gaze"] = _fill_missing(gaze, frame_numbers)
    # The actor's mouth interior per frame (frames without the face take the nearest found one's).
    found = [i for i, m in enumerate(mouths) if m is not None]
    nearest = [min(found, key=lambda j: abs(j - i)) for i in range(len(mouths))]
    extras["mouth"] = np.stack([mouths[j] for j in nearest]).reshape(-1, *DRIVER_MOUTH, 3)
    extras["mouth_lips"] = np.stack([lips[j] for j in nearest]).astype(np.float32)
    seq = LandmarkSequence(raw, frame_numbers, size, np.stack(confidence), extras)
    return smooth_sequence(seq, smoothing)


def _fill_missing(points: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Frames whose points are NaN get points interpolated linearly in frame number between the
    nearest found frames (held constant before the first and after the last)."""
    found = ~np.isnan(points[:, 0, 0])
    if found.all():
        return points
    flat = points.reshape(len(points), -1)
    filled = np.stack([np.interp(frames, frames[found], flat[found, c]) for c in range(flat.shape[1])], 1)
    return filled.reshape(points.shape).astype(np.float32)


def _frame_number(name: str) -> int | None:
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else None


def folder_frames(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """The image files in ``folder`` with their frame numbers, in frame order."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise BadInput(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    numbers = [_frame_number(p.name) for p in files]
    if None not in numbers and len(set(numbers)) == len(numbers):
        return sorted(zip(numbers, files))
    return list(enumerate(files, start=1))


def _read_folder(frames: list[tuple[int, Path]]) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    for number, path in frames:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise BadInput(f"{path}: not a readable image; remove it from the folder or replace it")
        yield number, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_video(capture, first: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    number, image = 1, first
    try:
        while image is not None:
            yield number, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            ok, image = capture.read()
            number += 1
            if not ok:
                return
    finally:
        capture.release()


def open_frames(path: str | os.PathLike) -> tuple[Iterator[tuple[int, np.ndarray]], int]:
    """(frame number, uint8 RGB image) pairs of a video file or a folder of frames, and how many
    frames there are (a video's count is its header's, which may be approximate)."""
    import cv2

    path = Path(path)
    if path.is_dir():
        frames = folder_frames(path)
        return _read_folder(frames), len(frames)
    if not path.exists():
        raise BadInput(f"{path}: no such video file or folder of frames")
    capture = cv2.VideoCapture(str(path))
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise BadInput(f"{path}: not a readable video; give a video OpenCV can decode (mp4, mov, avi) "
                       "or a folder of numbered frames")
    return _read_video(capture, first), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))


def track_video(path: str | os.PathLike, options: TrackOptions = TrackOptions(),
                on_progress: Callable[[int, int], None] | None = None) -> LandmarkSequence:
    """Track a video file or a folder of frames (see ``track_frames``). ``on_progress(done, total)``."""
    detector = options.make_detector()
    frames, total = open_frames(path)
    report = None if on_progress is None else (lambda done: on_progress(done, max(total, done)))
    return track_frames(frames, detector, options.face_index, options.smoothing, report, source=str(path))


def load_driver(path: str | os.PathLike, options: TrackOptions = TrackOptions(),
                on_progress: Callable[[int, int], None] | None = None) -> LandmarkSequence:
    """A driver performance from a ``.npz`` landmark file (read as is), or from a video / folder of
    frames (tracked with ``options``)."""
    if Path(path).suffix.lower() == ".npz":
        return load_sequence(path)
    return track_video(path, options, on_progress)
