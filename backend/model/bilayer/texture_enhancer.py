"""The texture enhancer: refines the identity's texture so that, warped to the source pose and added to
the low-frequency layer, it reproduces the source portrait better. A few unrolled steps, each feeding the
network the texture and the gradient of the reconstruction error with respect to it; run once per
portrait. The gradient needs autograd, so this runs under ``torch.no_grad()`` with grad re-enabled
locally, never under ``torch.inference_mode()``."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import PlainBlock, act, plain_stack
from .texture_warp import warp_texture


@dataclass(frozen=True)
class TextureEnhancerConfig:
    image_size: int = 256
    channels: int = 64
    max_channels: int = 128
    bottleneck_size: int = 128  # spatial size of the residual blocks in the middle
    blocks: int = 8
    steps: int = 4              # unrolled refinement steps
    loss: str = "sse"           # the guiding reconstruction error: "sse" (half sum of squares) or "l1"


class TextureEnhancer(nn.Module):
    def __init__(self, cfg: TextureEnhancerConfig):
        super().__init__()
        self.cfg = cfg
        downs = int(math.log2(cfg.image_size // cfg.bottleneck_size))
        self.stem = nn.Conv2d(6, cfg.channels, 3, padding=1)
        down, width = plain_stack(cfg.channels, cfg.channels, cfg.max_channels, range(1, downs + 1), "down")
        self.down = nn.Sequential(*down)
        self.middle = nn.Sequential(*[PlainBlock(width, width) for _ in range(cfg.blocks)])
        up, width = plain_stack(width, cfg.channels, cfg.max_channels, range(downs - 1, -1, -1), "up")
        self.up = nn.Sequential(*up)
        self.to_rgb = nn.Conv2d(width, 3, 3, padding=1)

    def step(self, texture: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        """One refinement: (1, 3, S, S) texture and its error gradient -> the texture's update (tanh'd)."""
        h = self.up(self.middle(self.down(self.stem(torch.cat([texture, gradient], 1)))))
        return torch.tanh(self.to_rgb(act(h))[:, :3])

    def _error(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.cfg.loss == "l1":
            return (target - prediction).abs().sum()
        return ((target - prediction) ** 2).sum() / 2

    def forward(self, texture: torch.Tensor, source: torch.Tensor, source_uv: torch.Tensor,
                source_lf: torch.Tensor, source_seg: torch.Tensor | None) -> torch.Tensor:
        """``texture`` (1, 3, S, S); the source portrait (1, 3, S, S) in [-1, 1]; the inference generator's
        output for the source pose: UVs (1, S, S, 2), low-frequency image (1, 3, S, S) and segmentation
        (1, 1, S, S) in [0, 1] or None -> the enhanced texture (1, 3, S, S)."""
        if source_seg is not None:
            source = source * source_seg - (1 - source_seg)
        for _ in range(self.cfg.steps):
            with torch.enable_grad():
                probe = texture.detach().clone().requires_grad_(True)
                guess = source_lf.detach() + warp_texture(probe, source_uv.detach())
                if source_seg is not None:
                    guess = guess * source_seg - (1 - source_seg)
                gradient, = torch.autograd.grad(self._error(guess, source.detach()), probe)
            texture = texture + self.step(texture, gradient)
        return texture
