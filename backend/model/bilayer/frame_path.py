"""The per-frame path folded for one identity: keypoints -> (image, foreground), as fast as it goes.

Once the identity's parameters are set, nothing in the inference generator adapts any more, so it is
rewritten as plain layers (the same function up to float rounding):
- every batch norm with its per-identity scale/shift becomes one per-channel affine; the second norm of
  each block is folded into the conv before it;
- "nearest 2x upsampling, then 3x3 conv" becomes one 2x2 conv on the small map with four kernels per
  output channel, one per output phase (16 multiply-adds per output pixel instead of 36; the phase
  kernels are the ones the few-shot generator's folding uses);
- the skip's identity-owned 1x1 conv commutes with nearest upsampling, so it runs on the small map;
- the three output heads are one conv;
- the blocks run channels-last (NHWC): oneDNN's convolutions are about 10-20 % faster that way on the CPU,
  and the phase interleave writes into an NHWC output as cheaply.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..residual import _PHASES, _phase_kernel
from .blocks import SLOPE, AdaptiveBatchNorm
from .inference_generator import InferenceGenerator
from .keypoints_embedder import KeypointsEmbedder
from .texture_warp import warp_texture


def _affine(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(norm, AdaptiveBatchNorm):
        return norm.affine()
    inv = torch.rsqrt(norm.running_var + norm.eps)
    a = norm.weight * inv
    return a, norm.bias - norm.running_mean * a


class FoldedUpBlock(nn.Module):
    def __init__(self, block):
        super().__init__()
        a1, c1 = _affine(block.norm1)
        a2, c2 = _affine(block.norm2)
        self.register_buffer("a1", a1[None, :, None, None].clone())
        self.register_buffer("c1", c1[None, :, None, None].clone())
        nhwc = torch.channels_last
        self.register_buffer("w1", (block.conv1.weight * a2[:, None, None, None]).contiguous(memory_format=nhwc))
        self.register_buffer("b1", (block.conv1.bias * a2 + c2).clone())
        w = block.conv2.weight
        self.cout = w.shape[0]
        self.register_buffer("w2", torch.cat([_phase_kernel(_phase_kernel(w, r, 2), c, 3) for r, c in _PHASES])
                             .contiguous(memory_format=nhwc))
        self.register_buffer("b2", block.conv2.bias.repeat(4).clone())
        self.register_buffer("ws", block.skip.weight.contiguous(memory_format=nhwc).clone())
        self.register_buffer("bs", block.skip.bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        b, _, height, width = x.shape
        h = F.leaky_relu(torch.addcmul(self.c1, x, self.a1), SLOPE)
        h = F.leaky_relu(F.conv2d(h, self.w1, self.b1, padding=1), SLOPE)
        phases = F.conv2d(h, self.w2, self.b2, padding=1)  # (B, 4 cout, H+1, W+1)
        skip = F.conv2d(x, self.ws, self.bs)
        c = self.cout
        out = torch.empty((b, c, 2 * height, 2 * width), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last)
        grid = out.unflatten(3, (width, 2)).unflatten(2, (height, 2))  # (B, C, H, 2, W, 2), a view
        for i, (row, col) in enumerate(_PHASES):
            torch.add(phases[:, i * c:(i + 1) * c, row:row + height, col:col + width], skip,
                      out=grid[:, :, :, row, :, col])
        return out


class FramePath(nn.Module):
    """keypoints (N, 136) -> (image (N, 3, S, S), foreground probability (N, 1, S, S))."""

    def __init__(self, keypoints_embedder: KeypointsEmbedder, generator: InferenceGenerator,
                 texture: torch.Tensor):
        super().__init__()
        with torch.no_grad():
            self.keypoints_embedder = copy.deepcopy(keypoints_embedder)  # converted to dtype on its own
            self.blocks = nn.ModuleList(FoldedUpBlock(b) for b in generator.blocks)
            a, c = generator.final_norm.affine()
            self.register_buffer("a", a[None, :, None, None].clone())
            self.register_buffer("c", c[None, :, None, None].clone())
            heads = [generator.to_uv, generator.to_rgb] + ([generator.to_seg] if generator.to_seg is not None else [])
            self.register_buffer("wh", torch.cat([h.weight for h in heads]).clone())
            self.register_buffer("bh", torch.cat([h.bias for h in heads]).clone())
            self.register_buffer("grid", generator.grid.clone())
            self.register_buffer("texture", texture.detach().clone())
        self.segmentation = generator.to_seg is not None

    def forward(self, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.keypoints_embedder(keypoints.to(self.grid.dtype))
        for block in self.blocks:
            h = block(h)
        h = F.leaky_relu(torch.addcmul(self.c, h, self.a), SLOPE)
        out = F.conv2d(h, self.wh, self.bh, padding=1)
        uv = self.grid + torch.tanh(out[:, :2]).permute(0, 2, 3, 1)
        image = torch.tanh(out[:, 2:5]) + warp_texture(self.texture, uv)
        return image, (torch.sigmoid(out[:, 5:6]) if self.segmentation else None)
