"""The projection discriminator D(x, y, i) = V(x, y)^T (W_i + w0) + b.

V: residual down blocks without normalisation (self-attention after one of them), extra residual
blocks at the lowest resolution, global sum pooling and ReLU. W holds one row per training video
(``num_videos`` x embed_dim); few-shot fine-tuning replaces the lookup by a single vector w'.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .residual import DownBlock, down_stack


@dataclass
class DiscriminatorConfig:
    in_channels: int = 6  # RGB frame and its landmark raster, both in [-1, 1]
    channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    attention_after: int = 2
    extra_blocks: int = 1  # residual blocks without downsampling at the end (4x4 for 256 px)
    num_videos: int = 1
    spectral: bool = True

    @property
    def embed_dim(self) -> int:
        return self.channels[-1]


class Discriminator(nn.Module):
    """``forward(x, video)``: x (B, 6, H, W), video (B,) int64 row indices into W ->
    (score (B,), features: list of each block's output, for the feature-matching loss).
    ``score_with(x, w)`` scores against explicit vectors w (B or 1, embed_dim) instead of W_i + w0."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        layers = down_stack(cfg.in_channels, cfg.channels, cfg.attention_after, spectral=cfg.spectral)
        cin = cfg.channels[-1]
        for _ in range(cfg.extra_blocks):
            layers.append(DownBlock(cin, cin, downsample=False, spectral=cfg.spectral))
        self.blocks = nn.ModuleList(layers)
        self.W = nn.Parameter(torch.randn(cfg.num_videos, cfg.embed_dim) * 0.02)
        self.w0 = nn.Parameter(torch.zeros(cfg.embed_dim))
        self.b = nn.Parameter(torch.zeros(1))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, 6, H, W) -> (V (B, embed_dim), per-block outputs)."""
        feats = []
        h = x
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return torch.relu(h.sum(dim=(2, 3))), feats

    def score_with(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        v, feats = self.features(x)
        return (v * w).sum(dim=1) + self.b, feats

    def forward(self, x: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.score_with(x, self.W[video] + self.w0)
