"""Checkpoints as safetensors + JSON: never pickle.

A model checkpoint is a folder holding
  - ``model.safetensors``: every network's state under ``embedder.``, ``generator.``, ``discriminator.``
    (spectral-norm ``original``/``_u``/``_v`` tensors included), the config JSON in the file's metadata;
  - ``config.json``: the same ModelConfig, for people and tools.
A training checkpoint adds ``optimizer.safetensors`` (every Adam moment and step count) and
``trainer.json`` (step, optimizer param groups, counters) plus torch's RNG states as uint8 tensors in
the optimizer file, so a resumed run continues bit-exactly on CPU.
"""
from __future__ import annotations

import json
import os

import torch
from torch import nn

from livingportrait_wire.atomic_write import write_bytes_atomic
from livingportrait_wire.errors import BadInput

from .config import ModelConfig
from .networks import NETWORK_NAMES, build_networks
from .tensor_file import read_safetensors

FORMAT = "livingportrait-model/1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer.json"


def _save_tensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    write_bytes_atomic(path, data)


def _read_tensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not os.path.isfile(path):
        raise BadInput(f"{path}: checkpoint file missing; point at a folder written by `livingportrait train`")
    return read_safetensors(path, "use a safetensors checkpoint written by `livingportrait train` "
                                  "(re-copy or re-train a damaged one)")


def save_model(folder: str | os.PathLike, cfg: ModelConfig, nets: dict[str, nn.Module]) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (created if needed)."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    tensors = {f"{name}.{k}": v for name in NETWORK_NAMES if name in nets
               for k, v in _unwrap(nets[name]).state_dict().items()}
    _save_tensors(os.path.join(folder, MODEL_FILE), tensors, {"format": FORMAT, "config": cfg.to_json()})
    write_bytes_atomic(os.path.join(folder, CONFIG_FILE), (cfg.to_json() + "\n").encode())


def load_model(folder: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ModelConfig, dict[str, nn.Module]]:
    """Rebuild the networks from ``folder/model.safetensors`` alone -> (config, nets) in eval mode.

    Raises BadInput when the file is missing, a pickle, corrupt, or does not match its own config.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, MODEL_FILE) if os.path.isdir(folder) else folder
    tensors, meta = _read_tensors(path)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise BadInput(f"{path}: not a Living Portrait model checkpoint (format {meta.get('format')!r})")
    try:
        cfg = ModelConfig.from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError) as err:
        raise BadInput(f"{path}: the embedded config is unreadable ({err})") from None
    nets = build_networks(cfg)
    for name, net in nets.items():
        prefix = name + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise BadInput(f"{path}: the {name} weights do not match the config ({str(err)[:300]})") from None
        net.to(device).eval()
    return cfg, nets


def _unwrap(net: nn.Module) -> nn.Module:
    return net.module if hasattr(net, "module") else net  # DistributedDataParallel


def save_training_state(folder: str, optimizers: dict[str, torch.optim.Optimizer], trainer: dict) -> None:
    """Optimizer moments, torch RNG states (as tensors) and ``trainer`` (JSON-able) into ``folder``."""
    tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    groups = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        for idx, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"{name}.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        groups[name] = sd["param_groups"]
    _save_tensors(os.path.join(folder, OPTIMIZER_FILE), tensors, {"format": FORMAT})
    write_bytes_atomic(os.path.join(folder, TRAINER_FILE),
                       json.dumps({"trainer": trainer, "param_groups": groups}, indent=1).encode())


def load_training_state(folder: str, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore optimizers and RNG states saved by ``save_training_state``; returns the trainer dict."""
    tensors, _ = _read_tensors(os.path.join(folder, OPTIMIZER_FILE))
    with open(os.path.join(folder, TRAINER_FILE)) as f:
        saved = json.load(f)
    for name, opt in optimizers.items():
        state: dict[int, dict] = {}
        prefix = name + "."
        for key, value in tensors.items():
            if key.startswith(prefix):
                idx, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"][name]})
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_keys = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    cuda = [tensors[k] for k in cuda_keys]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return saved["trainer"]
