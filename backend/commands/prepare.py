"""``livingportrait prepare``: a folder of talking-head videos -> training data (one .npz per video)."""
from __future__ import annotations

import argparse
import os
import sys

HELP = ("Prepare training data from a folder of talking-head videos: sample frames, track 68 landmarks, "
        "crop and align the head, store one compact .npz per video (resumable)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", help="folder of videos (searched recursively)")
    parser.add_argument("--out", required=True, help="data folder to write (videos already there are skipped)")
    parser.add_argument("--size", type=int, default=256, help="crop size in pixels (256 for the paper preset, 64 for small)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled evenly per video")
    parser.add_argument("--detector", default="mediapipe", help="landmark detector: mediapipe (offline) or fan")


def run(args) -> int:
    from pathlib import Path

    from livingportrait_backend.data.prepare import list_videos, output_name, prepare_video
    from livingportrait_backend.detectors import get_detector
    from livingportrait_backend.progress import Progress
    from livingportrait_wire.errors import BadInput

    if args.size < 16 or args.size % 16:
        raise BadInput(f"--size {args.size}: use a multiple of 16 (e.g. 64 or 256)")
    if args.frames < 2:
        raise BadInput(f"--frames {args.frames}: need at least 2 frames per video")
    folder = Path(args.videos)
    videos = list_videos(folder)
    os.makedirs(args.out, exist_ok=True)
    detector = get_detector(args.detector)
    progress = Progress(len(videos), "prepare")
    done = skipped = 0
    failed: list[str] = []
    for i, video in enumerate(videos, start=1):
        target = os.path.join(args.out, output_name(folder, video))
        if os.path.exists(target):
            skipped += 1
        else:
            try:
                prepare_video(video, target, args.size, args.frames, detector)
                done += 1
            except BadInput as err:
                failed.append(err.message)
                print(f"prepare: skipped {err.message}", file=sys.stderr)
        progress.update(i, video.name)
    progress.close()
    print(f"prepare: {done} prepared, {skipped} already done, {len(failed)} failed -> {args.out}")
    if failed and not done and not skipped:
        raise BadInput(f"{folder}: no video could be prepared ({failed[0]})")
    return 0
