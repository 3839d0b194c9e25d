"""The few-shot engine's personalised-model cache: adaptations kept on disk, so a re-render never refits.

A farm renders one job as many frame-range chunks, often on the same machine; fine-tuning is the slow
part, and its result depends only on (the checkpoint's bytes, the shots' bytes and landmarks, the
fine-tune settings). Each entry is ``<root>/personalized/<key>.safetensors``: ``psi`` and, after
fine-tuning, ``generator.*`` tensors, with the facts about how it was made as JSON in the metadata.
Written atomically; an unreadable entry counts as a miss and is overwritten by the next fit.

Root: ``$LIVINGPORTRAIT_CACHE`` or ``~/.cache/livingportrait``; in farm mode, the job's prepare cache beside
the output (``prepare_cache.py``), so every chunk of a job, on any host, reuses the first one's fit.
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


def entry_path(key: str, root: str | None = None) -> str:
    """Where ``key``'s entry lives under ``root`` (default ``cache_root()``; a farm job passes its
    prepare cache beside the output, so every chunk of the job finds the model the first one fitted)."""
    return os.path.join(root or cache_root(), "personalized", f"{key}.safetensors")


def load(key: str, root: str | None = None):
    """The cached Personalization for ``key``, or None (absent or unreadable)."""
    from safetensors import SafetensorError, safe_open

    from ..model.personalized import Personalization

    path = entry_path(key, root)
    if not os.path.isfile(path):
        return None
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != FORMAT or "psi" not in tensors:
            return None
        info = json.loads(meta.get("info", "{}"))
    except (SafetensorError, OSError, ValueError):
        return None
    prefix = "generator."
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)} or None
    return Personalization(tensors["psi"], state, info)


def save(key: str, personal, root: str | None = None) -> str:
    """Store a Personalization under ``key`` (atomically); returns the file's path."""
    from safetensors.torch import save as to_bytes

    tensors = {"psi": personal.psi.contiguous()}
    for k, v in (personal.generator_state or {}).items():
        tensors[f"generator.{k}"] = v.contiguous()
    path = entry_path(key, root)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_bytes_atomic(path, to_bytes(tensors, metadata={"format": FORMAT, "info": json.dumps(personal.info)}))
    return path
