"""Reading a safetensors file of weights: pickles refused by their first bytes, every failure a BadInput
that names the file and says what to do (each caller knows the remedy for its own kind of file)."""
from __future__ import annotations

import os

from livingportrait_wire.errors import BadInput


def read_safetensors(path: str | os.PathLike, remedy: str) -> tuple[dict, dict[str, str]]:
    """-> (tensors by name, the file's metadata). ``remedy`` ends each message: what the user should do.
    The caller checks first that the file exists (it knows what a missing one means)."""
    import torch  # noqa: F401  (safe_open's "pt" framework needs it loaded)
    from safetensors import safe_open

    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors file opens with an 8-byte header length whose first byte can be anything (0x80
    # included), then the JSON header's "{": only without that is a pickle/zip opening a pickle.
    if head[8:9] != b"{" and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise BadInput(f"{path}: this is a pickle/torch.save file, which is refused (it can run code); {remedy}")
    try:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for corrupt headers and short data
        raise BadInput(f"{path}: corrupt or truncated safetensors file ({err}); {remedy}") from None
