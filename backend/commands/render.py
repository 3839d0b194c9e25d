"""`livingportrait render`: animate a portrait with a performance into an EXR sequence."""
from __future__ import annotations

from .track import add_track_arguments, load_driver_from_args

HELP = ("Render an EXR sequence: in-process (farm mode, resumable, idempotent per frame) or, with "
        "--connect, as a client of a running `livingportrait serve`.")


def add_arguments(p) -> None:
    from livingportrait_wire.client import RECONNECT_S, TIMEOUT_S

    p.add_argument("--portrait", required=True, action="append", metavar="IMG",
                   help="portrait image (PNG, JPEG, TIFF, EXR); repeat for more shots of the same face, "
                        "the first is animated")
    p.add_argument("--driver", required=True, metavar="PERF.npz|VIDEO|DIR",
                   help="the performance: a landmark sequence file (.npz, 68-point iBUG layout), or a video "
                        "or folder of frames to track first (with --detector and the options below)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for NAME.####.exr")
    p.add_argument("--name", default="portrait", help="sequence name (default: portrait)")
    p.add_argument("--frames", metavar="LIST",
                   help="frames to render: A-B or a list such as 1-3,5,9-10 (default: every driver frame, or "
                        "on OpenCue the task's chunk from CUE_IFRAME, CUE_CHUNK and CUE_RANGE)")
    p.add_argument("--connect", metavar="tcp://HOST:PORT",
                   help="render on a running backend instead of in this process")
    p.add_argument("--portrait-landmarks", metavar="FILE",
                   help="the portrait's own 68 landmarks (.npz landmark file, first frame, or .npy [68,2]) "
                        "instead of detecting them")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="S",
                   help=f"with --connect: seconds to wait for the backend to answer (default {TIMEOUT_S:g})")
    p.add_argument("--reconnect", type=float, default=RECONNECT_S, metavar="S",
                   help="with --connect: when the backend goes silent, seconds to keep reconnecting and "
                        f"resuming before giving up (default {RECONNECT_S:g})")
    p.add_argument("--server-key", metavar="FILE",
                   help="with --connect to a CurveZMQ backend: its public key file (NAME.key)")
    p.add_argument("--client-key", metavar="FILE",
                   help="with --connect to a CurveZMQ backend: this client's secret key file (NAME.key_secret)")
    add_settings_arguments(p.add_argument_group("render settings"))
    add_track_arguments(p, detector=False)  # for a --driver video: the same options as `track`


def _settings_flags():
    """flag -> [(engine part or None, field)] for every RenderSettings field that is a flag. Engines that
    share a flag name (``--checkpoint``) share the flag; it fills the chosen engine's part."""
    from livingportrait_wire.render_settings import RenderSettings, flag_name

    flags: dict[str, list] = {}
    for part, f in RenderSettings.cli_fields():
        flags.setdefault(flag_name(f), []).append((part, f))
    return flags


def add_settings_arguments(p) -> None:
    """The render settings' flags, generated from RenderSettings (help, default, type, choices)."""
    from dataclasses import MISSING

    for flag, owners in _settings_flags().items():
        f = owners[0][1]
        meta = f.metadata
        default = f.default if meta["cli_default"] is MISSING else meta["cli_default"]
        kind = meta["cli_type"] or (type(f.default) if f.default is not None else str)
        p.add_argument(flag, dest=flag[2:].replace("-", "_"), default=default, type=kind,
                       choices=meta["choices"], metavar=meta["metavar"], help=meta["help"].replace("%", "%%"))


def settings_from_args(args):
    """The RenderSettings the flags say. BadInput naming every bad value."""
    from livingportrait_wire.render_settings import ENGINE_PARTS, RenderSettings

    top: dict = {}
    parts: dict = {name: {} for name in ENGINE_PARTS}
    for flag, owners in _settings_flags().items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value == "":  # an empty value is a flag left out (farm job templates pass every parameter)
            continue
        if owners[0][0] is None:
            top[owners[0][1].name] = value
        elif value is not None:
            # A flag of several engines: the chosen engine's, else the first that has it.
            part, f = next(((p, f) for p, f in owners if p == args.engine), owners[0])
            parts[part][f.name] = value
    return RenderSettings.from_dict({**top, **parts})


def load_portrait_landmarks(path: str):
    import numpy as np

    from livingportrait_wire.errors import BadInput
    from livingportrait_wire.landmarks import check_points, load_sequence

    if path.endswith(".npy"):
        try:
            points = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BadInput(f"{path}: not a readable .npy file ({exc})") from None
        return check_points(points, path)
    return load_sequence(path).landmarks[0]


def run(args, session=None) -> int:
    """``session``: an OpenJD session's warm worker (``session_worker.Worker``), which keeps the loaded
    inputs and the prepared job in memory between the session's tasks; None renders from scratch."""
    import os

    from livingportrait_wire.naming import check_name, parse_frames

    from ..farm_environment import apply_cue_gpus, cue_task_frames

    check_name(args.name)
    apply_cue_gpus()
    frames = parse_frames(args.frames) if args.frames else cue_task_frames()
    if session is not None:
        driver, points, settings, portraits = session.inputs(args, lambda: _load_inputs(args))
    else:
        driver, points, settings = _load_inputs(args, portraits=False)
    if args.connect:
        return _run_remote(args, driver, frames, points, settings)

    from ..farm import render_frames
    from ..frame_renderer import RenderSpec

    if session is None:
        portraits = _read_portraits(args)
    spec = RenderSpec(portraits, driver, args.name, settings, None, points, frames)
    renderer = session.renderer(spec, args.out) if session is not None else None
    result = render_frames(spec, args.out, on_missing=warn_missing_frames, renderer=renderer)
    if session is not None:
        session.rendered(renderer, result)
    if result.cache_hits:
        print(f"reused from the job's prepare cache: {', '.join(result.cache_hits)}")
    print(f"wrote {len(result.written)} frame(s), skipped {len(result.skipped)} already complete, "
          f"in {os.path.abspath(args.out)}")
    return 0


def _load_inputs(args, portraits: bool = True):
    """(performance, portrait landmarks or None, RenderSettings[, portraits]) the arguments name."""
    driver = load_driver_from_args(args)
    points = load_portrait_landmarks(args.portrait_landmarks) if args.portrait_landmarks else None
    settings = settings_from_args(args)
    return (driver, points, settings, _read_portraits(args)) if portraits else (driver, points, settings)


def _read_portraits(args):
    from ..images import read_portrait_file

    return [read_portrait_file(path)[1] for path in args.portrait]


def warn_missing_frames(missing: list[int], rendering: list[int]) -> None:
    import sys

    from livingportrait_wire.naming import format_frames

    print(f"livingportrait render: warning: the performance has no frame(s) {format_frames(missing)}; "
          f"rendering {format_frames(rendering)}", file=sys.stderr, flush=True)


def _run_remote(args, driver, frames, points, settings) -> int:
    import os

    from livingportrait_wire.client import BackendClient, CurveKeys, RenderJob
    from livingportrait_wire.errors import BadInput
    from livingportrait_wire.frame_writer import ensure_output_folder
    from livingportrait_wire.naming import frame_spans

    from ..frame_renderer import select_frames
    from ..images import read_portrait_file

    if (args.server_key is None) != (args.client_key is None):
        raise BadInput("CurveZMQ needs both --server-key (the backend's NAME.key) and --client-key "
                       "(your NAME.key_secret)")
    curve = CurveKeys.from_files(args.server_key, args.client_key) if args.server_key else None
    ensure_output_folder(args.out)
    # Decode locally first: a file that is not an image is refused before anything is sent.
    portraits = [read_portrait_file(path)[0] for path in args.portrait]
    selected, missing = select_frames(driver, frames)
    if missing:
        warn_missing_frames(missing, selected)
    # The wire carries one A-B range per job: a farm's list of frames is one job per contiguous span.
    spans = frame_spans(selected) if frames is not None else [None]
    written = 0
    with BackendClient(args.connect, timeout_s=args.timeout, curve=curve, reconnect_s=args.reconnect) as client:
        client.handshake()
        for span in spans:
            job = RenderJob(portraits, driver, args.out, args.name, settings=settings, frame_range=span,
                            portrait_landmarks=points, portrait_names=[os.path.basename(p) for p in args.portrait])
            written += _stream_job(client, job, args.name)
    print(f"wrote {written} frame(s) in {os.path.abspath(args.out)}")
    return 0


def _stream_job(client, job, name: str) -> int:
    """Submit ``job`` and wait for it, drawing progress; returns the number of frames written."""
    import sys
    import time

    from livingportrait_wire.client import ConnectionLost, FrameWritten, ProgressEvent, Resumed
    from livingportrait_wire.events import stage_text

    from ..progress import Progress

    stream = client.submit(job)
    bar = None
    shown = ["", 0.0]  # the last stage line printed, and when

    def on_event(event):
        nonlocal bar
        if isinstance(event, ProgressEvent) and bar is None and event.stage != "render":
            # The long preparation of a neural engine ("Fine-tuning 120/500"), before frames flow.
            line, now = stage_text(event.stage, event.done, event.total), time.monotonic()
            stage_changed = line.split(" ")[0] != shown[0].split(" ")[0]
            if line != shown[0] and (stage_changed or now - shown[1] >= 1.0 or event.done == event.total):
                print(line, file=sys.stderr, flush=True)
                shown[:] = [line, now]
        elif isinstance(event, FrameWritten):
            bar = bar or Progress(stream.total, f"render {name}")
            bar.update(len(stream.frames_written))
        elif isinstance(event, ConnectionLost):
            print(f"\nthe backend at {event.address} is silent ({event.silent_s:.1f} s); reconnecting for up "
                  f"to {event.reconnect_s:g} s", file=sys.stderr, flush=True)
        elif isinstance(event, Resumed):
            print(f"reconnected to {event.address}; resuming {event.frames_left} frame(s)", file=sys.stderr,
                  flush=True)

    try:
        stream.wait(on_event)
    except KeyboardInterrupt:
        stream.cancel()
        raise
    if bar:
        bar.close()
    return len(stream.frames_written)
