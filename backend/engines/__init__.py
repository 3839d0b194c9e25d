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


# name -> (module, class, a cheap check that it can run here)
_REGISTRY: dict[str, tuple[str, str, Callable[[], bool]]] = {
    "warp": ("livingportrait_backend.engines.warp", "WarpEngine", lambda: True),
    "fewshot": ("livingportrait_backend.engines.fewshot", "FewShotEngine",
                lambda: all(importlib.util.find_spec(m) is not None for m in ("torch", "safetensors"))),
}


def available_engines() -> list[str]:
    return [name for name, (_, _, ok) in _REGISTRY.items() if ok()]


def check_engine(name: str) -> None:
    """BadInput (code unknown_engine) when this backend lacks engine ``name``; cheap (imports nothing)."""
    if name not in _REGISTRY or not _REGISTRY[name][2]():
        raise BadInput(f"engine {name!r} is not available on this backend; choose one of "
                       f"{', '.join(available_engines())}", code="unknown_engine")


def create_engine(name: str) -> Engine:
    """A fresh engine instance. BadInput (code unknown_engine) for a name this backend lacks."""
    check_engine(name)
    module, cls, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()
