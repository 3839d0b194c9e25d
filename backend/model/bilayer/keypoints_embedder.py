"""The keypoints embedder: a frame's 68 normalised landmarks -> the inference generator's input tensor."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import act


@dataclass(frozen=True)
class KeypointsEmbedderConfig:
    in_features: int = 136    # 68 (x, y) in [-1, 1]
    hidden: int = 256
    layers: int = 4
    harmonics: int = 0        # > 0: each value enters as sin/cos of this many octaves (published: off)
    out_channels: int = 256   # the inference generator's input (channels, size, size)
    out_size: int = 4


class KeypointsEmbedder(nn.Module):
    def __init__(self, cfg: KeypointsEmbedderConfig):
        super().__init__()
        self.cfg = cfg
        width = cfg.in_features * cfg.harmonics * 2 if cfg.harmonics else cfg.in_features
        out = cfg.out_channels * cfg.out_size ** 2
        sizes = [width] + [cfg.hidden] * (cfg.layers - 1) + [out] if cfg.layers > 1 else [width, out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        if cfg.harmonics:
            self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(cfg.harmonics, dtype=torch.float32),
                                 persistent=False)

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        """``keypoints`` (N, 136) -> (N, out_channels, out_size, out_size)."""
        x = keypoints
        if self.cfg.harmonics:
            x = (x[..., None] * self.frequencies).reshape(x.shape[0], -1)
            x = torch.cat([torch.sin(x), torch.cos(x)], dim=1)
        for i, layer in enumerate(self.layers):
            x = layer(act(x) if i else x)
        return x.view(-1, self.cfg.out_channels, self.cfg.out_size, self.cfg.out_size)
