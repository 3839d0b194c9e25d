"""``livingportrait train``: meta-learn the paper's embedder, generator and discriminator."""
from __future__ import annotations

import argparse

HELP = ("Meta-learn the talking-head model (embedder, AdaIN generator, projection discriminator) on prepared "
        "videos or synthetic faces; multi-GPU/multi-node with torchrun")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="paper", help="model preset: paper (256 px), small (64 px) or tiny (tests)")
    parser.add_argument("--data", help="a folder from `livingportrait prepare`, or synthetic:VIDEOS[:FRAMES] "
                                       "(e.g. synthetic:200) for procedural faces")
    parser.add_argument("--out", help="run folder: checkpoints, TensorBoard logs, metrics.jsonl; an existing "
                                      "run there is resumed")
    parser.add_argument("--steps", type=int, default=100000, help="train until this many generator steps")
    parser.add_argument("--batch-size", type=int, help="episodes per step over all processes (preset default)")
    parser.add_argument("--k-shots", type=int, help="frames per episode fed to the embedder (preset default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-amp", action="store_true", help="train in fp32 on GPUs too (default: bf16 autocast)")
    parser.add_argument("--vgg19", help="VGG19 weights converted to safetensors (convert-weights)")
    parser.add_argument("--vggface", help="VGGFace weights converted to safetensors (convert-weights)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--image-every", type=int, default=200)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=0,
                        help="log the held-out reconstruction L1 every N steps (synthetic data only)")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="stop cleanly with a checkpoint after this many minutes (a job's time limit)")
    parser.add_argument("--loader-workers", type=int, default=-1,
                        help="threads preparing the next episodes (default: 4 on GPU, none on CPU)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (torch default otherwise)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the networks, print parameter counts and generator multiply-adds, exit")


def _dry_run(cfg) -> int:
    import torch

    from livingportrait_backend.model.macs import count_macs, count_parameters
    from livingportrait_backend.model.networks import build_networks

    nets = build_networks(cfg)
    g = nets["generator"]
    print(f"config {cfg.preset}: {cfg.resolution}x{cfg.resolution}, embedding {cfg.embedder.embed_dim}, "
          f"K = {cfg.training.k_shots}")
    print(f"  embedder       {count_parameters(nets['embedder']):>12,d} parameters")
    print(f"  generator      {count_parameters(g):>12,d} parameters "
          f"(projection P {g.projection.weight.numel():,d}; psi has {g.psi_size:,d} values)")
    per_video = cfg.discriminator.embed_dim
    d_base = count_parameters(nets["discriminator"]) - per_video * cfg.discriminator.num_videos
    print(f"  discriminator  {d_base:>12,d} parameters + {per_video} per training video (W)")
    s = cfg.resolution
    g.eval()
    raster = torch.zeros(1, cfg.generator.in_channels, s, s)
    psi = torch.zeros(1, g.psi_size)
    macs = count_macs(g, raster, psi)
    print(f"  generator multiply-adds per frame: {macs / 1e9:.2f} G (conv + linear + attention products; "
          "psi precomputed per identity)")
    return 0


def run(args) -> int:
    import dataclasses

    from livingportrait_backend.model.config import preset
    from livingportrait_wire.errors import BadInput

    for flag, value in (("--batch-size", args.batch_size), ("--k-shots", args.k_shots)):
        if value is not None and value < 1:
            raise BadInput(f"{flag} {value}: give a whole number of at least 1")
    cfg = preset(args.config)
    t = cfg.training
    if args.batch_size:
        t = dataclasses.replace(t, batch_size=args.batch_size)
    if args.k_shots:
        t = dataclasses.replace(t, k_shots=args.k_shots)
    cfg = dataclasses.replace(cfg, training=t)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.dry_run:
        return _dry_run(cfg)
    if not args.data or not args.out:
        raise BadInput("train needs --data (a prepared folder or synthetic:N) and --out RUN_FOLDER "
                       "(or --dry-run to only build the networks)")
    if args.steps < 1:
        raise BadInput(f"--steps {args.steps}: must be at least 1")

    from livingportrait_backend.training import distributed
    from livingportrait_backend.training.trainer import RunOptions, Trainer

    opts = RunOptions(data=args.data, out=args.out, steps=args.steps, seed=args.seed, device=args.device,
                      amp=not args.no_amp, vgg19=args.vgg19, vggface=args.vggface, log_every=args.log_every,
                      image_every=args.image_every, checkpoint_every=args.checkpoint_every,
                      eval_every=args.eval_every, max_minutes=args.max_minutes,
                      loader_workers=args.loader_workers)
    group = distributed.setup(args.device)
    try:
        return Trainer(cfg, opts, group).run()
    finally:
        distributed.teardown()
