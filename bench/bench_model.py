"""Speed of the paper's networks: generator ms/frame (CPU and GPU) and training steps/s.

    .venv/bin/python bench/bench_model.py cpu-generator   # paper G at 256 px, batch 1 and 8, 2 threads
    .venv/bin/python bench/bench_model.py cpu-train       # small preset training steps/s on CPU
    .venv/bin/python bench/bench_model.py gpu             # paper G bf16/fp16, channels_last, compile; paper training steps/s

Every variant precomputes psi once (per identity, as the few-shot engine does) and times only the
per-frame generator call. Prints one JSON line per measurement (min and median of the repeats) and
writes them all to --json if given.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from livingportrait_backend.model.config import preset
from livingportrait_backend.model.networks import build_networks
from livingportrait_backend.model.personalized import fold_for_inference
from livingportrait_backend.model.spectral_norm import fold_spectral_norm

RESULTS: list[dict] = []


def report(**row) -> None:
    RESULTS.append(row)
    print(json.dumps(row), flush=True)


def _time(fn, repeats: int, sync=lambda: None) -> list[float]:
    fn()  # warm-up (allocations, oneDNN primitive creation, autotuning)
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def _generator(device: str, fold: str | None, channels_last: bool):
    """fold: None (spectral norm live), "sn" (spectral norm folded) or "all" (``fold_for_inference``:
    also pooling and upsampling folded into the convs, what the few-shot engine renders with)."""
    torch.manual_seed(0)
    cfg = preset("paper")
    g = build_networks(cfg)["generator"].to(device).eval()
    e = torch.rand(1, cfg.embedder.embed_dim, device=device)
    with torch.no_grad():
        psi = g.project(e)  # once per identity
    if fold == "sn":
        fold_spectral_norm(g)
    elif fold == "all":
        fold_for_inference(g)
    if channels_last:
        g = g.to(memory_format=torch.channels_last)
    return g, psi


def bench_generator(device: str, batches, variants, repeats: int, sync=lambda: None) -> None:
    for name, fold, cl, dtype, compile_ in variants:
        g, psi = _generator(device, fold, cl)
        if compile_:
            g = torch.compile(g)
        for b in batches:
            raster = torch.rand(b, 3, 256, 256, device=device) * 2 - 1
            if cl:
                raster = raster.contiguous(memory_format=torch.channels_last)

            def step():
                with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype or torch.float32,
                                                            enabled=dtype is not None):
                    g(raster, psi)

            times = _time(step, repeats, sync)
            report(part="generator", device=device, variant=name, batch=b,
                   ms_per_frame_min=1000 * min(times) / b, ms_per_frame_median=1000 * statistics.median(times) / b,
                   threads=torch.get_num_threads())


def bench_train(preset_name: str, device: str, steps: int, batch: int | None, perceptual: bool, amp: bool) -> None:
    import dataclasses
    import tempfile

    from livingportrait_backend.model.vgg import InputConvention, VGGFeatures
    from livingportrait_backend.training import distributed
    from livingportrait_backend.training.trainer import RunOptions, Trainer

    cfg = preset(preset_name)
    if batch:
        cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, batch_size=batch))
    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(cfg, RunOptions(data="synthetic:64:16", out=out, steps=steps, device=device, amp=amp,
                                     log_every=10**9, image_every=0, checkpoint_every=10**9),
                     distributed.setup(device))
        if perceptual:  # timing only: random weights cost the same as the published ones
            conv = InputConvention("bgr", 255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
            tr.content.vgg19 = VGGFeatures("vgg19", cfg.losses.vgg19_layers, conv).to(tr.device)
            tr.content.vggface = VGGFeatures("vggface", cfg.losses.vggface_layers, conv).to(tr.device)
        sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)
        data_times = []

        def step():
            t = time.perf_counter()
            tr.loader.batch(tr.step)  # the episode loading share (also done inside train_step)
            data_times.append(time.perf_counter() - t)
            tr.train_step()
            tr.step += 1

        times = _time(step, steps, sync)
        report(part="train", preset=preset_name, device=str(tr.device), batch=cfg.training.batch_size,
               k_shots=cfg.training.k_shots, perceptual=perceptual, bf16=tr.use_amp,
               steps_per_s_median=1 / statistics.median(times), steps_per_s_best=1 / min(times),
               episode_loading_s_median=statistics.median(data_times), threads=torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("cpu-generator", "cpu-train", "gpu"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write all rows to this file")
    args = parser.parse_args()
    if args.part.startswith("cpu"):
        torch.set_num_threads(args.threads)
    if args.part == "cpu-generator":
        bench_generator("cpu", (1, 8), [
            ("plain (spectral norm live)", None, False, None, False),
            ("spectral norm folded", "sn", False, None, False),
            ("spectral norm folded + channels_last", "sn", True, None, False),
            ("all folded + channels_last (the engine's CPU path)", "all", True, None, False),
            ("all folded + channels_last + bf16 autocast", "all", True, torch.bfloat16, False),
        ], args.repeats)
    elif args.part == "cpu-train":
        bench_train("small", "cpu", args.repeats, None, perceptual=False, amp=False)
    else:
        sync = torch.cuda.synchronize
        bench_generator("cuda", (1, 8), [
            ("all folded fp32", "all", False, None, False),
            ("all folded + channels_last + bf16", "all", True, torch.bfloat16, False),
            ("all folded + channels_last + fp16", "all", True, torch.float16, False),
            ("all folded + channels_last + bf16 + torch.compile", "all", True, torch.bfloat16, True),
        ], max(args.repeats, 20), sync)
        bench_train("paper", "cuda", max(args.repeats, 10), 8, perceptual=True, amp=True)
        bench_train("small", "cuda", max(args.repeats, 20), None, perceptual=False, amp=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(RESULTS, f, indent=1)


if __name__ == "__main__":
    main()
