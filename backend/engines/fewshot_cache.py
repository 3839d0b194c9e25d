"""The few-shot engine's personalised-model cache: adaptations kept on disk, so a re-render never refits.

A farm renders one job as many frame-range chunks, often on the same machine; fine-tuning is the slow
part, and its result depends only on (the checkpoint's bytes, the shots' bytes and landmarks, the
fine-tune settings). Each entry is ``<root>/personalized/<key>.safetensors``: ``psi`` and, after
fine-tuning, ``generator.*`` tensors, with the facts about how it was made as JSON in the metadata.
Written atomically; an unreadable entry counts as a miss and is overwritten by the next fit.

Root: ``$LIVINGPORTRAIT_CACHE`` or ``~/.cache/livingportrait``; in farm mode, the job's prepare cache beside
the output (``prepare_cache.py``), so every chunk of a job, on any host, reuses the first one's fit.
``read_entry``/``write_entry`` are the mechanism under one ``kind`` folder; the bi-layer engine keeps
its per-portrait identity there too.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from livingportrait_wire.atomic_write import write_bytes_atomic

FORMAT = "livingportrait-personalized/1"
CACHE_ENV = "LIVINGPORTRAIT_CACHE"


def cache_root() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "livingportrait")


def cache_key(checkpoint_digest: str, shot_digests: list[str], shot_points: list[np.ndarray], settings: dict) -> str:
    """A hex key naming one personalisation: the checkpoint, each shot's file digest and landmarks
    (they decide the crops), and the fine-tune settings (a JSON-able dict)."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT, "checkpoint": checkpoint_digest, "shots": list(shot_digests),
                         "settings": settings}, sort_keys=True).encode())
    for points in shot_points:
        h.update(np.ascontiguousarray(points, np.float32).tobytes())
    return h.hexdigest()[:32]


def entry_path(key: str, root: str | None = None, kind: str = "personalized") -> str:
    """Where ``key``'s entry lives under ``root`` (default ``cache_root()``; a farm job passes its
    prepare cache beside the output, so every chunk of the job finds the model the first one fitted)."""
    return os.path.join(root or cache_root(), kind, f"{key}.safetensors")


def read_entry(key: str, kind: str, fmt: str, root: str | None = None):
    """(tensors, info) stored under ``key`` in the ``kind`` folder with format ``fmt``, or None (absent,
    unreadable or another format)."""
    from safetensors import SafetensorError, safe_open

    path = entry_path(key, root, kind)
    if not os.path.isfile(path):
        return None
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != fmt:
            return None
        return tensors, json.loads(meta.get("info", "{}"))
    except (SafetensorError, OSError, ValueError):
        return None


def write_entry(key: str, kind: str, fmt: str, tensors: dict, info: dict, root: str | None = None) -> str:
    """Store ``tensors`` (name -> tensor) and ``info`` (JSON-able) under ``key``, atomically; the path."""
    from safetensors.torch import save as to_bytes

    path = entry_path(key, root, kind)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_bytes_atomic(path, to_bytes({k: v.contiguous() for k, v in tensors.items()},
                                      metadata={"format": fmt, "info": json.dumps(info)}))
    return path


def load(key: str, root: str | None = None):
    """The cached Personalization for ``key``, or None (absent or unreadable)."""
    from ..model.personalized import Personalization

    entry = read_entry(key, "personalized", FORMAT, root)
    if entry is None or "psi" not in entry[0]:
        return None
    tensors, info = entry
    prefix = "generator."
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)} or None
    return Personalization(tensors["psi"], state, info)


def save(key: str, personal, root: str | None = None) -> str:
    """Store a Personalization under ``key`` (atomically); returns the file's path."""
    tensors = {"psi": personal.psi}
    for k, v in (personal.generator_state or {}).items():
        tensors[f"generator.{k}"] = v
    return write_entry(key, "personalized", FORMAT, tensors, personal.info, root)
