"""The generator G: a landmark raster and the identity's AdaIN parameters psi -> an RGB frame.

Encoder: residual down blocks with instance norm (and self-attention); bottleneck: AdaIN residual
blocks; decoder: AdaIN up blocks (and self-attention); then ReLU, a 3x3 conv and tanh. Every AdaIN
layer reads its scale/bias from psi = P e-hat. psi depends only on the identity, so inference computes
it once per job (``project``) and passes it to every frame; few-shot fine-tuning trains psi directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SelfAttention
from .residual import AdaResBlock, AdaUpBlock, down_stack
from .spectral_norm import sn


@dataclass
class GeneratorConfig:
    in_channels: int = 3  # the landmark raster, RGB in [-1, 1]
    down_channels: tuple[int, ...] = (64, 128, 256, 512)
    down_attention_after: int = 2  # after this down block (0-based); -1 for none
    res_blocks: int = 5
    up_channels: tuple[int, ...] = (256, 128, 64, 32)
    up_attention_after: int = 1  # after this up block (0-based); -1 for none
    embed_dim: int = 512
    out_channels: int = 3
    spectral: bool = True
    adain_eps: float = 1e-5


class Generator(nn.Module):
    """``forward(raster, psi)``: raster (B, 3, H, W) in [-1, 1], psi (B or 1, psi_size) ->
    image (B, 3, H, W) RGB in [-1, 1]. H and W must be divisible by 2**len(down_channels) and
    the output has the input's size (as many up blocks as down blocks)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        if len(cfg.up_channels) != len(cfg.down_channels):
            raise ValueError("generator: up_channels and down_channels must have the same length")
        self.cfg = cfg
        self.down = nn.Sequential(*down_stack(cfg.in_channels, cfg.down_channels, cfg.down_attention_after,
                                              instance_norm=True, spectral=cfg.spectral))
        cin = cfg.down_channels[-1]
        self.res = nn.ModuleList(AdaResBlock(cin, spectral=cfg.spectral, eps=cfg.adain_eps)
                                 for _ in range(cfg.res_blocks))
        up: list[nn.Module] = []
        for i, cout in enumerate(cfg.up_channels):
            up.append(AdaUpBlock(cin, cout, spectral=cfg.spectral, eps=cfg.adain_eps))
            if i == cfg.up_attention_after:
                up.append(SelfAttention(cout, spectral=cfg.spectral))
            cin = cout
        self.up = nn.ModuleList(up)
        self.to_rgb = sn(nn.Conv2d(cin, cfg.out_channels, 3, padding=1), cfg.spectral)
        self.psi_sizes = [b.psi_size for b in self.res] + [b.psi_size for b in self.up if hasattr(b, "psi_size")]
        # P: the identity embedding -> every AdaIN layer's parameters. Small init keeps the initial
        # AdaIN scales near 1 whatever the embedding's magnitude.
        self.projection = nn.Linear(cfg.embed_dim, self.psi_size, bias=False)
        nn.init.normal_(self.projection.weight, std=0.02 / cfg.embed_dim ** 0.5)

    @property
    def psi_size(self) -> int:
        return sum(self.psi_sizes)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """psi = P e-hat: (B, embed_dim) -> (B, psi_size)."""
        return self.projection(embedding)

    def forward(self, raster: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        if psi.shape[0] != raster.shape[0]:
            psi = psi.expand(raster.shape[0], -1)
        chunks = iter(psi.split(self.psi_sizes, dim=1))
        h = self.down(raster)
        for block in self.res:
            h = block(h, next(chunks))
        for block in self.up:
            h = block(h, next(chunks)) if isinstance(block, AdaUpBlock) else block(h)
        return torch.tanh(self.to_rgb(F.relu(h)))
