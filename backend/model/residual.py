"""BigGAN-style residual blocks: downsampling (optionally instance-normalised), AdaIN residual, AdaIN up.

All blocks are pre-activation (norm -> ReLU -> conv). Convolutions are spectrally normalised when the
owning network asks for it. AdaIN blocks take their slice of psi as a second argument and say how
large that slice is through ``psi_size``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .adain import AdaIN, InstanceNorm
from .attention import SelfAttention, memory_format_of
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
        self.norm1 = InstanceNorm(cin) if instance_norm else nn.Identity()
        self.conv1 = _conv(cin, cout, 3, spectral)
        self.norm2 = InstanceNorm(cout) if instance_norm else nn.Identity()
        self.conv2 = _conv(cout, cout, 3, spectral)
        self.skip = _conv(cin, cout, 1, spectral) if (cin != cout or downsample) else nn.Identity()
        self.pooling_folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        if not self.first:
            h = F.relu(h)
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        if self.pooling_folded:  # conv2 pools itself; the skip's 1x1 conv runs on the pooled input
            return h + self.skip(F.avg_pool2d(x, 2))
        s = self.skip(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s

    @torch.no_grad()
    def fold_resampling(self) -> None:
        """Inference only, after spectral norm is folded: "3x3 conv, then 2x2 average pool" becomes one
        4x4 conv with stride 2 (the four shifted kernels averaged), 16 multiply-adds per output instead
        of 36. The same function up to float rounding; the block no longer fits a training checkpoint."""
        if not self.downsample or self.pooling_folded:
            return
        w = self.conv2.weight
        pooled = nn.Conv2d(w.shape[1], w.shape[0], 4, stride=2, padding=1).to(w.device, w.dtype)
        pooled.weight.copy_(0.25 * (F.pad(w, (0, 1, 0, 1)) + F.pad(w, (1, 0, 0, 1))
                                    + F.pad(w, (0, 1, 1, 0)) + F.pad(w, (1, 0, 1, 0))))
        pooled.bias.copy_(self.conv2.bias)
        self.conv2 = pooled
        self.pooling_folded = True


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
        self.upsampling_folded = False

    @property
    def psi_size(self) -> int:
        return self.ada1.psi_size + self.ada2.psi_size

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        p1, p2 = psi.split([self.ada1.psi_size, self.ada2.psi_size], dim=1)
        if self.upsampling_folded:
            return self._forward_folded(x, p1, p2)
        h = F.interpolate(F.relu(self.ada1(x, p1)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.ada2(self.conv1(h), p2)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))

    def _forward_folded(self, x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        phases = self.conv1(F.relu(self.ada1(x, p1)))  # (B, 4 cout, H+1, W+1): the 4 output phases
        cout = phases.shape[1] // 4
        h = torch.empty((b, cout, 2 * height, 2 * width), dtype=phases.dtype, device=phases.device,
                        memory_format=memory_format_of(x))
        grid = h.unflatten(3, (width, 2)).unflatten(2, (height, 2))  # (B, C, H, 2, W, 2), a view of h
        for i, (row, col) in enumerate(_PHASES):
            grid[:, :, :, row, :, col] = phases[:, i * cout:(i + 1) * cout, row:row + height, col:col + width]
        h = self.conv2(F.relu(self.ada2(h, p2)))
        # The skip's 1x1 conv commutes with nearest upsampling: run it small, add it to each phase.
        h.unflatten(3, (width, 2)).unflatten(2, (height, 2)).add_(self.skip(x)[:, :, :, None, :, None])
        return h

    @torch.no_grad()
    def fold_resampling(self) -> None:
        """Inference only, after spectral norm is folded: "nearest 2x upsampling, then 3x3 conv" becomes
        one 2x2 conv on the small map with four kernels per output channel, one per output phase (row
        and column parity), 16 multiply-adds per output pixel instead of 36. The same function up to
        float rounding; the block no longer fits a training checkpoint."""
        if self.upsampling_folded:
            return
        w = self.conv1.weight  # (cout, cin, 3, 3)
        kernels = torch.cat([_phase_kernel(_phase_kernel(w, row, 2), col, 3) for row, col in _PHASES])
        conv = nn.Conv2d(w.shape[1], 4 * w.shape[0], 2, padding=1).to(w.device, w.dtype)
        conv.weight.copy_(kernels)
        conv.bias.copy_(self.conv1.bias.repeat(4))
        self.conv1 = conv
        self.upsampling_folded = True


_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def _phase_kernel(w: torch.Tensor, parity: int, dim: int) -> torch.Tensor:
    """The 3 taps of ``w`` along ``dim`` seen from one parity of a nearest-2x-upsampled input: an even
    output reads input pixels (i-1, i, i), an odd one (i, i, i+1), so two taps on the small map."""
    w0, w1, w2 = w.unbind(dim)
    return torch.stack((w0, w1 + w2) if parity == 0 else (w0 + w1, w2), dim)


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
