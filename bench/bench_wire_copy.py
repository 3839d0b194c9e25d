"""The wire's receive path with and without a copy of each received buffer, side by side in one run.

    .venv/bin/python bench/bench_wire_copy.py [--frames 24] [--rounds 7] [--size 1920x1080]

Real FRAME messages (EXR files the warp engine made of the astronaut at --size) go over a ZeroMQ TCP
loopback socket; the receiver takes them with ``copy=False`` as the client and server do, decodes them,
and (second figure) writes each file atomically, as the client does. "copy" decodes
``bytes(frame.buffer)`` (what ``codec.decode`` did before: one copy of every buffer), "view" hands
the zmq frames to ``codec.decode`` as they are. Rounds alternate the order of the two variants, so a
busy machine slows both alike; the ratio is the figure to read, not the absolute rates.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

import zmq

from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
from livingportrait_backend.images import decode_portrait
from livingportrait_backend.landmarks.performance import builtin_performance
from livingportrait_wire.atomic_write import write_bytes_atomic
from livingportrait_wire.codec import decode, encode
from livingportrait_wire.protocol import FRAME, SERVER_TYPES

sys.path.insert(0, os.path.dirname(__file__))
from bench_warp import portrait_png  # noqa: E402


def exr_frames(size: tuple[int, int], count: int) -> list[bytes]:
    perf = builtin_performance(seconds=count / 24)
    r = FrameRenderer(RenderSpec([decode_portrait(portrait_png(size), "bench.png")], perf))
    r.prepare()
    return [data for _, data in r.encoded(r.frames[:count])]


def copying(frames):
    return decode([bytes(f.buffer) for f in frames], expect=SERVER_TYPES)


def viewing(frames):
    return decode(frames, expect=SERVER_TYPES)


def one_round(ctx, endpoint: str, messages: list[list[bytes]], variant, out_dir: str | None) -> float:
    """Seconds to receive, decode (and write, with ``out_dir``) every message once."""
    pull = ctx.socket(zmq.PULL)
    pull.connect(endpoint)
    ready = threading.Event()

    def send():
        push = ctx.socket(zmq.PUSH)
        push.bind(endpoint)
        ready.set()
        for parts in messages:
            push.send_multipart(parts, copy=False)
        push.close(linger=-1)

    # the sender binds; the receiver's connect completes when it does
    sender = threading.Thread(target=send)
    sender.start()
    ready.wait()
    t = time.perf_counter()
    for _ in messages:
        msg = variant(pull.recv_multipart(copy=False))
        if out_dir is not None:
            write_bytes_atomic(os.path.join(out_dir, msg.header["filename"]), msg.one("exr"))
    seconds = time.perf_counter() - t
    sender.join()
    pull.close(linger=0)
    return seconds


def compare(ctx, messages, rounds: int, out_dir: str | None, label: str) -> None:
    times = {"copy": [], "view": []}
    variants = [("copy", copying), ("view", viewing)]
    port = 47300
    for r in range(rounds):
        for name, fn in (variants if r % 2 == 0 else variants[::-1]):
            port += 1
            times[name].append(one_round(ctx, f"tcp://127.0.0.1:{port}", messages, fn, out_dir))
    n = len(messages)
    rate = {k: [n / s for s in v] for k, v in times.items()}
    ratio = [c / v for c, v in zip(times["copy"], times["view"])]
    print(f"{label}: copy {statistics.median(rate['copy']):.1f} frames/s, view "
          f"{statistics.median(rate['view']):.1f} frames/s; time copy/view median {statistics.median(ratio):.3f} "
          f"(min {min(ratio):.3f}, max {max(ratio):.3f}) over {rounds} rounds")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--size", default="1920x1080")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    files = exr_frames(size, args.frames)
    print(f"{len(files)} EXR frames of {size[0]}x{size[1]}, {statistics.mean(map(len, files)) / 1e6:.2f} MB each")
    messages = [encode(FRAME, "bench", {"frame": i, "filename": f"bench.{i:04d}.exr"},
                       [({"name": "exr", "kind": "bytes", "encoding": "exr", "nbytes": len(data)}, data)])
                for i, data in enumerate(files)]
    ctx = zmq.Context()
    compare(ctx, messages, args.rounds, None, "receive + decode")
    with tempfile.TemporaryDirectory() as tmp:
        compare(ctx, messages, args.rounds, tmp, "receive + decode + atomic write (fsync)")
    ctx.term()


if __name__ == "__main__":
    main()
