"""Adaptive instance normalisation driven by externally supplied parameters.

The generator's residual and up blocks normalise each feature map per sample and channel, then scale
and shift it with a slice of psi (the projection P·e of the identity embedding). The per-instance
standard deviation is ``sqrt(var + eps)``: without the epsilon a flat feature map gives a zero std and
the division turns the whole image into NaN (a failure users of public reimplementations report).
"""
from __future__ import annotations

import torch
from torch import nn


class AdaIN(nn.Module):
    """x (B, C, H, W), psi slice (B, 2C) -> (B, C, H, W).

    psi holds C scale offsets followed by C biases; the applied scale is ``1 + offset`` so that a
    zero psi (an untrained projection) passes normalised features through instead of erasing them.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.eps = eps

    @property
    def psi_size(self) -> int:
        return 2 * self.channels

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        # Statistics in fp32 even under autocast: var of bf16 activations loses the small values.
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, unbiased=False)
        normalised = (xf - mean) * torch.rsqrt(var + self.eps)
        scale, bias = psi.float().view(psi.shape[0], 2, self.channels, 1, 1).unbind(1)
        return (normalised * (1.0 + scale) + bias).to(x.dtype)
