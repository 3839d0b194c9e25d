"""The meta-learning loop (Zakharov et al. 2019, section 3.2), single-process or DDP under torchrun.

Per step: one generator step (E and G minimise L_CNT + L_ADV + L_MCH on a batch of episodes), then
``d_steps_per_g_step`` discriminator steps (hinge loss on the same real frames and the detached fakes;
W_i is also pulled towards the detached e-hat_i, the discriminator's half of L_MCH). TTUR Adam. A fresh
run starts each W_i at E's embedding of video i (see ``_init_video_embeddings``).
bf16 autocast on GPUs. Checkpoints (safetensors + JSON, optimizer moments and RNG states included)
make a resumed run continue exactly; Ctrl-C finishes the current step, saves and exits cleanly.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from livingportrait_backend.data.episodes import EpisodeLoader, Prefetcher
from livingportrait_backend.data.source import held_out, open_dataset
from livingportrait_backend.model import checkpoint
from livingportrait_backend.model.config import ModelConfig
from livingportrait_backend.model.gan_step import discriminator_hinge, frozen, generator_terms, optimizer_step
from livingportrait_backend.model.losses import ContentLoss, embedding_match
from livingportrait_backend.model.networks import build_networks
from livingportrait_backend.model_input import shot_input
from livingportrait_backend.progress import Progress
from livingportrait_wire.atomic_write import write_bytes_atomic
from livingportrait_wire.errors import BadInput

from . import distributed
from .evaluate import reconstruction_error

CHECKPOINTS = "checkpoints"
LATEST = "latest"
KEEP_CHECKPOINTS = 2


@dataclass
class RunOptions:
    data: str
    out: str
    steps: int
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on GPUs (CPU runs stay fp32)
    vgg19: str | None = None  # converted safetensors weights; None -> documented pixel-L1 fallback
    vggface: str | None = None
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 500
    eval_every: int = 0  # held-out reconstruction error every N steps (synthetic data only); 0 = never
    max_minutes: float = 0.0  # stop cleanly (with a checkpoint) after this much wall time; 0 = no limit
    loader_workers: int = -1  # threads building the next episodes; -1 = 4 on GPU, 0 (inline) on CPU


class TalkingHead(nn.Module):
    """Wires E and G for training: shots (B, K, 6, S, S), target raster (B, 3, S, S) ->
    (fake (B, 3, S, S), e-hat (B, N)). One module so DDP reduces both networks' gradients together."""

    def __init__(self, embedder: nn.Module, generator: nn.Module):
        super().__init__()
        self.embedder = embedder
        self.generator = generator

    def forward(self, shots: torch.Tensor, raster: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.embedder(shots)
        return self.generator(raster, self.generator.project(e)), e


def latest_checkpoint(out: str) -> str | None:
    """The newest complete checkpoint folder of run ``out``, or None."""
    pointer = os.path.join(out, CHECKPOINTS, LATEST)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        folder = os.path.join(out, CHECKPOINTS, f.read().strip())
    return folder if os.path.isdir(folder) else None


class Trainer:
    def __init__(self, cfg: ModelConfig, opts: RunOptions, group: distributed.ProcessGroup):
        self.opts = opts
        self.group = group
        self.device = group.device
        self.log = _Log(opts.out, group.is_main)
        self.dataset = open_dataset(opts.data, cfg.resolution, seed=opts.seed)
        self.held_out = held_out(opts.data, cfg.resolution, seed=opts.seed)
        self.cfg = cfg = cfg.with_num_videos(len(self.dataset))
        t = cfg.training
        self.loader = EpisodeLoader(self.dataset, t.k_shots, t.batch_size, seed=opts.seed,
                                    rank=group.rank, world_size=group.world_size)
        torch.manual_seed(opts.seed)  # identical initial weights on every rank
        nets = build_networks(cfg)
        self.embedder, self.generator, self.discriminator = (nets[k].to(self.device) for k in
                                                             ("embedder", "generator", "discriminator"))
        self.head = TalkingHead(self.embedder, self.generator)
        self.opt_g = torch.optim.Adam(self.head.parameters(), lr=t.lr_generator, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=t.lr_discriminator, betas=t.betas)
        self.content = ContentLoss.from_files(cfg.losses, opts.vgg19, opts.vggface).to(self.device)
        if self.content.uses_fallback:
            missing = [n for n, p in (("VGG19", opts.vgg19), ("VGGFace", opts.vggface)) if not p]
            msg = (f"WARNING: no {' / '.join(missing)} weights given (--vgg19/--vggface): the content loss "
                   f"falls back to pixel L1 x {cfg.losses.fallback_pixel_weight}. This is NOT the paper's "
                   "perceptual loss; expect blurrier results. Convert published weights with "
                   "`livingportrait convert-weights` and pass them to train.")
            self.log.warn(msg)
        self.step = 0
        if not self._resume():
            self._init_video_embeddings()
        if group.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.head_ddp = DDP(self.head, device_ids=ids)
            self.d_ddp = DDP(self.discriminator, device_ids=ids)
        else:
            self.head_ddp, self.d_ddp = self.head, self.discriminator
        self.use_amp = opts.amp and self.device.type == "cuda"
        workers = opts.loader_workers if opts.loader_workers >= 0 else (4 if self.device.type == "cuda" else 0)
        self.episodes = Prefetcher(self.loader, workers)
        self._stop = False

    @torch.no_grad()
    def _init_video_embeddings(self, chunk: int = 64) -> None:
        """Start each W_i at E's embedding of video i's first frame (one E forward per video).

        E ends in ReLU after sum pooling, so e-hat >= 0 and is of order 1, while W's generic init is
        ~N(0, 0.02). With W_i there, L_MCH (lambda 10, under Adam) pushes every e-hat entry down to W_i,
        i.e. below zero: within ~20 steps every pre-activation is negative, the ReLU passes no gradient
        and E outputs 0 for every face (measured: tiny preset 39 % -> 0 % non-zero entries). Starting
        W_i at the embedding it is matched to mirrors the paper's fine-tuning, which starts w' at
        w0 + e_NEW; L_MCH then begins near its minimum and keeps e-hat alive and identity-specific.
        Under DDP every rank computes the same values, and DDP also broadcasts rank 0's parameters.
        """
        s = self.cfg.resolution
        W = self.discriminator.W
        for first in range(0, len(self.dataset), chunk):
            videos = range(first, min(first + chunk, len(self.dataset)))
            x = np.stack([shot_input(im, p, s) for im, p in (self.dataset.frame(v, 0) for v in videos)])
            W[first:first + len(videos)] = self.embedder.embed_shots(torch.from_numpy(x).to(self.device))

    def _resume(self) -> bool:
        """Load the run's latest checkpoint, if any; True when one was loaded."""
        folder = latest_checkpoint(self.opts.out)
        if folder is None:
            return False
        saved_cfg, nets = checkpoint.load_model(folder)
        if saved_cfg.to_dict() != self.cfg.to_dict():
            raise BadInput(f"{folder}: the run was started with a different model config or data "
                           f"(preset {saved_cfg.preset!r}, {saved_cfg.discriminator.num_videos} videos); "
                           "use a new --out folder or the same --config and --data")
        for mine, theirs in ((self.embedder, nets["embedder"]), (self.generator, nets["generator"]),
                             (self.discriminator, nets["discriminator"])):
            mine.load_state_dict(theirs.state_dict())
        state = checkpoint.load_training_state(folder, {"g": self.opt_g, "d": self.opt_d})
        self.step = int(state["step"])
        self.log.info(f"resumed from {folder} at step {self.step}")
        return True

    # -- one step -------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp)

    def train_step(self) -> dict[str, float]:
        lw = self.cfg.losses
        ep = self.episodes.batch(self.step)
        dev = self.device
        shots = torch.from_numpy(ep.shots).to(dev, non_blocking=True)
        real = torch.from_numpy(ep.target_image).to(dev, non_blocking=True)
        raster = torch.from_numpy(ep.target_raster).to(dev, non_blocking=True)
        video = torch.from_numpy(ep.video).to(dev)
        d = self.discriminator

        # Generator step. D is called unwrapped (no DDP sync) and frozen: only E and G learn here.
        with frozen(d):
            with self._autocast():
                fake, e = self.head_ddp(shots, raster)
                terms, real_x, fake_x = generator_terms(self.content, lw, lambda x: d(x, video), fake, real, raster)
                terms["embedding_match"] = lw.embedding_match_weight * embedding_match(d.W[video].detach(), e)
            loss_g = sum(terms.values())
            optimizer_step(self.opt_g, loss_g)

        # Discriminator steps on the same reals and the detached fakes; L_MCH also pulls W_i to e-hat.
        both_video = torch.cat([video, video])
        e_target = e.detach()
        for _ in range(self.cfg.training.d_steps_per_g_step):
            with self._autocast():
                hinge, real_score, fake_score_d = discriminator_hinge(lambda x: self.d_ddp(x, both_video),
                                                                      real_x, fake_x)
                mch_d = lw.embedding_match_weight * embedding_match(d.W[video], e_target)
            optimizer_step(self.opt_d, hinge + mch_d)

        out = {f"loss_g/{k}": float(v.detach()) for k, v in terms.items()}
        out["loss_g/total"] = float(loss_g.detach())
        out["loss_d/hinge"] = float(hinge.detach())
        out["loss_d/embedding_match"] = float(mch_d.detach())
        out["score/real"] = float(real_score.detach().float().mean())
        out["score/fake"] = float(fake_score_d.detach().float().mean())
        self._last = (real.detach(), fake.detach(), raster.detach())
        return out

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> int:
        opts = self.opts
        if self.step >= opts.steps:
            self.log.info(f"already at step {self.step} >= --steps {opts.steps}; nothing to do")
            return 0
        previous = signal.signal(signal.SIGINT, self._on_interrupt)
        progress = Progress(opts.steps, "train") if self.group.is_main else None
        start, first = time.monotonic(), self.step
        try:
            while self.step < opts.steps:
                losses = self.train_step()
                self.step += 1
                if not all(math.isfinite(v) for v in losses.values()):
                    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
                    raise RuntimeError(f"step {self.step}: non-finite losses {bad}; lower the learning "
                                       "rates or resume from the last checkpoint")
                rate = (self.step - first) / max(time.monotonic() - start, 1e-9)
                if self.step % opts.log_every == 0 or self.step == opts.steps:
                    self.log.scalars(self.step, {**losses, "speed/steps_per_s": rate})
                if opts.image_every and self.step % opts.image_every == 0:
                    self.log.images(self.step, *self._last)
                if opts.eval_every and self.held_out is not None and self.step % opts.eval_every == 0:
                    err = reconstruction_error(self.embedder, self.generator, self.held_out,
                                               self.cfg.training.k_shots, device=self.device)
                    self.log.scalars(self.step, {"eval/held_out_l1": err})
                out_of_time = bool(opts.max_minutes) and time.monotonic() - start > 60 * opts.max_minutes
                stop = distributed.any_rank(self._stop or out_of_time, self.group)
                if stop or self.step % opts.checkpoint_every == 0 or self.step == opts.steps:
                    self.save()
                if progress:
                    progress.update(self.step, f"G {losses['loss_g/total']:.3f} D {losses['loss_d/hinge']:.3f}")
                if stop:
                    why = "on request" if self._stop else f"after --max-minutes {opts.max_minutes:g}"
                    self.log.info(f"stopped at step {self.step} {why}; checkpoint saved; "
                                  "run the same command again to resume")
                    break
        finally:
            signal.signal(signal.SIGINT, previous)
            self.episodes.close()
            if progress:
                progress.close()
            self.log.close()
        return 0

    def _on_interrupt(self, signum, frame) -> None:
        if self._stop:  # a second Ctrl-C: give up on the clean stop
            raise KeyboardInterrupt
        self._stop = True
        if self.group.is_main:
            print("\ntrain: stopping after this step (Ctrl-C again to abort without saving)", file=sys.stderr)

    def replica_checksum(self) -> float:
        """A float64 sum over every parameter and buffer: equal on all ranks while replicas agree."""
        total = 0.0
        for net in (self.embedder, self.generator, self.discriminator):
            for t in list(net.parameters()) + list(net.buffers()):
                total += float(t.detach().double().sum()) + float(t.detach().double().abs().sum())
        return total

    def save(self) -> None:
        sums = distributed.gather_floats(self.replica_checksum(), self.group)
        if any(s != sums[0] for s in sums):
            raise RuntimeError(f"step {self.step}: DDP replicas diverged (checksums {sums}); "
                               "this is a bug, please report it")
        if self.group.is_main:
            root = os.path.join(self.opts.out, CHECKPOINTS)
            name = f"step_{self.step:08d}"
            folder = os.path.join(root, name)
            checkpoint.save_model(folder, self.cfg, {"embedder": self.embedder, "generator": self.generator,
                                                     "discriminator": self.discriminator})
            checkpoint.save_training_state(folder, {"g": self.opt_g, "d": self.opt_d},
                                           {"step": self.step, "seed": self.opts.seed, "data": self.opts.data,
                                            "world_size": self.group.world_size, "replica_checksums": sums,
                                            "content_loss": "fallback_pixel_l1" if self.content.uses_fallback
                                            else "vgg19+vggface"})
            write_bytes_atomic(os.path.join(root, LATEST), name.encode())
            done = sorted(f for f in os.listdir(root) if f.startswith("step_") and f != name)
            for old in done[:-(KEEP_CHECKPOINTS - 1)] if KEEP_CHECKPOINTS > 1 else done:
                shutil.rmtree(os.path.join(root, old), ignore_errors=True)
        if self.group.distributed:
            torch.distributed.barrier()


class _Log:
    """TensorBoard scalars and image grids plus ``metrics.jsonl`` (rank 0 only); messages to stderr."""

    def __init__(self, out: str, main: bool):
        self.main = main
        self.writer = None
        self.metrics = None
        if main:
            os.makedirs(out, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(os.path.join(out, "logs"))
            self.metrics = open(os.path.join(out, "metrics.jsonl"), "a")

    def info(self, msg: str) -> None:
        if self.main:
            print(f"train: {msg}", file=sys.stderr)
            self.writer.add_text("log", msg)

    def warn(self, msg: str) -> None:
        if self.main:
            warnings.warn(msg, stacklevel=2)
            print(f"train: {msg}", file=sys.stderr)
            self.writer.add_text("warning", msg)
            self.metrics.write(json.dumps({"warning": msg}) + "\n")
            self.metrics.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.main:
            return
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.metrics.write(json.dumps({"step": step, **values}) + "\n")
        self.metrics.flush()

    def images(self, step: int, real: torch.Tensor, fake: torch.Tensor, raster: torch.Tensor, n: int = 4) -> None:
        """Rows: target, raster, generated; up to ``n`` episodes side by side; RGB in [0, 1]."""
        if not self.main:
            return
        rows = [torch.cat(list(t[:n].float().cpu()), dim=2) for t in (real, raster, fake)]
        grid = ((torch.cat(rows, dim=1) + 1) / 2).clamp(0, 1)
        self.writer.add_image("episodes/target_raster_generated", grid, step)

    def close(self) -> None:
        if self.main:
            self.writer.flush()
            self.writer.close()
            self.metrics.close()
