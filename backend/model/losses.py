"""The meta-learning losses: content (VGG19 + VGGFace), hinge adversarial, feature matching, embedding match.

Weights default to the paper's v2 values. When the perceptual weight files are not supplied, the
content loss falls back to a pixel L1 term (``fallback_pixel_weight``): training runs, but it is not the
paper's loss, and the trainer says so at start and in its logs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LossConfig:
    vgg19_weight: float = 1.5e-1
    vggface_weight: float = 2.5e-2
    vgg19_layers: tuple[int, ...] = (1, 6, 11, 20, 29)  # ReLU outputs after conv1_1, 2_1, 3_1, 4_1, 5_1
    vggface_layers: tuple[int, ...] = (1, 6, 11, 18, 25)  # the same five ReLUs in the 16-layer stack
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 10.0  # lambda_FM
    embedding_match_weight: float = 10.0  # lambda_MCH
    pixel_weight: float = 0.0  # an optional extra pixel L1 term (not in the paper)
    fallback_pixel_weight: float = 10.0  # pixel L1 used instead of a missing perceptual net


class ContentLoss(nn.Module):
    """L_CNT(fake, real): images (B, 3, H, W) RGB in [-1, 1] -> dict of weighted scalar terms.

    ``vgg19``/``vggface`` are fixed VGGFeatures or None; for each missing one, ``fallback_pixel_weight``
    times the pixel L1 stands in (once, however many are missing).
    """

    def __init__(self, cfg: LossConfig, vgg19: nn.Module | None, vggface: nn.Module | None):
        super().__init__()
        self.cfg = cfg
        self.vgg19 = vgg19
        self.vggface = vggface

    @classmethod
    def from_files(cls, cfg: LossConfig, vgg19: str | None, vggface: str | None) -> "ContentLoss":
        """With the perceptual nets loaded from converted safetensors files (None: that net's fallback)."""
        from .vgg import load_vgg_features

        return cls(cfg, load_vgg_features(vgg19, "vgg19", cfg.vgg19_layers) if vgg19 else None,
                   load_vgg_features(vggface, "vggface", cfg.vggface_layers) if vggface else None)

    @property
    def uses_fallback(self) -> bool:
        return self.vgg19 is None or self.vggface is None

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for name, net, weight in (("vgg19", self.vgg19, self.cfg.vgg19_weight),
                                  ("vggface", self.vggface, self.cfg.vggface_weight)):
            if net is None or weight == 0:
                continue
            # Real features are targets only; the feature net itself is frozen.
            with torch.no_grad():
                real_feats = net(real)
            fake_feats = net(fake)
            terms[name] = weight * sum(F.l1_loss(f.float(), r.float()) for f, r in zip(fake_feats, real_feats))
        pixel = self.cfg.pixel_weight + (self.cfg.fallback_pixel_weight if self.uses_fallback else 0.0)
        if pixel:
            terms["pixel"] = pixel * F.l1_loss(fake.float(), real.float())
        return terms


def hinge_discriminator(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: mean(max(0, 1 - D(x))) + mean(max(0, 1 + D(x-hat)))."""
    return F.relu(1.0 - real_score.float()).mean() + F.relu(1.0 + fake_score.float()).mean()


def adversarial_generator(fake_score: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial term: -mean D(x-hat)."""
    return -fake_score.float().mean()


def feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """L_FM: sum over D's blocks of the mean L1 between real (as fixed targets) and fake activations."""
    return sum(F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fake_feats, real_feats))


def embedding_match(w: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """L_MCH without its weight: mean absolute difference between W_i and e-hat_i, both (B, N).

    The mean (not the sum over N) keeps lambda_MCH = 10 on the same scale as the other terms, as the
    lab's public reimplementations do.
    """
    return F.l1_loss(w.float(), e.float())
