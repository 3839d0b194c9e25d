"""Building blocks shared by the bi-layer networks: pre-activation residual blocks and the layers whose
parameters come from the identity (set once per portrait by a projector, then constant per frame).

All activations are leaky ReLU (slope 0.2), all resampling is 2x (average pooling down, nearest up),
as in the published model. Every "adaptive" layer holds the parameters of ONE identity, set with
``set_params``; a batch of frames of that identity broadcasts over them.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SLOPE = 0.2  # leaky ReLU slope used everywhere


def act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class AdaptiveConv1x1(nn.Module):
    """A 1x1 convolution whose weight (out, in) and bias (out,) belong to the identity."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def set_params(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """``weight`` (out, in[, 1, 1]) and ``bias`` (out,) from a projector head."""
        self.weight = weight.reshape(self.out_channels, self.in_channels, 1, 1)
        self.bias = bias.reshape(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class AdaptiveBatchNorm(nn.Module):
    """Batch norm on stored running statistics (no affine of its own), then a per-channel scale and
    shift that belong to the identity: y = (x - mean) / sqrt(var + eps) * (1 + w) + b."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.scale: torch.Tensor | None = None
        self.shift: torch.Tensor | None = None

    def set_params(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.scale = weight.reshape(-1) + 1.0
        self.shift = bias.reshape(-1)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole layer as y = x * a + c, a and c (C,)."""
        inv = torch.rsqrt(self.running_var + self.eps)
        a = self.scale * inv
        return a, self.shift - self.running_mean * a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=self.eps)
        return x * self.scale.to(x.dtype)[:, None, None] + self.shift.to(x.dtype)[:, None, None]


class SpadeBatchNorm(nn.Module):
    """Batch norm on stored statistics, then a per-pixel scale and shift computed from a learned feature
    map by two identity-owned 1x1 convolutions (the texture generator's norm)."""

    def __init__(self, channels: int, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.pixel_feats = nn.Parameter(torch.zeros(1, channels, size, size))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.to_scale = AdaptiveConv1x1(channels, channels)
        self.to_shift = AdaptiveConv1x1(channels, channels)

    def slots(self) -> list[nn.Module]:
        return [self.to_scale, self.to_shift]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=self.eps)
        return x * (self.to_scale(self.pixel_feats) + 1.0) + self.to_shift(self.pixel_feats)


class PlainBlock(nn.Module):
    """A residual block without normalisation: act, conv3x3, act, conv3x3 (+ 1x1 skip when the width or
    the size changes). ``resample``: None, "down" (average-pool after the second conv and the skip) or
    "up" (nearest 2x before the first conv and the skip)."""

    def __init__(self, in_channels: int, out_channels: int, resample: str | None = None):
        super().__init__()
        self.resample = resample
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels or resample else None

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the block's output, the activation after its first conv)."""
        h = act(x)
        if self.resample == "up":
            h, x = up2(h), up2(x)
        feats = act(self.conv1(h))
        out = self.conv2(feats)
        skip = x if self.skip is None else self.skip(x)
        if self.resample == "down":
            out, skip = F.avg_pool2d(out, 2), F.avg_pool2d(skip, 2)
        return out + skip, feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


class AdaptiveUpBlock(nn.Module):
    """The generators' 2x upsampling residual block: norm1, act, conv3x3, norm2, act, conv3x3, with an
    identity-owned 1x1 conv on the upsampled skip. ``upsample_first``: upsample before the first conv
    (texture generator) or between the two convs (the inference generator's cheaper order)."""

    def __init__(self, in_channels: int, out_channels: int, norm1: nn.Module, norm2: nn.Module,
                 upsample_first: bool):
        super().__init__()
        self.upsample_first = upsample_first
        self.norm1, self.norm2 = norm1, norm2
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = AdaptiveConv1x1(in_channels, out_channels)

    def slots(self) -> list[nn.Module]:
        """The identity-owned layers in the order the projector's heads fill them."""
        return slots_of(self.norm1) + slots_of(self.norm2) + [self.skip]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = act(self.norm1(x))
        if self.upsample_first:
            h = up2(h)
        h = act(self.norm2(self.conv1(h)))
        if not self.upsample_first:
            h = up2(h)
        return self.conv2(h) + self.skip(up2(x))


def plain_stack(width: int, base: int, cap: int, levels, resample: str | None) -> tuple[list[PlainBlock], int]:
    """PlainBlocks from ``width`` through the widths min(base * 2**i, cap) for i in ``levels`` -> (blocks,
    the last width)."""
    blocks = []
    for i in levels:
        nxt = min(int(base * 2 ** i), cap)
        blocks.append(PlainBlock(width, nxt, resample))
        width = nxt
    return blocks, width


def slots_of(module: nn.Module) -> list[nn.Module]:
    """The identity-owned layers of a norm layer, in fill order."""
    if isinstance(module, SpadeBatchNorm):
        return module.slots()
    if isinstance(module, (AdaptiveBatchNorm, AdaptiveConv1x1)):
        return [module]
    return []


def batchnorm(channels: int, eps: float) -> nn.BatchNorm2d:
    """A plain batch norm with its own affine, run on its stored statistics."""
    return nn.BatchNorm2d(channels, eps=eps)
