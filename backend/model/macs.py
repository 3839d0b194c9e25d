"""Multiply-add counting by forward hooks: conv and linear layers plus the attention products."""
from __future__ import annotations

import torch
from torch import nn

from .attention import SelfAttention


def count_macs(net: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-adds of one ``net(*inputs)`` call, divided by the batch size (i.e. per sample).

    Counts every Conv2d (output elements x input channels per group x kernel area), every Linear
    (output elements x input features) and SelfAttention's two matrix products; norms, activations,
    pooling and upsampling are not counted (they are a small fraction and not multiply-adds).
    """
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    def attention_hook(m: SelfAttention, inp, _out):
        nonlocal total
        x = inp[0]
        total += x.shape[0] * m.matmul_macs(x.shape[2] * x.shape[3])

    handles = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, SelfAttention):
            handles.append(m.register_forward_hook(attention_hook))
    try:
        with torch.no_grad():
            net(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total // inputs[0].shape[0]


def count_parameters(net: nn.Module) -> int:
    """Trainable and frozen parameters (spectral norm's u/v are buffers and are not counted)."""
    return sum(p.numel() for p in net.parameters())
