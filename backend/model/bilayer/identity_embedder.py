"""The identity embedder: the masked source portrait and its landmark drawing -> one feature map per
generator block (the embedding the projectors turn into the generators' identity-owned parameters)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import PlainBlock, plain_stack
from .projector import channel_ladder


@dataclass(frozen=True)
class IdentityEmbedderConfig:
    image_size: int = 256
    channels: int = 64         # width after the stem; doubles per downsampling block
    max_channels: int = 512
    output_size: int = 8       # spatial size of the embedding maps
    level_channels: int = 64   # the texture generator's base width: the maps' widths follow its blocks
    level_max_channels: int = 512
    level_input_size: int = 4  # the texture generator's input size (sets the number of maps)
    stickman: bool = True      # the landmark drawing is part of the input (6 channels, else 3)


class IdentityEmbedder(nn.Module):
    def __init__(self, cfg: IdentityEmbedderConfig):
        super().__init__()
        self.cfg = cfg
        downs = int(math.log2(cfg.image_size // cfg.output_size))
        levels = int(math.log2(cfg.image_size // cfg.level_input_size))
        self.stem = nn.Conv2d(6 if cfg.stickman else 3, cfg.channels, 3, padding=1)
        blocks, width = plain_stack(cfg.channels, cfg.channels, cfg.max_channels, range(1, downs + 1), "down")
        self.down = nn.Sequential(*blocks)
        self.levels = nn.ModuleList()
        for i in range(levels - 1, -1, -1):
            nxt = channel_ladder(cfg.level_channels, cfg.level_max_channels, i)
            self.levels.append(PlainBlock(width, nxt))
            width = nxt

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x`` (N, 6, S, S): the masked portrait in [-1, 1] (background -1) then its landmark drawing
        -> one map per generator block, (N, C_k, output_size, output_size), widest first."""
        h = self.down(self.stem(x))
        embeds = []
        for block in self.levels:
            h, feats = block.features(h)
            embeds.append(feats)
        return embeds
