"""The projector: the identity embedding -> the parameters of a generator's identity-owned layers.

The embedder gives one feature map per generator block (group). For group g, the map is average-pooled
to a fixed size, its channels are regrouped so that each row describes one output channel of the
block, and each head (three linear layers, no activation between them) maps every row to that
channel's weights plus a bias. Heads are numbered in one flat list; head j fills the generator's j-th
identity-owned layer (``slots()``), in the generator's module order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

BOTTLENECK = 1024  # pooled values per channel before the channel regrouping


@dataclass(frozen=True)
class ProjectorGroup:
    embed_channels: int  # channels of the embedding map this group reads
    block_in: int        # the generator block's input width
    block_out: int       # the generator block's output width
    head_widths: tuple[int, ...]  # each head's outputs per row (weights + 1 bias)

    @property
    def mult(self) -> float:
        return self.block_in / float(self.embed_channels)

    @property
    def pool(self) -> int:
        return int(BOTTLENECK ** 0.5 * self.mult)

    @property
    def row(self) -> int:
        return int(self.pool ** 2 / self.mult)


def channel_ladder(base: int, cap: int, i: int) -> int:
    return min(int(base * 2 ** i), cap)


def projector_groups(blocks: int, emb_base: int, emb_cap: int, gen_base: int, gen_cap: int,
                     heads) -> list[ProjectorGroup]:
    """The groups for a generator of ``blocks`` upsampling blocks; ``heads(block_in, block_out)`` gives
    the head widths of one block."""
    out = []
    for i in range(blocks, 0, -1):
        cin, cout = channel_ladder(gen_base, gen_cap, i), channel_ladder(gen_base, gen_cap, i - 1)
        out.append(ProjectorGroup(channel_ladder(emb_base, emb_cap, i), cin, cout, tuple(heads(cin, cout))))
    return out


class Projector(nn.Module):
    def __init__(self, groups: list[ProjectorGroup]):
        super().__init__()
        self.groups = groups
        self.heads = nn.ModuleList()
        self.head_group: list[int] = []
        for g, grp in enumerate(groups):
            for width in grp.head_widths:
                self.heads.append(nn.Sequential(nn.Linear(grp.row, grp.embed_channels),
                                                nn.Linear(grp.embed_channels, grp.embed_channels),
                                                nn.Linear(grp.embed_channels, width)))
                self.head_group.append(g)

    def forward(self, embeds: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``embeds`` one (1, C_g, h, w) map per group -> one (weight (rows, width - 1), bias (rows,)) per
        head, for a single identity."""
        rows = []
        for grp, e in zip(self.groups, embeds):
            c = e.shape[1]
            rows.append(F.adaptive_avg_pool2d(e, grp.pool).reshape(int(c * grp.mult), -1))
        out = []
        for head, g in zip(self.heads, self.head_group):
            p = head(rows[g])
            out.append((p[:, :-1], p[:, -1]))
        return out


def fill_slots(slots: list[nn.Module], params: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Give each identity-owned layer its (weight, bias), in order."""
    if len(slots) != len(params):
        raise ValueError(f"{len(params)} projector heads for {len(slots)} identity-owned layers")
    for slot, (w, b) in zip(slots, params):
        slot.set_params(w, b)
