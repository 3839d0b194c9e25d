"""A model adapted to one face: the identity's AdaIN parameters psi' and, after fine-tuning, its own
generator weights. What the few-shot engine renders with, and what the personalised-model cache stores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .generator import Generator, GeneratorConfig
from .residual import AdaUpBlock, DownBlock
from .spectral_norm import fold_spectral_norm


@dataclass
class Personalization:
    """``psi`` float32 (1, psi_size) on the CPU; ``generator_state`` the fine-tuned generator's state dict
    (spectral-norm tensors included) or None to keep the checkpoint's generator; ``info`` JSON-able
    facts about how it was made (steps, shots, seconds, losses)."""

    psi: torch.Tensor
    generator_state: dict[str, torch.Tensor] | None
    info: dict


def fold_for_inference(net: nn.Module) -> nn.Module:
    """Bake into plain weights, in place, what inference need not compute per frame: spectral norm (the
    division and power iteration), and each block's pooling or nearest upsampling into its conv (2.25x
    fewer multiply-adds there). The same function up to float rounding; the folded network is for
    rendering only, never for training or for a checkpoint. Returns ``net`` in eval mode."""
    fold_spectral_norm(net.eval())
    for module in net.modules():
        if isinstance(module, (DownBlock, AdaUpBlock)):
            module.fold_resampling()
    return net


def output_images(y: torch.Tensor) -> np.ndarray:
    """The generator's output (B, 3, S, S) in [-1, 1], any dtype or device -> float32 (B, S, S, 3) sRGB
    in [0, 1] on the CPU."""
    return ((y.float().clamp(-1, 1) + 1) * 0.5).permute(0, 2, 3, 1).cpu().numpy()


class PersonalizedGenerator(nn.Module):
    """Inference wrapper: ``forward(raster)`` raster (B, 3, S, S) in [-1, 1] -> image (B, 3, S, S) RGB in
    [-1, 1] for the personalised identity. psi is a buffer computed once per job; the generator is
    folded for inference (``fold_for_inference``)."""

    def __init__(self, generator: Generator, psi: torch.Tensor):
        super().__init__()
        self.generator = fold_for_inference(generator)
        self.register_buffer("psi", psi.detach().clone())

    @classmethod
    def build(cls, cfg: GeneratorConfig, base: Generator, personal: Personalization) -> "PersonalizedGenerator":
        """From the checkpoint's generator ``base`` (left untouched) and a personalisation."""
        gen = Generator(cfg)
        gen.load_state_dict(base.state_dict() if personal.generator_state is None else personal.generator_state)
        device = next(base.parameters()).device
        return cls(gen.to(device), personal.psi.to(device))

    def forward(self, raster: torch.Tensor) -> torch.Tensor:
        return self.generator(raster, self.psi)
