"""Test fixtures for the bi-layer model: the publisher's checkpoint layout, written by OUR code.

``write_runs`` turns one of our BilayerModels into what the publisher ships: per run, ``args.txt``
("key: value" lines, as its training script writes them) and ``checkpoints/<epoch>_<net>.pth`` plain state
dicts with the training code's key names and spectral norm unfolded (``weight_orig``/``weight_u``/
``weight_v``, the vectors chosen so that uᵀ W_orig v = the scale applied, so folding gives back our
weights). The key names are an independent description of the publisher's layout (written from its
module structure), so the converter's rename table is checked against it, not against itself.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from livingportrait_backend.model.bilayer import BilayerConfig, BilayerModel

# The tiny model: the published architecture scaled down (every width / 8, 64 px), fast on 2 busy cores.
TINY_ARGS = {
    "image_size": 64, "eps": 1e-07, "emb_num_channels": 8, "emb_max_channels": 64, "emb_output_tensor_size": 8,
    "tex_num_channels": 8, "tex_max_channels": 64, "tex_input_tensor_size": 4, "inf_num_channels": 4,
    "inf_max_channels": 32, "inf_input_tensor_size": 4, "pse_in_channels": 136, "pse_num_channels": 32,
    "pse_num_blocks": 4, "pse_use_harmonic_enc": False, "pse_emb_source_pose": False,
    "enh_num_channels": 8, "enh_max_channels": 16, "enh_bottleneck_tensor_size": 32, "enh_num_blocks": 2,
    "enh_unrolling_depth": 2, "enh_guiding_rgb_loss_type": "sse", "inf_pred_segmentation": True,
    "emb_apply_masks": True, "stickmen_thickness": 1, "tex_norm_layer_type": "ada_spade_bn",
    "inf_norm_layer_type": "ada_bn", "num_source_frames": 1, "experiment_name": "tiny",
}


def _block(prefix: str, table: dict, rest: str) -> str:
    part, leaf = rest.rsplit(".", 1)
    return f"{prefix}.{table[part]}.{leaf}"


def publisher_key(network: str, key: str, model: BilayerModel) -> str:
    """Our key -> the publisher's, from its wrappers' module structure."""
    cfg = model.cfg
    down = {"conv1": "block_feats.1", "conv2": "block.0", "skip": "skip.0"}
    if network == "identity_embedder":
        if key.startswith("stem."):
            return "net.enc.0." + key[5:]
        m = re.match(r"(down|levels)\.(\d+)\.(.+)", key)
        i = int(m.group(2))
        return _block("net.enc.%d" % (i + 1) if m.group(1) == "down" else f"net.dec_blocks.{i}", down, m.group(3))
    if network == "keypoints_embedder":
        m = re.match(r"layers\.(\d+)\.(.+)", key)
        return f"net.mlp.{2 * int(m.group(1))}.{m.group(2)}"
    if network in ("texture_generator", "inference_generator"):
        tex = network == "texture_generator"
        gen, prj = ("gen_tex", "prj_tex") if tex else ("gen_inf", "prj_inf")
        if key == "seed":
            return "gen_tex_input"
        if m := re.match(r"projector\.heads\.(\d+)\.(.+)", key):
            per = 5 if tex else 3
            j = int(m.group(1))
            return f"{prj}.fc_blocks.{j // per}.{j % per}.{m.group(2)}"
        heads = {"to_rgb": "heads.0.0"} if tex else {"to_uv": "heads.0.0", "to_rgb": "heads.1.0", "to_seg": "heads.2.0"}
        name, _, leaf = key.partition(".")
        if name in heads:
            return f"{gen}.{heads[name]}.{leaf}"
        blocks = len(model.networks()[network].blocks)
        if name == "final_norm":
            return f"{gen}.blocks.{blocks}." + ("pixel_feats" if leaf == "pixel_feats" else f"norm_layer.{leaf}")
        m = re.match(r"blocks\.(\d+)\.(norm1|conv1|norm2|conv2)\.(.+)", key)
        i, part, leaf = int(m.group(1)), m.group(2), m.group(3)
        norm_index = {"norm1": 0, "norm2": 4 if tex else 3}
        if part in norm_index:
            inner = "" if (part == "norm1" and i == 0) or leaf == "pixel_feats" else "norm_layer."
            return f"{gen}.blocks.{i}.block_feats.{norm_index[part]}.{inner}{leaf}"
        conv = {"conv1": "block_feats.3" if tex else "block_feats.2", "conv2": "block.0" if tex else "block.1"}
        return f"{gen}.blocks.{i}.{conv[part]}.{leaf}"
    if network == "texture_enhancer":
        enh = cfg.texture_enhancer
        downs = int(math.log2(enh.image_size // enh.bottleneck_size))
        name, _, rest = key.partition(".")
        if name == "stem":
            return "net.blocks.0." + rest
        if name == "to_rgb":
            return f"net.blocks.{1 + 2 * downs + enh.blocks + 2}.{rest}"
        m = re.match(r"(\d+)\.(.+)", rest)
        i = int(m.group(1))
        start = {"down": 1, "middle": 1 + downs, "up": 1 + downs + enh.blocks}[name]
        table = {"conv1": "block_feats.2", "conv2": "block.0", "skip": "skip.1"} if name == "up" else down
        return _block(f"net.blocks.{start + i}", table, m.group(2))
    raise KeyError(network)


def publisher_state_dict(network: str, model: BilayerModel, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One network's state dict as the publisher's training code saves it."""
    net = model.networks()[network]
    out: dict[str, torch.Tensor] = {}
    for key, value in net.state_dict().items():
        theirs = publisher_key(network, key, model)
        if theirs.endswith(".weight") and value.dim() in (2, 4):  # spectral norm on every conv and linear
            scale = 0.5 + torch.rand((), generator=gen).item()
            w = value * scale
            v = torch.nn.functional.normalize(torch.randn(w[0].numel(), generator=gen), dim=0)
            wv = w.reshape(w.shape[0], -1) @ v
            out[theirs[:-len("weight")] + "weight_orig"] = w
            out[theirs[:-len("weight")] + "weight_u"] = wv * (scale / wv.dot(wv))  # uᵀ W v == scale
            out[theirs[:-len("weight")] + "weight_v"] = v
        else:
            out[theirs] = value.clone()
        if theirs.endswith("running_var"):
            out[theirs[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(1000)
    if network == "inference_generator":
        out["identity_grid"] = net.grid.clone()
    return out


def random_model(args: dict = TINY_ARGS, seed: int = 0) -> BilayerModel:
    """A BilayerModel of the args' architecture with random trained-looking weights (non-trivial BN stats)."""
    torch.manual_seed(seed)
    cfg = BilayerConfig.from_args({k: str(v) for k, v in args.items()}, harmonics=False, enhancer=True)
    model = BilayerModel(cfg).eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                t.normal_(0, 0.1)
            elif name.endswith(("pixel_feats", "seed")):
                t.normal_(0, 0.5)
    return model


def write_runs(root: Path, model: BilayerModel, args: dict = TINY_ARGS, seed: int = 0) -> list[Path]:
    """The publisher's download layout under ``root``: runs/main (four networks, epoch 2225) and
    runs/enhancer (the texture enhancer, epoch 1225), each with args.txt."""
    gen = torch.Generator().manual_seed(seed)
    runs = [root / "runs" / "main", root / "runs" / "enhancer"]
    parts = ((runs[0], 2225, ("identity_embedder", "texture_generator", "keypoints_embedder", "inference_generator")),
             (runs[1], 1225, ("texture_enhancer",)))
    for run, epoch, nets in parts:
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run / "args.txt").write_text("".join(f"{k}: {v}\n" for k, v in sorted(args.items())))
        for net in nets:
            torch.save(publisher_state_dict(net, model, gen), run / "checkpoints" / f"{epoch}_{net}.pth")
    return runs
