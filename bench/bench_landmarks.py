"""Landmark path figures: jitter and lag of the temporal clean-up, and tracking speed per detector.

    .venv/bin/python bench/bench_landmarks.py [--frames 96] [--repeats 3]

Driver videos are made from the astronaut photo (tests/landmark_videos.py): a still head with
sensor-like noise (Gaussian, sigma 6 of 255 per pixel and frame, then MJPG-encoded) for jitter, and a
swaying, turning, leaning head for lag. Both are tracked with the offline detector, then smoothed.
Jitter = mean frame-to-frame point motion (px); lag = peak of the cross-correlation of the smoothed and
raw point motion (frames). Speeds are frames/s of detection alone (decoding excluded), min / median
over repeats. fan is timed only when face-alignment's weights are installed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from landmark_videos import jitter, known_positions, lag_frames, make_driver_video, still_photo  # noqa: E402

from livingportrait_backend.detectors import get_detector  # noqa: E402
from livingportrait_backend.landmarks.retarget import head_poses  # noqa: E402
from livingportrait_backend.landmarks.smoothing import SmoothingOptions, smooth_points  # noqa: E402
from livingportrait_backend.landmarks.tracking import TrackOptions, open_frames, track_video  # noqa: E402
from livingportrait_wire.errors import BadInput  # noqa: E402
from livingportrait_wire.layout import interocular_distance  # noqa: E402

RAW = TrackOptions(smoothing=SmoothingOptions(0.0))


def smoothing_figures(folder: Path, frames: int) -> None:
    still = make_driver_video(folder / "still.avi", count=frames, kind="still")
    moving = make_driver_video(folder / "moving.avi", count=frames, kind="moving")
    still_raw = track_video(still.path, RAW)
    moving_raw = track_video(moving.path, RAW)
    iod = interocular_distance(still_raw.landmarks[0])
    reference = get_detector("mediapipe").detect(still_photo())[0].points
    known = known_positions(reference, moving.affines)
    print(f"driver videos: {frames} frames, 384x384, inter-ocular distance {iod:.1f} px")
    print(f"raw track: still-head jitter {jitter(still_raw.landmarks):.3f} px/frame; moving-head error to the "
          f"known positions {np.linalg.norm(moving_raw.landmarks - known, axis=2).mean():.2f} px")
    raw_scale = np.std([p.scale for p in head_poses(still_raw.landmarks, still_raw.landmarks[0])])
    for label, options in (("offline (forward-backward, the track default)", SmoothingOptions(1.0)),
                           ("causal (one forward pass, live)", SmoothingOptions(1.0, causal=True)),
                           ("offline, strength 2", SmoothingOptions(2.0))):
        s = smooth_points(still_raw.landmarks, still_raw.frames, options)
        m = smooth_points(moving_raw.landmarks, moving_raw.frames, options)
        scale = np.std([p.scale for p in head_poses(s, s[0])])
        print(f"  {label}:")
        print(f"    jitter {jitter(s):.3f} px/frame -> {jitter(still_raw.landmarks) / jitter(s):.1f}x less "
              f"(target >= 4x); head-scale wobble (std) {raw_scale:.5f} -> {scale:.5f}")
        print(f"    moving head: lag {lag_frames(moving_raw.landmarks, m):+.2f} frames behind the raw track, "
              f"{lag_frames(known, m):+.2f} behind the true motion (target <= 1); error to the known "
              f"positions {np.linalg.norm(m - known, axis=2).mean():.2f} px")


def detector_speed(name: str, images: list[np.ndarray], repeats: int, **options) -> str:
    detector = get_detector(name, **options)
    detector.detect(images[0])  # warm-up: first-call set-up is not per-frame cost
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            detector.detect(image)
        rates.append(len(images) / (time.perf_counter() - start))
    return f"min {min(rates):.1f} / median {statistics.median(rates):.1f} frames/s"


def speed_figures(folder: Path, frames: int, repeats: int) -> None:
    video = make_driver_video(folder / "speed.avi", count=frames, kind="moving")
    small = [image for _, image in open_frames(video.path)[0]]
    # the same face in a 1280x720 frame (a wide shot: the face is about 10% of the width)
    wide = []
    for image in small:
        canvas = np.zeros((720, 1280, 3), np.uint8)
        canvas[168:552, 448:832] = image
        wide.append(canvas)
    import torch

    print(f"tracking speed, detection only, {torch.get_num_threads()} CPU threads "
          f"({'GPU: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}):")
    print(f"  mediapipe 384x384: {detector_speed('mediapipe', small, repeats)}")
    print(f"  mediapipe 1280x720: {detector_speed('mediapipe', wide, repeats)}")
    try:
        print(f"  fan 384x384: {detector_speed('fan', small[: max(4, frames // 8)], repeats)}")
    except BadInput as err:
        print(f"  fan: not timed, its weights are not installed here ({err.message.split('. ')[0]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # detection timings should not include OpenCV's own thread pool
    with tempfile.TemporaryDirectory() as tmp:
        smoothing_figures(Path(tmp), args.frames)
        speed_figures(Path(tmp), args.frames, args.repeats)


if __name__ == "__main__":
    main()
