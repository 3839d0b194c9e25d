"""The inference generator: a frame's pose tensor -> where each output pixel samples the texture (UVs),
the low-frequency image and the segmentation logit. Small and run per frame; its norms' scale/shift and
its skip convs belong to the identity (set once by the projector, then folded into plain layers)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import AdaptiveBatchNorm, AdaptiveUpBlock, act, batchnorm
from .projector import Projector, channel_ladder, fill_slots, projector_groups


@dataclass(frozen=True)
class InferenceGeneratorConfig:
    image_size: int = 256
    channels: int = 32       # output width of the last block; doubles towards the input
    max_channels: int = 256
    input_size: int = 4      # spatial size of the pose tensor
    segmentation: bool = True
    embed_channels: int = 64
    embed_max_channels: int = 512
    eps: float = 1e-7


def identity_grid(size: int) -> torch.Tensor:
    """Pixel-centre sampling positions of a size x size image in grid_sample's [-1, 1] convention,
    (1, size, size, 2) as (x, y)."""
    g = torch.linspace(-1, 1, size + 1)
    g = (g[1:] + g[:-1]) / 2
    y, x = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([x, y], 2)[None]


class InferenceGenerator(nn.Module):
    def __init__(self, cfg: InferenceGeneratorConfig):
        super().__init__()
        self.cfg = cfg
        n = int(math.log2(cfg.image_size // cfg.input_size))
        width = channel_ladder(cfg.channels, cfg.max_channels, n)
        self.blocks = nn.ModuleList()
        for i in range(n - 1, -1, -1):
            nxt = channel_ladder(cfg.channels, cfg.max_channels, i)
            norm1 = batchnorm(width, cfg.eps) if i == n - 1 else AdaptiveBatchNorm(width, cfg.eps)
            self.blocks.append(AdaptiveUpBlock(width, nxt, norm1, AdaptiveBatchNorm(nxt, cfg.eps),
                                               upsample_first=False))
            width = nxt
        self.final_norm = AdaptiveBatchNorm(width, cfg.eps)
        self.to_uv = nn.Conv2d(width, 2, 3, padding=1)
        self.to_rgb = nn.Conv2d(width, 3, 3, padding=1)
        self.to_seg = nn.Conv2d(width, 1, 3, padding=1) if cfg.segmentation else None
        self.register_buffer("grid", identity_grid(cfg.image_size), persistent=False)
        self.projector = Projector(projector_groups(
            n, cfg.embed_channels, cfg.embed_max_channels, cfg.channels, cfg.max_channels,
            lambda cin, cout: (2, cin + 1, 2)))

    def slots(self) -> list[nn.Module]:
        return [s for b in self.blocks for s in b.slots()] + [self.final_norm]

    def personalise(self, embeds: list[torch.Tensor]) -> None:
        """Set the identity-owned parameters from one identity's embedding maps."""
        fill_slots(self.slots(), self.projector(embeds))

    def forward(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``pose`` (N, C, s, s) from the keypoints embedder -> (uvs (N, S, S, 2) texture sampling positions,
        low-frequency image (N, 3, S, S) in [-1, 1], segmentation logits (N, 1, S, S) or None)."""
        h = pose
        for block in self.blocks:
            h = block(h)
        h = act(self.final_norm(h))
        uv = self.grid + torch.tanh(self.to_uv(h)).permute(0, 2, 3, 1)
        rgb = torch.tanh(self.to_rgb(h))
        return uv, rgb, (self.to_seg(h) if self.to_seg is not None else None)
