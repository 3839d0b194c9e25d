"""BigGAN-style residual blocks: downsampling (optionally instance-normalised), AdaIN residual, AdaIN up.

All blocks are pre-activation (norm -> ReLU -> conv). Convolutions are spectrally normalised when the
owning network asks for it. AdaIN blocks take their slice of psi as a second argument and say how
large that slice is through ``psi_size``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .adain import AdaIN
from .attention import SelfAttention
from .spectral_norm import sn


def _conv(cin: int, cout: int, k: int, spectral: bool) -> nn.Module:
    return sn(nn.Conv2d(cin, cout, k, padding=k // 2), spectral)


class DownBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, H/2, W/2), or same size when ``downsample`` is False.

    ``instance_norm`` puts affine instance norm before each activation (the generator's encoder);
    the embedder and discriminator use none. ``first`` skips the activation on the raw input, as
    BigGAN's first discriminator block does. The skip path is a 1x1 conv unless shapes already match.
    """

    def __init__(self, cin: int, cout: int, *, instance_norm: bool = False, first: bool = False,
                 downsample: bool = True, spectral: bool = True):
        super().__init__()
        self.first = first
        self.downsample = downsample
        self.norm1 = nn.InstanceNorm2d(cin, affine=True) if instance_norm else nn.Identity()
        self.conv1 = _conv(cin, cout, 3, spectral)
        self.norm2 = nn.InstanceNorm2d(cout, affine=True) if instance_norm else nn.Identity()
        self.conv2 = _conv(cout, cout, 3, spectral)
        self.skip = _conv(cin, cout, 1, spectral) if (cin != cout or downsample) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        if not self.first:
            h = F.relu(h)
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        s = self.skip(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class AdaResBlock(nn.Module):
    """(B, C, H, W), psi slice (B, psi_size) -> (B, C, H, W): two AdaIN-ReLU-conv stages plus identity."""

    def __init__(self, channels: int, *, spectral: bool = True, eps: float = 1e-5):
        super().__init__()
        self.ada1 = AdaIN(channels, eps)
        self.conv1 = _conv(channels, channels, 3, spectral)
        self.ada2 = AdaIN(channels, eps)
        self.conv2 = _conv(channels, channels, 3, spectral)

    @property
    def psi_size(self) -> int:
        return self.ada1.psi_size + self.ada2.psi_size

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        p1, p2 = psi.split([self.ada1.psi_size, self.ada2.psi_size], dim=1)
        h = self.conv1(F.relu(self.ada1(x, p1)))
        h = self.conv2(F.relu(self.ada2(h, p2)))
        return x + h


class AdaUpBlock(nn.Module):
    """(B, cin, H, W), psi slice -> (B, cout, 2H, 2W): nearest upsampling inside both paths."""

    def __init__(self, cin: int, cout: int, *, spectral: bool = True, eps: float = 1e-5):
        super().__init__()
        self.ada1 = AdaIN(cin, eps)
        self.conv1 = _conv(cin, cout, 3, spectral)
        self.ada2 = AdaIN(cout, eps)
        self.conv2 = _conv(cout, cout, 3, spectral)
        self.skip = _conv(cin, cout, 1, spectral)

    @property
    def psi_size(self) -> int:
        return self.ada1.psi_size + self.ada2.psi_size

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        p1, p2 = psi.split([self.ada1.psi_size, self.ada2.psi_size], dim=1)
        h = F.interpolate(F.relu(self.ada1(x, p1)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.ada2(self.conv1(h), p2)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


def down_stack(cin: int, channels: tuple[int, ...], attention_after: int, *, instance_norm: bool = False,
               spectral: bool = True) -> list[nn.Module]:
    """The encoder layout E, G and D share: a DownBlock per entry of ``channels`` (the first one without
    its input activation), self-attention after block ``attention_after`` (-1: none)."""
    layers: list[nn.Module] = []
    for i, cout in enumerate(channels):
        layers.append(DownBlock(cin, cout, instance_norm=instance_norm, first=(i == 0), spectral=spectral))
        if i == attention_after:
            layers.append(SelfAttention(cout, spectral=spectral))
        cin = cout
    return layers
