"""The publisher's state-dict layout -> ours: one rename table per network.

The published checkpoints are plain state dicts of the training code's wrappers (``net.``, ``gen_tex.``,
``prj_inf.`` ... prefixes, Sequential indices inside each residual block, spectral-norm triples
``weight_orig``/``weight_u``/``weight_v``). ``rename(network, key, cfg)`` gives our key for one of
theirs (after spectral norm is folded), or None when the key has no place in our layout.
"""
from __future__ import annotations

import math
import re

from .config import BilayerConfig

# Inside a residual block: (their sub-path) -> our name, per block kind.
_DOWN = {"block_feats.1": "conv1", "block.0": "conv2", "skip.0": "skip"}       # act conv act | conv pool
_UP_PLAIN = {"block_feats.2": "conv1", "block.0": "conv2", "skip.1": "skip"}   # act up conv act | conv
_TEX = {"block_feats.0": "norm1", "block_feats.0.norm_layer": "norm1", "block_feats.3": "conv1",
        "block_feats.4": "norm2", "block_feats.4.norm_layer": "norm2", "block.0": "conv2"}
_INF = {"block_feats.0": "norm1", "block_feats.0.norm_layer": "norm1", "block_feats.2": "conv1",
        "block_feats.3.norm_layer": "norm2", "block.1": "conv2"}
# Their keys with no counterpart: recomputed here (the UV grid, harmonic frequencies) or unused.
DROPPED = ("identity_grid", "frequencies")

_LEAF = r"(weight|bias|running_mean|running_var|pixel_feats)"


def _block(table: dict, rest: str) -> str | None:
    m = re.fullmatch(r"(.+)\." + _LEAF, rest)
    if not m or m.group(1) not in table:
        return None
    return f"{table[m.group(1)]}.{m.group(2)}"


def _head(rest: str, per_group: int) -> str | None:
    m = re.fullmatch(r"fc_blocks\.(\d+)\.(\d+)\.([012])\.(weight|bias)", rest)
    if not m:
        return None
    g, h, layer, leaf = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
    if h >= per_group:
        return None
    return f"projector.heads.{g * per_group + h}.{layer}.{leaf}"


def rename(network: str, key: str, cfg: BilayerConfig) -> str | None:
    if network == "identity_embedder":
        if m := re.fullmatch(r"net\.enc\.0\.(weight|bias)", key):
            return f"stem.{m.group(1)}"
        if m := re.fullmatch(r"net\.enc\.(\d+)\.(.+)", key):
            sub = _block(_DOWN, m.group(2))
            return sub and f"down.{int(m.group(1)) - 1}.{sub}"
        if m := re.fullmatch(r"net\.dec_blocks\.(\d+)\.(.+)", key):
            sub = _block(_DOWN, m.group(2))
            return sub and f"levels.{m.group(1)}.{sub}"
        return None
    if network == "keypoints_embedder":
        if m := re.fullmatch(r"net\.mlp\.(\d+)\.(weight|bias)", key):
            i = int(m.group(1))
            return f"layers.{i // 2}.{m.group(2)}" if i % 2 == 0 else None
        return None
    if network in ("texture_generator", "inference_generator"):
        gen, prj, table = ("gen_tex", "prj_tex", _TEX) if network == "texture_generator" else ("gen_inf", "prj_inf", _INF)
        heads = ("to_rgb",) if network == "texture_generator" else ("to_uv", "to_rgb", "to_seg")
        per_group = 5 if network == "texture_generator" else 3
        if key == "gen_tex_input" and network == "texture_generator":
            return "seed"
        if m := re.fullmatch(gen + r"\.heads\.(\d+)\.0\.(weight|bias)", key):
            i = int(m.group(1))
            return f"{heads[i]}.{m.group(2)}" if i < len(heads) else None
        if m := re.fullmatch(gen + r"\.blocks\.(\d+)\.(pixel_feats|norm_layer\.running_mean|norm_layer\.running_var)", key):
            return f"final_norm.{m.group(2).removeprefix('norm_layer.')}"
        if m := re.fullmatch(gen + r"\.blocks\.(\d+)\.(.+)", key):
            sub = _block(table, m.group(2))
            return sub and f"blocks.{m.group(1)}.{sub}"
        if key.startswith(prj + "."):
            return _head(key[len(prj) + 1:], per_group)
        return None
    if network == "texture_enhancer":
        enh = cfg.texture_enhancer
        downs = int(math.log2(enh.image_size // enh.bottleneck_size))
        ends = {0: "stem", 1 + 2 * downs + enh.blocks + 2: "to_rgb"}  # stem; after the blocks: norm, act, conv
        if m := re.fullmatch(r"net\.blocks\.(\d+)\.(weight|bias)", key):
            name = ends.get(int(m.group(1)))
            return name and f"{name}.{m.group(2)}"
        if m := re.fullmatch(r"net\.blocks\.(\d+)\.(.+)", key):
            i = int(m.group(1))
            if 1 <= i <= downs:
                sub = _block(_DOWN, m.group(2))
                return sub and f"down.{i - 1}.{sub}"
            if downs < i <= downs + enh.blocks:
                sub = _block(_DOWN, m.group(2))
                return sub and f"middle.{i - downs - 1}.{sub}"
            if downs + enh.blocks < i <= 2 * downs + enh.blocks:
                sub = _block(_UP_PLAIN, m.group(2))
                return sub and f"up.{i - downs - enh.blocks - 1}.{sub}"
        return None
    raise KeyError(network)
