"""`livingportrait track`: a face's landmarks through a video or a folder of frames, as a performance."""
from __future__ import annotations

HELP = ("Track a face through a video or a folder of frames into a landmark performance (.npz): "
        "68 points per frame, smoothed, with the raw track kept inside.")


def add_track_arguments(p, detector: bool = True) -> None:
    """The tracking options, shared with `render --driver VIDEO`. ``detector=False`` when the caller
    already has a --detector option (render uses it for the portrait too)."""
    if detector:
        p.add_argument("--detector", default="mediapipe", choices=("mediapipe", "fan"),
                       help="landmark detector (default: mediapipe, offline; fan: face-alignment, the paper's)")
    p.add_argument("--face-index", type=int, default=0, metavar="N",
                   help="which face to track when there are several: 0 = the largest (default)")
    p.add_argument("--smoothing", default="1", metavar="STRENGTH|off",
                   help="temporal smoothing strength: 1 = default, higher = steadier, off = the raw track")
    p.add_argument("--fan-weights", metavar="DIR",
                   help="folder holding face-alignment's weights (2DFAN4-11f355bf06.pth.tar, "
                        "s3fd-619a316812.pth) when they are not in torch hub's cache")
    p.add_argument("--fan-download", action="store_true",
                   help="let face-alignment download its weights if missing (needs a network)")


def track_options_from_args(args):
    from livingportrait_backend.landmarks.smoothing import SmoothingOptions
    from livingportrait_backend.landmarks.tracking import TrackOptions

    return TrackOptions(detector=args.detector, face_index=args.face_index,
                        smoothing=SmoothingOptions.parse(args.smoothing), fan_weights=args.fan_weights,
                        fan_download=args.fan_download)


def add_arguments(p) -> None:
    p.add_argument("source", metavar="VIDEO|IMAGE_DIR",
                   help="a video file OpenCV can read, or a folder of frames (numbers in the file names "
                        "become frame numbers)")
    p.add_argument("--out", required=True, metavar="PERF.npz", help="the performance file to write")
    add_track_arguments(p)


def tracking_progress(label: str):
    """A Progress bar and the ``on_progress(done, total)`` callback that feeds it."""
    from livingportrait_backend.progress import Progress

    progress = Progress(0, label)

    def on_progress(done: int, total: int) -> None:
        progress.total = total
        progress.update(done)

    return progress, on_progress


def report_missing(seq, stream) -> None:
    """Tell the user which frames had no face (they were filled in, not dropped)."""
    from livingportrait_wire.naming import format_frames

    missing = [int(f) for f in seq.extras.get("missing_frames", [])]
    if missing:
        print(f"no face found on {len(missing)} frame(s): {format_frames(missing)}; filled by interpolation "
              "with confidence 0", file=stream)


def load_driver_from_args(args):
    """`render --driver`: a .npz performance as it is, or a video / folder of frames tracked with the
    same options as `track` (progress and frames without a face reported as `track` does)."""
    import sys

    from livingportrait_backend.landmarks.tracking import load_driver

    progress, on_progress = tracking_progress("track driver")
    seq = load_driver(args.driver, track_options_from_args(args), on_progress)
    if progress.total:  # it was tracked, not read from a file
        progress.close()
        report_missing(seq, sys.stderr)
    return seq


def run(args) -> int:
    import os
    import sys

    from livingportrait_backend.landmarks.tracking import track_video
    from livingportrait_wire.errors import BadInput
    from livingportrait_wire.landmarks import save_sequence

    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        raise BadInput(f"{args.out}: cannot write there ({out_dir} is not a writable folder); "
                       "choose another --out")
    options = track_options_from_args(args)
    progress, on_progress = tracking_progress("track")
    seq = track_video(args.source, options, on_progress)
    progress.close()
    report_missing(seq, sys.stderr)
    save_sequence(seq, args.out)
    smoothing = "off" if options.smoothing.off else f"{options.smoothing.strength:g}"
    print(f"wrote {args.out}: {len(seq)} frames ({int(seq.frames[0])}-{int(seq.frames[-1])}), "
          f"{seq.image_size[0]}x{seq.image_size[1]}, detector {options.detector}, smoothing {smoothing}")
    return 0
