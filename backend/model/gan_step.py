"""The adversarial step, beside the networks it trains (as FOMM keeps its losses with its models):
the generator's terms, the discriminator's hinge, and the optimiser step, used alike by meta-learning
(``training/trainer.py``) and few-shot fine-tuning (``training/finetune.py``).

The two loops differ only in what they hand in: how D scores an image ⊕ raster pair (``score``: with
the video's W_i in meta-learning, with the personalised w' in fine-tuning), and meta-learning's extra
embedding-match terms, which it adds to the returned dict. Images and rasters are (B, 3, S, S) in
[-1, 1].
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from .losses import ContentLoss, LossConfig, adversarial_generator, feature_matching, hinge_discriminator

ScoreFn = Callable[[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]  # (B, 6, S, S) -> (B,), feats


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s parameters take no gradient inside the block (D during the generator step); each
    parameter's own flag comes back after, so parameters frozen for good stay frozen."""
    flags = [(p, p.requires_grad) for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def generator_terms(content: ContentLoss, weights: LossConfig, score: ScoreFn, fake: torch.Tensor,
                    real: torch.Tensor, raster: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The generator's weighted loss terms for ``fake`` made from ``raster`` to match ``real``: L_CNT's
    terms, ``adversarial`` (L_ADV) and ``feature_matching`` (L_FM, real features as fixed targets).

    Returns (terms, real_x, fake_x): the pairs real ⊕ raster and fake ⊕ raster, for the discriminator step.
    """
    real_x = torch.cat([real, raster], dim=1)
    fake_x = torch.cat([fake, raster], dim=1)
    with torch.no_grad():
        _, real_feats = score(real_x)
    fake_score, fake_feats = score(fake_x)
    terms = content(fake, real)
    terms["adversarial"] = weights.adversarial_weight * adversarial_generator(fake_score)
    terms["feature_matching"] = weights.feature_matching_weight * feature_matching(real_feats, fake_feats)
    return terms, real_x, fake_x


def discriminator_hinge(score: ScoreFn, real_x: torch.Tensor,
                        fake_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D's hinge loss on the reals and the detached fakes, scored in one batched forward.

    Returns (hinge, real scores, fake scores)."""
    scores, _ = score(torch.cat([real_x, fake_x.detach()], dim=0))
    real_score, fake_score = scores.chunk(2)
    return hinge_discriminator(real_score, fake_score), real_score, fake_score


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
