"""The texture generator: the identity -> its high-frequency texture (3, S, S) in [-1, 1], made once
per portrait. A learned constant is upsampled by residual blocks whose norms are SPADE-style (per-pixel
scale/shift from learned maps through identity-owned 1x1 convs); the projector sets those convs."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import AdaptiveUpBlock, SpadeBatchNorm, act, batchnorm, slots_of
from .projector import Projector, channel_ladder, fill_slots, projector_groups


@dataclass(frozen=True)
class TextureGeneratorConfig:
    image_size: int = 256
    channels: int = 64       # output width of the last block; doubles towards the input
    max_channels: int = 512
    input_size: int = 4      # spatial size of the learned constant
    embed_channels: int = 64  # the identity embedder's base width (sets the projector's sizes)
    embed_max_channels: int = 512
    eps: float = 1e-7


class TextureGenerator(nn.Module):
    def __init__(self, cfg: TextureGeneratorConfig):
        super().__init__()
        self.cfg = cfg
        n = int(math.log2(cfg.image_size // cfg.input_size))
        width, size = channel_ladder(cfg.channels, cfg.max_channels, n), cfg.input_size
        self.seed = nn.Parameter(torch.zeros(1, cfg.max_channels, cfg.input_size, cfg.input_size))
        self.blocks = nn.ModuleList()
        for i in range(n - 1, -1, -1):
            nxt = channel_ladder(cfg.channels, cfg.max_channels, i)
            norm1 = batchnorm(width, cfg.eps) if i == n - 1 else SpadeBatchNorm(width, size, cfg.eps)
            self.blocks.append(AdaptiveUpBlock(width, nxt, norm1, SpadeBatchNorm(nxt, size * 2, cfg.eps),
                                               upsample_first=True))
            width, size = nxt, size * 2
        self.final_norm = SpadeBatchNorm(width, size, cfg.eps)
        self.to_rgb = nn.Conv2d(width, 3, 3, padding=1)
        self.projector = Projector(projector_groups(
            n, cfg.embed_channels, cfg.embed_max_channels, cfg.channels, cfg.max_channels,
            lambda cin, cout: (cout + 1, cout + 1, cin + 1, cout + 1, cout + 1)))

    def slots(self) -> list[nn.Module]:
        return [s for b in self.blocks for s in b.slots()] + slots_of(self.final_norm)

    def forward(self, embeds: list[torch.Tensor]) -> torch.Tensor:
        """One identity's embedding maps -> its texture (1, 3, S, S) in [-1, 1]."""
        fill_slots(self.slots(), self.projector(embeds))
        h = self.seed
        for block in self.blocks:
            h = block(h)
        return torch.tanh(self.to_rgb(act(self.final_norm(h))))
