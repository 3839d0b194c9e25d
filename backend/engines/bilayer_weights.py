"""Where the ``bilayer`` engine's converted weights are, decided without importing torch.

A converted folder (``livingportrait convert-weights bilayer``) holds ``bilayer.safetensors`` and
``bilayer.json``. A job names it with ``settings.bilayer.checkpoint``; a relative path resolves against
``$LIVINGPORTRAIT_MODELS`` (else the backend's working folder). Without one, the engine uses
``$LIVINGPORTRAIT_MODELS/bilayer``: the engine is offered in the handshake only when that folder holds
converted weights (as ``fan`` is offered only when its weights are in place).
"""
from __future__ import annotations

import os

from livingportrait_wire.errors import BadInput

from .fewshot_settings import MODELS_ENV, PICKLE_SUFFIXES

DEFAULT_FOLDER = "bilayer"
FILES = ("bilayer.safetensors", "bilayer.json")


def _resolve(value: str | None) -> str:
    path = os.path.expanduser(value or DEFAULT_FOLDER)
    if not os.path.isabs(path):
        path = os.path.join(os.environ.get(MODELS_ENV) or os.getcwd(), path)
    return os.path.normpath(path)


def configured(settings=None) -> bool:
    """True when the job's (or the default) folder holds converted weights. ``settings`` a RenderSettings
    or None (the handshake: only the default folder counts, and only with $LIVINGPORTRAIT_MODELS set)."""
    value = getattr(getattr(settings, "bilayer", None), "checkpoint", None)
    if value is None and not os.environ.get(MODELS_ENV):
        return False
    folder = _resolve(value)
    return all(os.path.isfile(os.path.join(folder, f)) for f in FILES)


def resolve_folder(value: str | None) -> str:
    """The converted folder a job names (or the default) -> its absolute path. BadInput saying what is
    missing and how to make it."""
    folder = _resolve(value)
    where = f"${MODELS_ENV}={os.environ[MODELS_ENV]}" if os.environ.get(MODELS_ENV) else "the backend's folder"
    if os.path.isfile(folder) and folder.endswith(FILES[0]):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise BadInput(f"bilayer.checkpoint: {folder} does not exist on the backend machine (relative paths "
                       f"resolve against {where}); make it with `livingportrait convert-weights bilayer "
                       "RUN_DIR ... --out DIR`")
    missing = [f for f in FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        pickles = sorted(f for f in os.listdir(folder) if f.lower().endswith(PICKLE_SUFFIXES))
        hint = (f"; it holds the publisher's pickled checkpoints ({', '.join(pickles[:3])}), which are never "
                "loaded directly: convert them first") if pickles else ""
        raise BadInput(f"bilayer.checkpoint: {folder} has no {' or '.join(missing)}{hint} "
                       "(`livingportrait convert-weights bilayer RUN_DIR ... --out DIR`)")
    return folder
