"""Few-shot adaptation to a new face (Zakharov et al. 2019, section 3.3): embed, then optionally fine-tune.

Given T shots (frame + landmark raster) of a face the meta-learned model never saw:
  - e_NEW = the embedder's mean vector over the T shots;
  - psi' (every AdaIN parameter of the generator) starts at P e_NEW and is trained directly, as are the
    generator's own weights (P itself is no longer used);
  - the discriminator scores D'(x, y) = V(x, y)^T w' + b with w' starting at w0 + e_NEW; V, w' and b
    are trained with the hinge loss;
  - the generator side minimises L_CNT + L_ADV (adversarial term plus feature matching; no L_MCH, as
    the paper says: there is no per-video W any more).
Each step draws ``batch`` of the T shots (deterministic by seed) and reconstructs them from their own
rasters. One discriminator step per generator step (the paper states no ratio for fine-tuning).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from livingportrait_backend.model.config import ModelConfig
from livingportrait_backend.model.gan_step import discriminator_hinge, frozen, generator_terms, optimizer_step
from livingportrait_backend.model.losses import ContentLoss
from livingportrait_backend.model.personalized import Personalization

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FineTuneOptions:
    """``steps`` generator steps (0: embed only); ``batch`` shots per step; learning rates default to the
    checkpoint's meta-learning rates; ``vgg19``/``vggface`` converted perceptual weights (None: the
    content loss's documented pixel-L1 fallback)."""

    steps: int = 0
    batch: int = 4
    seed: int = 0
    lr_generator: float | None = None
    lr_discriminator: float | None = None
    vgg19: str | None = None
    vggface: str | None = None

    def key(self) -> dict:
        """What the personalised result depends on (for the on-disk cache key)."""
        return {"steps": self.steps, "batch": self.batch if self.steps else 0, "seed": self.seed,
                "lr_generator": self.lr_generator, "lr_discriminator": self.lr_discriminator,
                "vgg19": self.vgg19, "vggface": self.vggface}


@torch.no_grad()
def embed_identity(embedder: torch.nn.Module, generator: torch.nn.Module, shots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """shots (T, 6, S, S) frame ⊕ raster in [-1, 1] -> (e_NEW (1, N), psi = P e_NEW (1, psi_size))."""
    e = embedder.embed_shots(shots).mean(dim=0, keepdim=True)
    return e, generator.project(e)


def personalize(cfg: ModelConfig, nets: dict, shots: np.ndarray, opts: FineTuneOptions,
                device: torch.device | str = "cpu", on_progress: ProgressFn | None = None) -> Personalization:
    """Adapt the meta-learned ``nets`` (eval-mode E, G, D on ``device``; left unchanged) to one face.

    ``shots`` float32 (T, 6, S, S): each shot's RGB frame then its landmark raster, both in [-1, 1].
    Returns the personalisation: psi' and, when ``opts.steps`` > 0, the fine-tuned generator weights.
    ``on_progress("finetune", step, steps)`` is called before every step (it may raise to cancel).
    """
    report = on_progress or (lambda stage, done, total: None)
    device = torch.device(device)
    x = torch.from_numpy(np.ascontiguousarray(shots, np.float32)).to(device)
    e, psi = embed_identity(nets["embedder"], nets["generator"], x)
    if opts.steps <= 0:
        return Personalization(psi.float().cpu(), None, {"steps": 0, "shots": int(len(shots))})

    start = time.monotonic()
    gen = copy.deepcopy(nets["generator"]).train()
    disc = copy.deepcopy(nets["discriminator"]).train()
    psi_p = torch.nn.Parameter(psi.detach().clone())
    w_p = torch.nn.Parameter((disc.w0.detach() + e[0]).clone())
    # P and the per-video W are not part of the personalised model.
    gen.projection.requires_grad_(False)
    disc.W.requires_grad_(False)
    disc.w0.requires_grad_(False)
    t = cfg.training
    lr_g = opts.lr_generator if opts.lr_generator is not None else t.lr_generator
    lr_d = opts.lr_discriminator if opts.lr_discriminator is not None else t.lr_discriminator
    opt_g = torch.optim.Adam([psi_p] + [p for p in gen.parameters() if p.requires_grad], lr=lr_g, betas=t.betas)
    opt_d = torch.optim.Adam([w_p] + [p for p in disc.parameters() if p.requires_grad], lr=lr_d, betas=t.betas)
    lw = cfg.losses
    content = ContentLoss.from_files(lw, opts.vgg19, opts.vggface).to(device)

    def score(pair: torch.Tensor):
        """D' with the personalised w'."""
        return disc.score_with(pair, w_p)

    rng = np.random.default_rng(opts.seed)
    count = len(shots)
    batch = min(max(int(opts.batch), 1), count)
    losses: list[float] = []
    for step in range(opts.steps):
        report("finetune", step, opts.steps)
        pick = torch.from_numpy(rng.choice(count, batch, replace=False)).to(device)
        real, raster = x[pick, :3], x[pick, 3:]
        with frozen(disc):
            fake = gen(raster, psi_p)
            terms, real_x, fake_x = generator_terms(content, lw, score, fake, real, raster)
            loss_g = sum(terms.values())
            optimizer_step(opt_g, loss_g)
        loss_d, _, _ = discriminator_hinge(score, real_x, fake_x)
        optimizer_step(opt_d, loss_d)
        losses.append(float(loss_g.detach()))
    report("finetune", opts.steps, opts.steps)
    gen.eval()
    info = {"steps": opts.steps, "shots": count, "batch": batch, "seconds": round(time.monotonic() - start, 3),
            "loss_g_first": losses[0], "loss_g_last": losses[-1],
            "content_loss": "fallback_pixel_l1" if content.uses_fallback else "vgg19+vggface"}
    state = {k: v.detach().float().cpu().clone() for k, v in gen.state_dict().items()}
    return Personalization(psi_p.detach().float().cpu(), state, info)
