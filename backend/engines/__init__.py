"""Engines (synthesizers): one interface, a tiny registry.

An engine turns a portrait and, per frame, 68 target landmarks into the changed part of the frame::

    engine = create_engine("warp")
    engine.prepare(portraits, points, settings)   # once per job: portraits[0] is the one animated
    patch = engine.render(targets)                # per frame -> FramePatch (scene-linear)

``portraits`` are ``images.Portrait`` (1..32 shots of one face), ``settings`` the job's checked
``RenderSettings`` (an engine reads its own part: ``settings.warp``, ``settings.fewshot``), ``points`` float32 (68, 2) pixels of
``portraits[0]`` (top-left origin), ``targets`` float32 (68, 2) in the same pixel space. Engines are
imported only when created, so a warp-only backend never imports torch.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from livingportrait_wire.errors import BadInput
from livingportrait_wire.render_settings import RenderSettings


@dataclass
class FramePatch:
    """The part of a frame an engine changed: rows y0.., columns x0.. of the full portrait.

    ``rgb`` float32 (h, w, 3) scene-linear; ``matte`` float32 (h, w) in [0, 1], where the frame moved.
    """

    y0: int
    x0: int
    rgb: np.ndarray
    matte: np.ndarray


class Engine(Protocol):
    name: str

    def prepare(self, portraits: list, points: np.ndarray, settings: RenderSettings | None = None,
                on_progress: Callable[[str, int, int], None] | None = None) -> None: ...

    def render(self, targets: np.ndarray) -> FramePatch: ...


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _bilayer_ready(settings: RenderSettings | None) -> bool:
    from .bilayer_weights import configured

    return _have("torch", "safetensors") and configured(settings)


# name -> (module, class, a cheap check that it can run here for a job's settings, or None: in general)
_REGISTRY: dict[str, tuple[str, str, Callable[[RenderSettings | None], bool]]] = {
    "warp": ("livingportrait_backend.engines.warp", "WarpEngine", lambda settings=None: True),
    "fewshot": ("livingportrait_backend.engines.fewshot", "FewShotEngine",
                lambda settings=None: _have("torch", "safetensors")),
    # Offered only when converted weights are configured ($LIVINGPORTRAIT_MODELS/bilayer, or the job's own
    # bilayer.checkpoint), as fan is offered only when its weights are in place.
    "bilayer": ("livingportrait_backend.engines.bilayer", "BilayerEngine", _bilayer_ready),
}


def available_engines(settings: RenderSettings | None = None) -> list[str]:
    """Engines usable here: in general (the handshake), or for a job whose ``settings`` may name model files."""
    return [name for name, (_, _, ok) in _REGISTRY.items() if ok(settings)]


def check_engine(name: str, settings: RenderSettings | None = None) -> None:
    """BadInput (code unknown_engine) when this backend lacks engine ``name`` (for a job's ``settings``,
    which may name model files); cheap (imports nothing)."""
    if name not in _REGISTRY or not _REGISTRY[name][2](settings):
        if name == "bilayer" and _have("torch", "safetensors"):
            from .bilayer_weights import resolve_folder

            if getattr(getattr(settings, "bilayer", None), "checkpoint", None):
                resolve_folder(settings.bilayer.checkpoint)  # says what is wrong with the folder it names
            raise BadInput("engine 'bilayer' needs the publisher's weights converted on the backend machine: "
                           "`livingportrait convert-weights bilayer RUN_DIR ... --out DIR`, then pass "
                           "--checkpoint DIR or put the folder at $LIVINGPORTRAIT_MODELS/bilayer; or choose one "
                           f"of {', '.join(available_engines(settings))}", code="unknown_engine")
        raise BadInput(f"engine {name!r} is not available on this backend; choose one of "
                       f"{', '.join(available_engines(settings))}", code="unknown_engine")


def create_engine(name: str, settings: RenderSettings | None = None) -> Engine:
    """A fresh engine instance. BadInput (code unknown_engine) for a name this backend lacks."""
    check_engine(name, settings)
    module, cls, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()
