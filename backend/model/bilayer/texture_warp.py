"""The texture warp: the identity's texture resampled at a frame's UVs (the high-frequency layer)."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def warp_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """``texture`` (1 or N, 3, S, S), ``uv`` (N, S, S, 2) positions in [-1, 1] (x, y; pixel centres at
    +-(1 - 1/S); values outside sample zeros) -> (N, 3, S, S), bilinear."""
    if texture.shape[0] != uv.shape[0]:
        texture = texture.expand(uv.shape[0], -1, -1, -1)
    return F.grid_sample(texture, uv, mode="bilinear", padding_mode="zeros", align_corners=False)
