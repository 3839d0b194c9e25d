"""Our EXR frame encoder against the OpenEXR library writing the same frames, side by side in one run.

    .venv/bin/python bench/bench_exr.py [--frames 24] [--rounds 5] [--size 1920x1080]

The warp engine renders --frames frames of the astronaut first (not timed). Then each round writes
every frame as a file (plain write, no fsync, for both) with (a) ``ExrFrameEncoder`` (compresses only
the 64x64 tiles a frame changes and reuses the rest, its cache filled as after a job's first frame; 2
threads), at deflate level 1 (render's default) and at level 4, and (b) the OpenEXR library (composes
the full frame and compresses every tile: tiled 64x64 ZIP, the same channels, its own default deflate
level, which its Python binding does not let us set), once with its default thread count (0) and once
with 2 threads. Rounds rotate the order, so a busy machine slows each alike; the ratios are
the figures to read, not the absolute rates. The files are read back and compared: same pixels.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import OpenEXR

from livingportrait_backend.exr import ExrFrameEncoder, read_exr
from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
from livingportrait_backend.images import decode_portrait
from livingportrait_backend.landmarks.performance import builtin_performance

sys.path.insert(0, os.path.dirname(__file__))
from bench_warp import portrait_png  # noqa: E402


def rendered(size, count):
    perf = builtin_performance(seconds=count / 24)
    r = FrameRenderer(RenderSpec([decode_portrait(portrait_png(size), "bench.png")], perf))
    r.prepare()
    frames = r.frames[:count]
    return r, frames, [r.engine.render(r.targets[f]) for f in frames]


def our_encoder(r, patches, level: int) -> ExrFrameEncoder:
    """A job's encoder at deflate ``level``, its cache of the untouched portrait's tiles filled (as after
    a job's first frame)."""
    encoder = ExrFrameEncoder(r.spec.portraits[0].linear, {"livingportrait.job": r.job_digest}, level)
    encoder.encode(None)
    return encoder


def ours(encoder, frames, patches, out, prefix):
    for f, patch in zip(frames, patches):
        with open(os.path.join(out, f"{prefix}.{f:04d}.exr"), "wb") as file:
            file.write(encoder.encode(patch, {"livingportrait.frame": int(f)}))


def library(r, frames, patches, out, threads):
    OpenEXR.set_global_thread_count(threads)
    base = r.spec.portraits[0].linear
    tiles = OpenEXR.TileDescription()
    tiles.xSize, tiles.ySize, tiles.mode = 64, 64, OpenEXR.ONE_LEVEL
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.tiledimage, "tiles": tiles}
    for f, patch in zip(frames, patches):
        rgb = base.copy()
        matte = np.zeros(base.shape[:2], np.float32)
        h, w = patch.matte.shape
        rgb[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w] = patch.rgb
        matte[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w] = patch.matte
        half = rgb.astype(np.float16)
        channels = {"R": half[..., 0].copy(), "G": half[..., 1].copy(), "B": half[..., 2].copy(),
                    "A": np.ones(base.shape[:2], np.float16), "matte.Y": matte.astype(np.float16)}
        with OpenEXR.File(header, channels) as exr:
            exr.write(os.path.join(out, f"lib{threads}.{f:04d}.exr"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--size", default="1920x1080")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    r, frames, patches = rendered(size, args.frames)
    level1, level4 = our_encoder(r, patches, 1), our_encoder(r, patches, 4)
    writers = {"ours": lambda out: ours(level1, frames, patches, out, "ours"),
               "ours level 4": lambda out: ours(level4, frames, patches, out, "ours4"),
               "OpenEXR 0 threads": lambda out: library(r, frames, patches, out, 0),
               "OpenEXR 2 threads": lambda out: library(r, frames, patches, out, 2)}
    names = list(writers)
    times = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.rounds):
            for name in names[i % len(names):] + names[:i % len(names)]:
                t = time.perf_counter()
                writers[name](out)
                times[name].append(time.perf_counter() - t)
        f = frames[len(frames) // 2]
        mine, theirs = read_exr(os.path.join(out, f"ours.{f:04d}.exr")), read_exr(os.path.join(out, f"lib0.{f:04d}.exr"))
        same = mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
        sizes = {prefix: statistics.mean(os.path.getsize(os.path.join(out, f"{prefix}.{g:04d}.exr")) for g in frames)
                 for prefix in ("ours", "ours4", "lib0")}
    n = len(frames)
    print(f"{n} frames of {size[0]}x{size[1]} over {args.rounds} rounds; same pixels read back: {same}; "
          f"mean file {sizes['ours'] / 1e6:.2f} MB ours (level 1), {sizes['ours4'] / 1e6:.2f} MB ours level 4, "
          f"{sizes['lib0'] / 1e6:.2f} MB OpenEXR (its default level)")
    for name in names:
        print(f"{name:>18}: {statistics.median([n / t for t in times[name]]):6.1f} frames/s (median)")
    for name, mine in (("OpenEXR 0 threads", "ours"), ("OpenEXR 2 threads", "ours"),
                       ("OpenEXR 0 threads", "ours level 4"), ("OpenEXR 2 threads", "ours level 4")):
        ratio = [t / o for t, o in zip(times[name], times[mine])]
        print(f"{name} / {mine} time: median {statistics.median(ratio):.2f}x "
              f"(min {min(ratio):.2f}, max {max(ratio):.2f})")


if __name__ == "__main__":
    main()
