"""The embedder E: K (frame, landmark raster) pairs of one video -> one identity vector e-hat."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .residual import down_stack


@dataclass
class EmbedderConfig:
    in_channels: int = 6  # RGB frame in [-1, 1] concatenated with its RGB landmark raster in [-1, 1]
    channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    attention_after: int = 2  # self-attention after this down block (0-based); -1 for none
    spectral: bool = True

    @property
    def embed_dim(self) -> int:
        return self.channels[-1]


class Embedder(nn.Module):
    """Residual down blocks without normalisation, global sum pooling and ReLU.

    ``forward(x)``: x (B, K, 6, H, W) -> e-hat (B, embed_dim), the mean of the K per-shot vectors.
    ``embed_shots(x)``: x (N, 6, H, W) -> (N, embed_dim), one vector per shot.
    """

    def __init__(self, cfg: EmbedderConfig):
        super().__init__()
        self.cfg = cfg
        layers = down_stack(cfg.in_channels, cfg.channels, cfg.attention_after, spectral=cfg.spectral)
        self.blocks = nn.Sequential(*layers)

    def embed_shots(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x)
        return torch.relu(h.sum(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k = x.shape[:2]
        return self.embed_shots(x.flatten(0, 1)).view(b, k, -1).mean(dim=1)
