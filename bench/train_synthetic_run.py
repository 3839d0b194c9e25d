"""A short meta-learning run on synthetic talking heads, plotted for docs/model.md.

    .venv/bin/python bench/train_synthetic_run.py --minutes 10 --out runs/synthetic_small

Trains the ``small`` preset on ``synthetic:N`` for a wall-clock budget (the trainer's --max-minutes:
it stops cleanly with a checkpoint), then writes
  docs/model_loss_curves.png  every loss term, the discriminator's scores and the held-out L1 over steps;
  docs/model_samples.png      unseen identities: one of the K shots, the target's landmark raster, the
                              target, and the frame generated from the shots' embedding and the raster;
  docs/model_synthetic_run.json  the numbers quoted in docs/model.md.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def plot_curves(metrics_path: str, untrained: float, png: str) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in open(metrics_path) if '"step"' in line]
    train = [r for r in rows if "loss_g/total" in r]
    evals = [r for r in rows if "eval/held_out_l1" in r]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    steps = [r["step"] for r in train]
    for key in sorted(k for k in train[0] if k.startswith("loss_g/")):
        axes[0].plot(steps, [r[key] for r in train], label=key.split("/")[1], lw=1)
    axes[0].set_yscale("log")
    axes[0].set_title("generator step: weighted loss terms")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [r["loss_d/hinge"] for r in train], label="D hinge", lw=1)
    axes[1].plot(steps, [r["score/real"] for r in train], label="D(real)", lw=1)
    axes[1].plot(steps, [r["score/fake"] for r in train], label="D(fake)", lw=1)
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set_title("discriminator")
    axes[1].legend(fontsize=8)
    axes[2].plot([0] + [r["step"] for r in evals], [untrained] + [r["eval/held_out_l1"] for r in evals], "o-")
    axes[2].set_title("held-out identities: L1 of the reconstruction ([-1, 1] images)")
    for ax in axes:
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return {"steps": steps[-1], "held_out_l1": [[0, untrained]] + [[r["step"], r["eval/held_out_l1"]] for r in evals],
            "steps_per_s_last": train[-1]["speed/steps_per_s"]}


def sample_grid(checkpoint_dir: str, spec: str, seed: int, png: str) -> None:
    import cv2
    import torch

    from livingportrait_backend.data.episodes import EpisodeLoader
    from livingportrait_backend.data.source import held_out
    from livingportrait_backend.model.checkpoint import load_model

    cfg, nets = load_model(checkpoint_dir)
    data = held_out(spec, cfg.resolution, seed=seed)
    loader = EpisodeLoader(data, cfg.training.k_shots, batch_size=1, seed=7)
    tiles = []
    with torch.no_grad():
        for i in range(6):
            ep = loader.batch(i)
            e = nets["embedder"](torch.from_numpy(ep.shots))
            fake = nets["generator"](torch.from_numpy(ep.target_raster), nets["generator"].project(e))[0].numpy()
            column = [ep.shots[0, 0, :3], ep.target_raster[0], ep.target_image[0], fake]
            tiles.append(np.concatenate([c.transpose(1, 2, 0) for c in column], axis=0))
    grid = ((np.concatenate(tiles, axis=1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(png, grid[:, :, ::-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--data", default="synthetic:400")
    parser.add_argument("--config", default="small")
    parser.add_argument("--out", default="runs/synthetic_small")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args()

    import torch

    from livingportrait_backend.cli import main as cli
    from livingportrait_backend.data.source import held_out
    from livingportrait_backend.model.config import preset
    from livingportrait_backend.model.networks import build_networks
    from livingportrait_backend.training.evaluate import reconstruction_error
    from livingportrait_backend.training.trainer import latest_checkpoint

    start = time.time()
    code = cli(["train", "--config", args.config, "--data", args.data, "--out", args.out, "--steps", "1000000",
                "--max-minutes", str(args.minutes), "--eval-every", str(args.eval_every), "--threads", str(args.threads),
                "--log-every", "10", "--checkpoint-every", "500", "--batch-size", str(args.batch_size)])
    assert code == 0
    cfg = preset(args.config)
    torch.manual_seed(0)  # the trainer's seed: these are the run's networks before the first step
    fresh = build_networks(cfg.with_num_videos(int(args.data.split(":")[1])))
    untrained = reconstruction_error(fresh["embedder"], fresh["generator"], held_out(args.data, cfg.resolution),
                                     cfg.training.k_shots)
    os.makedirs(args.docs, exist_ok=True)
    summary = plot_curves(os.path.join(args.out, "metrics.jsonl"), untrained,
                          os.path.join(args.docs, "model_loss_curves.png"))
    sample_grid(latest_checkpoint(args.out), args.data, 0, os.path.join(args.docs, "model_samples.png"))
    summary.update(config=args.config, data=args.data, minutes=args.minutes, threads=args.threads,
                   batch_size=args.batch_size,
                   wall_s=round(time.time() - start, 1))
    with open(os.path.join(args.docs, "model_synthetic_run.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
