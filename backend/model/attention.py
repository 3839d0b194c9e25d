"""Self-attention over the spatial positions of a feature map (SAGAN style, as the paper uses)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .spectral_norm import sn

QUERY_BLOCK = 512  # queries per attention block on CPU (measured best of 128-1024 at 64x64 on 2 cores)


class SelfAttention(nn.Module):
    """x (B, C, H, W) -> x + gamma * attention(x), same shape.

    Queries and keys are 1x1 convs to C/8 channels, values keep C; ``gamma`` starts at 0 so the block
    begins as the identity and learns how much non-local context to mix in.
    """

    def __init__(self, channels: int, spectral: bool = True):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = sn(nn.Conv2d(channels, inner, 1), spectral)
        self.key = sn(nn.Conv2d(channels, inner, 1), spectral)
        self.value = sn(nn.Conv2d(channels, channels, 1), spectral)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, N, C/8)
        k = self.key(x).flatten(2)  # (B, C/8, N)
        v = self.value(x).flatten(2)  # (B, C, N)
        if x.is_cuda:
            # Fused kernel (memory-efficient attention takes unequal q/v sizes); SAGAN has no 1/sqrt(d).
            out = F.scaled_dot_product_attention(q.unsqueeze(1), k.transpose(1, 2).unsqueeze(1),
                                                 v.transpose(1, 2).unsqueeze(1), scale=1.0)
            out = out.squeeze(1).transpose(1, 2)
        else:
            # On CPU the fused kernels need equal q/v sizes. Two plain products, a block of queries at a
            # time: the (rows, N) attention block stays in cache instead of a (N, N) matrix (64 MB at
            # 64x64) going through memory three times. Each row's softmax is the same; 2.5x faster here.
            # Output positions-major (B, N, C): a channels_last map once reshaped.
            vt = v.transpose(1, 2)  # (B, N, C), already contiguous for a channels_last input
            out = torch.cat([torch.bmm(torch.softmax(torch.bmm(q[:, s:s + QUERY_BLOCK], k), dim=-1), vt)
                             for s in range(0, q.shape[1], QUERY_BLOCK)], dim=1).transpose(1, 2)
        out = out.reshape(b, c, h, w).contiguous(memory_format=memory_format_of(x))
        return x + self.gamma * out

    def matmul_macs(self, positions: int) -> int:
        """Multiply-adds of the two attention products for one sample with ``positions`` = H*W."""
        return positions * positions * (self.inner + self.value.out_channels)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """Keep channels_last activations channels_last (a layout switch costs copies and slow convs)."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
