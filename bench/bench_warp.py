"""Foundation figures: warp speed, pipeline efficiency, server start-up, warp quality.

    .venv/bin/python bench/bench_warp.py [--frames 48] [--repeats 3]

Prints one line per figure (min / median / max over repeats where it applies). Run it on a quiet
machine: every figure is CPU-bound on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
from skimage import data

from livingportrait_backend.detectors import get_detector
from livingportrait_backend.farm import write_frames
from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
from livingportrait_backend.images import decode_portrait
from livingportrait_backend.landmarks.performance import builtin_performance
from livingportrait_wire.client import BackendClient, RenderJob
from livingportrait_wire.layout import interocular_distance

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from backend_process import BackendProcess  # noqa: E402


def portrait_png(size: tuple[int, int]) -> bytes:
    """The astronaut scaled to the frame height and centred on a frame of ``size`` (w, h)."""
    w, h = size
    img = data.astronaut()
    scaled = cv2.resize(img, (h, h), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(scaled, 0, 0, (w - h) // 2, w - h - (w - h) // 2, cv2.BORDER_REFLECT)
    ok, png = cv2.imencode(".png", canvas[:, :, ::-1])
    return png.tobytes()


def stats(values: list[float]) -> str:
    return f"min {min(values):.1f} / median {statistics.median(values):.1f} / max {max(values):.1f}"


def renderer(png: bytes, frames: int) -> FrameRenderer:
    perf = builtin_performance(seconds=frames / 24)
    r = FrameRenderer(RenderSpec([decode_portrait(png, "bench.png")], perf))
    r.prepare()
    return r


def speed(size, frames, repeats):
    png = portrait_png(size)
    r = renderer(png, frames)
    synth, encode, disk = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            t = time.perf_counter()
            for f in r.frames:
                r.engine.render(r.targets[f])
            synth.append(len(r.frames) / (time.perf_counter() - t))
            t = time.perf_counter()
            for _ in r.encoded(r.frames):
                pass
            encode.append(len(r.frames) / (time.perf_counter() - t))
            t = time.perf_counter()
            write_frames(r, r.frames, tmp)  # the farm's own loop: files written atomically, fsynced
            disk.append(len(r.frames) / (time.perf_counter() - t))
    w, h = size
    print(f"warp {w}x{h}: synthesis only        {stats(synth)} frames/s")
    print(f"warp {w}x{h}: synthesis + EXR bytes {stats(encode)} frames/s")
    print(f"warp {w}x{h}: end to end EXR files  {stats(disk)} frames/s")
    return png, statistics.median(disk)


def pipeline(png: bytes, frames: int, repeats: int, in_process_fps: float):
    perf = builtin_performance(seconds=frames / 24)
    server = BackendProcess()
    rates = []
    try:
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp, BackendClient(server.address) as client:
                client.handshake()
                stream = client.submit(RenderJob([png], perf, tmp, "bench"))
                first = None
                while not stream.finished:
                    stream.poll(100)
                    if first is None and stream.frames_written:
                        first = time.perf_counter()  # from the first frame: excludes detection / set-up
                if stream.error:
                    raise stream.error
                rates.append((len(stream.frames_written) - 1) / (time.perf_counter() - first))
    finally:
        server.stop()
    eff = [r / in_process_fps for r in rates]
    print(f"pipeline (serve + client, EXR files): {stats(rates)} frames/s; "
          f"efficiency vs in-process {stats([e * 100 for e in eff])} %")


def startup(repeats: int):
    times, rss, torch_loaded = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        server = BackendProcess()
        with BackendClient(server.address) as client:
            client.handshake()
        times.append(time.perf_counter() - t)
        with open(f"/proc/{server.pid}/status") as f:
            rss.append(int(next(l for l in f if l.startswith("VmRSS")).split()[1]) / 1024)
        with open(f"/proc/{server.pid}/maps") as f:
            torch_loaded.append("libtorch" in f.read())
        server.stop()
    print(f"serve start-up to first handshake: {stats([x * 1000 for x in times])} ms; "
          f"RSS {stats(rss)} MB; torch loaded: {any(torch_loaded)}")


def quality(frames: int):
    """Detector on each output frame vs the landmarks it was asked to show, / inter-ocular distance."""
    from livingportrait_backend.colorspace import linear_to_srgb8
    from livingportrait_backend.engines import FramePatch  # noqa: F401  (documents the patch contract)

    ok, png = cv2.imencode(".png", data.astronaut()[:, :, ::-1])
    r = renderer(png.tobytes(), frames)
    detector = get_detector("mediapipe")
    base = r.spec.portraits[0].linear
    # The detector's own bias on the untouched portrait, so only what the warp adds is measured.
    bias = detector.detect(r.spec.portraits[0].srgb8)[0].points - r.portrait_points
    errors = []
    for f in r.frames:
        patch = r.engine.render(r.targets[f])
        out = base.copy()
        h, w = patch.matte.shape
        out[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w] = patch.rgb
        found = detector.detect(linear_to_srgb8(out))
        if not found:
            errors.append(float("inf"))
            continue
        target = r.targets[f]
        errors.append(float(np.linalg.norm(found[0].points - bias - target, axis=1).mean()
                            / interocular_distance(target)))
    print(f"warp quality on the demo ({len(errors)} frames): mean landmark error "
          f"{np.mean(errors):.4f} of the inter-ocular distance (max {np.max(errors):.4f})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    speed((1024, 1024), args.frames, args.repeats)
    png, fps_1080 = speed((1920, 1080), args.frames, args.repeats)
    pipeline(png, args.frames, args.repeats, fps_1080)
    startup(args.repeats)
    quality(args.frames)


if __name__ == "__main__":
    main()
