"""Speed of the fewshot engine: frames/s end to end into EXR files, and fine-tuning seconds per 100 steps.

    .venv/bin/python bench/bench_fewshot.py [--threads 2] [--frames 16] [--repeats 2] [--batch 8]

End to end = the frame renderer's own path (retargeted landmarks -> crop -> raster -> generator ->
paste-back -> half-float EXR bytes -> atomic file write), after ``prepare`` (checkpoint load, embedding).
Presets: ``paper`` (256x256 crops; random weights: speed does not depend on them) and ``small`` (64x64).
Portrait 512x512, driver = the built-in performance. Batch 1 renders frame by frame; batched hands the
engine ``--batch`` frames at a time (``render_batch``). Fine-tuning: the paper's G+D steps on T shots,
timed per step after a warm-up step. Prints a table and writes ``docs/results/bench_fewshot.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np


def make_checkpoint(name: str, folder: str) -> str:
    import torch

    from livingportrait_backend.model.checkpoint import save_model
    from livingportrait_backend.model.config import preset
    from livingportrait_backend.model.networks import build_networks

    path = os.path.join(folder, name)
    if not os.path.isfile(os.path.join(path, "model.safetensors")):
        torch.manual_seed(0)
        cfg = preset(name)
        save_model(path, cfg, build_networks(cfg))
    return path


def portrait_and_driver():
    from livingportrait_backend.colorspace import SRGB8_TO_LINEAR
    from livingportrait_backend.data.synthetic import SyntheticTalkingHeads
    from livingportrait_backend.images import Portrait
    from livingportrait_backend.landmarks.performance import builtin_performance

    image, points = SyntheticTalkingHeads(1, 512, seed=11).frame(0, 0)
    return Portrait(SRGB8_TO_LINEAR[image], image, "bench.png", "bench"), points, builtin_performance()


def render_rate(checkpoint: str, batch: int, frames: int, repeats: int, precision: str) -> dict:
    """Frames/s over ``frames`` frames, ``repeats`` times -> {min, median, max} and the prepare time."""
    from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
    from livingportrait_wire.atomic_write import write_bytes_atomic

    portrait, points, driver = portrait_and_driver()
    spec = RenderSpec([portrait], driver, "bench", {"engine": "fewshot", "fewshot": {
        "checkpoint": checkpoint, "batch": batch, "precision": precision}}, portrait_landmarks=points)
    renderer = FrameRenderer(spec)
    t0 = time.perf_counter()
    renderer.prepare()
    prepare_s = time.perf_counter() - t0
    todo = renderer.frames[:frames]
    list(renderer.encoded(todo[:batch]))  # warm-up: first-call allocations
    rates = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for lo in range(0, len(todo), batch):
                chunk = todo[lo:lo + batch]
                datas = [data for _, data in renderer.encoded(chunk)]
                for f, data in zip(chunk, datas):
                    write_bytes_atomic(os.path.join(out, renderer.filename(f)), data)
            rates.append(len(todo) / (time.perf_counter() - t0))
    return {"fps_min": min(rates), "fps_median": statistics.median(rates), "fps_max": max(rates),
            "ms_per_frame_median": 1000 / statistics.median(rates), "prepare_s": prepare_s}


def finetune_rate(checkpoint: str, shots: int, steps: int) -> dict:
    """Seconds per 100 fine-tuning steps (median step time x 100, first step excluded)."""
    from livingportrait_backend.model.checkpoint import load_model
    from livingportrait_backend.training.finetune import FineTuneOptions, personalize

    cfg, nets = load_model(checkpoint)
    s = cfg.resolution
    x = np.random.default_rng(0).uniform(-1, 1, (shots, 6, s, s)).astype(np.float32)
    stamps = []
    personalize(cfg, nets, x, FineTuneOptions(steps=steps + 1, batch=min(4, shots)), "cpu",
                lambda stage, done, total: stamps.append(time.perf_counter()))
    steps_s = np.diff(stamps)[1:]  # drop the warm-up step
    return {"s_per_100_steps_median": 100 * float(np.median(steps_s)), "s_per_100_steps_min": 100 * float(steps_s.min()),
            "steps_timed": len(steps_s), "batch": min(4, shots)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--finetune-steps", type=int, default=3, help="timed steps per preset (after a warm-up)")
    parser.add_argument("--presets", default="paper,small", help="comma list of model presets")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma list: fp32, bf16 (CPU autocast)")
    parser.add_argument("--work", default="build/bench_fewshot", help="where the random checkpoints are kept")
    parser.add_argument("--out", default="docs/results/bench_fewshot.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("LIVINGPORTRAIT_CACHE", os.path.join(args.work, "cache"))
    os.makedirs(args.work, exist_ok=True)
    rows = []
    for name in args.presets.split(","):
        ckpt = make_checkpoint(name, args.work)
        for precision in args.precisions.split(","):
            for batch in (1, args.batch):
                r = render_rate(ckpt, batch, args.frames, args.repeats, precision)
                rows.append({"what": "render", "preset": name, "precision": precision, "batch": batch, **r})
                print(json.dumps(rows[-1]), flush=True)
        r = finetune_rate(ckpt, shots=8, steps=args.finetune_steps)
        rows.append({"what": "finetune", "preset": name, "shots": 8, **r})
        print(json.dumps(rows[-1]), flush=True)
    result = {"threads": args.threads, "torch": torch.__version__, "cpu_count": os.cpu_count(),
              "load_average_at_end": os.getloadavg(), "portrait": "512x512", "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
