"""The per-job prepare cache: what a render prepares from the portrait alone, kept beside the output.

A farm renders one job as many chunks, each a fresh process, often on different hosts sharing the output
folder. What depends only on the portrait and the job (the portrait's landmarks, the warp engine's
person layers, the few-shot personalised model) is made by the first chunk and read by the others from
``OUT/.livingportrait-cache/``. Entries are named by a digest of everything that decided them plus the
package version; they are written atomically (chunks racing to write one entry write the same bytes);
an unreadable entry is a miss and is made again. Deleting the folder only costs the next chunk its
preparation.
"""
from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np

from livingportrait_wire.atomic_write import write_bytes_atomic

from . import __version__

CACHE_FOLDER = ".livingportrait-cache"


def job_cache_dir(out_dir: str) -> str:
    """The cache folder of the jobs that write into ``out_dir``."""
    return os.path.join(out_dir, CACHE_FOLDER)


def entry_key(*parts) -> str:
    """A hex key naming an entry: JSON-able ``parts`` (digests, settings) and this package's version."""
    text = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _path(root: str, kind: str, key: str) -> str:
    return os.path.join(root, kind, f"{key}.npz")


def load_arrays(root: str, kind: str, key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored as ``kind``/``key`` under ``root``, or None (absent or unreadable)."""
    path = _path(root, kind, key)
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except (OSError, ValueError, EOFError):
        return None


def save_arrays(root: str, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Store ``arrays`` as ``kind``/``key`` under ``root`` (atomically, uncompressed, exact)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = _path(root, kind, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())
