"""Published bi-layer runs -> our converted model folder (``bilayer.safetensors`` + ``bilayer.json``).

The publisher ships, per training run, ``runs/<experiment>/args.txt`` and
``runs/<experiment>/checkpoints/<epoch>_<network>.pth`` (plain state dicts). Files are read with
``torch.load(weights_only=True)`` only; spectral norm is folded with the stored u/v (weight / uᵀWv, no
power iteration, as the publisher's inference does); keys are renamed to our layout (layout.py) and
loaded strictly into our networks, so a file of another layout is refused before anything is written.
"""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch

from livingportrait_wire.errors import BadInput

from .config import BilayerConfig, parse_args_text
from .layout import DROPPED, rename
from .model import NETWORKS, BilayerModel

WEIGHTS_FILE = "bilayer.safetensors"
CONFIG_FILE = "bilayer.json"
# Where each network comes from in the publisher's download (README "Inference API usage").
PUBLISHED = {"identity_embedder": "runs/vc2-hq_adrianb_paper_main/checkpoints/2225_identity_embedder.pth",
             "texture_generator": "runs/vc2-hq_adrianb_paper_main/checkpoints/2225_texture_generator.pth",
             "keypoints_embedder": "runs/vc2-hq_adrianb_paper_main/checkpoints/2225_keypoints_embedder.pth",
             "inference_generator": "runs/vc2-hq_adrianb_paper_main/checkpoints/2225_inference_generator.pth",
             "texture_enhancer": "runs/vc2-hq_adrianb_paper_enhancer/checkpoints/1225_texture_enhancer.pth"}


def find_checkpoint(runs: list[Path], network: str) -> tuple[Path, Path]:
    """(run folder, the newest ``<epoch>_<network>.pth`` in the first run that has one). BadInput naming
    the file and where it goes when no run has it."""
    for run in runs:
        found = []
        for f in (run / "checkpoints").glob(f"*_{network}.pth"):
            m = re.fullmatch(r"(\d+)_" + network + r"\.pth", f.name)
            if m:
                found.append((int(m.group(1)), f))
        if found:
            return run, max(found)[1]
    where = ", ".join(str(r / "checkpoints") for r in runs)
    raise BadInput(f"{network}: no <epoch>_{network}.pth in {where}. It comes with the publisher's download as "
                   f"{PUBLISHED[network]}; pass that run's folder (the one holding args.txt and checkpoints/)")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict read with weights_only=True. BadInput for a pickled module/object, a truncated
    or corrupt file, or anything that is not a mapping of names to tensors."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).splitlines()[0][:160]
        raise BadInput(f"{path}: refused: it holds pickled Python objects (a whole module or other code), not a "
                       f"plain state dict of tensors, and unpickling it could run code ({first}). The "
                       "publisher's files are plain state dicts: download them again") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise BadInput(f"{path}: cannot be read: the file is truncated or corrupt "
                       f"({str(err).splitlines()[0][:160]}); download it again") from None
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise BadInput(f"{path}: holds a {type(obj).__name__} that is not a state dict of tensors; refused")
    return obj


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``X.weight_orig``/``X.weight_u``/``X.weight_v`` triple by ``X.weight`` = W / (uᵀ W v),
    W flattened to (out, -1), computed in float64."""
    out = {}
    for key, value in state.items():
        if key.endswith(("weight_u", "weight_v")) and key[:-2] + "_orig" in state:
            continue
        if key.endswith("weight_orig"):
            base = key[: -len("_orig")]
            if base + "_u" not in state or base + "_v" not in state:
                raise BadInput(f"{key}: spectral-norm weight without its stored u/v vectors")
            w = value.double()
            sigma = torch.dot(state[base + "_u"].double(), w.reshape(w.shape[0], -1) @ state[base + "_v"].double())
            out[base] = (w / sigma).float()
        else:
            out[key] = value
    return out


def to_our_layout(network: str, state: dict[str, torch.Tensor], cfg: BilayerConfig, source: Path) -> dict:
    """Rename one network's (folded) state dict; BadInput listing keys that have no place in our layout."""
    ours, stray = {}, []
    for key, value in state.items():
        if key.endswith("num_batches_tracked") or key in DROPPED:
            continue
        new = rename(network, key, cfg)
        if new is None:
            stray.append(key)
        else:
            ours[new] = value
    if stray:
        raise BadInput(f"{source}: {len(stray)} key(s) do not belong to a published-layout {network} "
                       f"(first: {', '.join(stray[:4])}); is this the right file for {network}?")
    return ours


def load_into(model: BilayerModel, network: str, ours: dict, source: Path) -> None:
    net = model.networks()[network]
    expected = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(ours)) + [f"(unexpected) {k}" for k in sorted(set(ours) - set(expected))]
    wrong = [f"{k} {tuple(ours[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in ours and ours[k].shape != v.shape]
    if missing or wrong:
        detail = (f"missing {', '.join(missing[:4])}" if missing else "") + \
                 ("; " if missing and wrong else "") + (f"shapes differ: {', '.join(wrong[:3])}" if wrong else "")
        raise BadInput(f"{source}: does not match the {network} that args.txt describes ({detail}); the "
                       "checkpoint and args.txt must come from the same run")
    net.load_state_dict({k: v.float() for k, v in ours.items()}, strict=False)


def convert_runs(run_dirs: list[str], out_dir: str) -> dict:
    """Convert the publisher's run folders into ``out_dir``. Returns a summary (config, sources,
    parameter counts). BadInput for every refusal, before anything is written."""
    from safetensors.torch import save

    from livingportrait_wire.atomic_write import write_bytes_atomic

    runs = [Path(r) for r in run_dirs]
    for run in runs:
        if not run.is_dir():
            raise BadInput(f"{run}: no such folder; pass the publisher's run folders, e.g. "
                           "runs/vc2-hq_adrianb_paper_main runs/vc2-hq_adrianb_paper_enhancer")
        if not (run / "args.txt").is_file():
            raise BadInput(f"{run}/args.txt is missing: it comes with the publisher's download in each run folder "
                           "(runs/<experiment>/args.txt), beside checkpoints/; put it there")
    found = {net: find_checkpoint(runs, net) for net in NETWORKS}
    args: dict[str, str] = {}
    for run in [found["inference_generator"][0]] + runs:
        for k, v in parse_args_text((run / "args.txt").read_text()).items():
            args.setdefault(k, v)
    enh_args = parse_args_text((found["texture_enhancer"][0] / "args.txt").read_text())
    args.update({k: v for k, v in enh_args.items() if k.startswith("enh_")})
    states = {net: fold_spectral_norm(read_state_dict(path)) for net, (_, path) in found.items()}
    kp = states["keypoints_embedder"]
    harmonics = "frequencies" in kp or ("net.mlp.0.weight" in kp and
                                        kp["net.mlp.0.weight"].shape[1] != int(args.get("pse_in_channels", "136")))
    try:
        cfg = BilayerConfig.from_args(args, harmonics=harmonics, enhancer=True)
    except ValueError as err:
        raise BadInput(f"args.txt: {err}") from None
    model = BilayerModel(cfg)
    tensors = {}
    for net, (_, path) in found.items():
        ours = to_our_layout(net, states[net], cfg, path)
        load_into(model, net, ours, path)
        tensors.update({f"{net}.{k}": v.float().contiguous() for k, v in ours.items()})
    sources = {net: str(path) for net, (_, path) in found.items()}
    os.makedirs(out_dir, exist_ok=True)
    write_bytes_atomic(os.path.join(out_dir, WEIGHTS_FILE),
                       save(tensors, metadata={"format": "livingportrait-bilayer/1", "sources": json.dumps(sources)}))
    write_bytes_atomic(os.path.join(out_dir, CONFIG_FILE), cfg.to_json().encode())
    params = {net: sum(p.numel() for p in m.parameters()) for net, m in model.networks().items()}
    return {"config": cfg, "sources": sources, "parameters": params}


def load_converted(folder: str, device: torch.device | str = "cpu") -> BilayerModel:
    """A converted folder -> the BilayerModel in eval mode on ``device``. BadInput when files are missing
    or do not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wpath, cpath = os.path.join(folder, WEIGHTS_FILE), os.path.join(folder, CONFIG_FILE)
    for p in (cpath, wpath):
        if not os.path.isfile(p):
            raise BadInput(f"{p}: missing; make the folder with `livingportrait convert-weights bilayer RUN_DIRS "
                           f"--out {folder}`")
    try:
        cfg = BilayerConfig.from_json(Path(cpath).read_text())
        tensors = load_file(wpath)
    except (ValueError, TypeError, KeyError, SafetensorError, OSError) as err:
        raise BadInput(f"{folder}: not a converted bi-layer model ({str(err)[:160]}); convert again") from None
    model = BilayerModel(cfg)
    for net, module in model.networks().items():
        part = {k[len(net) + 1:]: v for k, v in tensors.items() if k.startswith(net + ".")}
        load_into(model, net, part, Path(wpath))
    return model.eval().to(device)
