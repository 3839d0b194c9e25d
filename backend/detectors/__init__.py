"""Landmark detectors behind one interface: an image in, 68 iBUG points per face out.

A detector takes a uint8 RGB image (H, W, 3) and returns every face it finds as a ``Detection``
(points in pixels, top-left origin, the 68-point iBUG order), largest face first, ``[]`` when there is
none. Detectors are created by name through ``get_detector``; their heavy packages (mediapipe, torch,
face-alignment) are imported only when one is created, so listing them stays cheap.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from livingportrait_wire.errors import BadInput


@dataclass
class Detection:
    """One face: ``points`` float32 (68, 2) pixels (top-left origin, iBUG order), ``confidence``
    float32 (68,) in [0, 1], ``box`` (x0, y0, x1, y1) pixels; ``iris`` float32 (2, 3) centre x, y and
    radius of the iris of the eye of points 36-41, then 42-47, when the detector finds irises."""

    points: np.ndarray
    confidence: np.ndarray
    box: tuple[float, float, float, float]
    iris: np.ndarray | None = None

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in a uint8 RGB (H, W, 3) image, largest first; [] when none."""
        ...


# name -> (module under this package, class name, top-level packages it needs at run time). A module
# may define ``ready()`` -> bool, a cheap check (no heavy imports) that its model files are in place.
_REGISTRY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "mediapipe": ("mediapipe_mesh", "MediapipeMeshDetector", ("mediapipe",)),
    "fan": ("fan", "FanDetector", ("face_alignment", "torch")),
}


def available_detectors() -> list[str]:
    """Names of the detectors usable here as they stand: packages installed and model files in place
    (nothing heavy is imported, no model is loaded)."""
    usable = []
    for name, (module_name, _, needs) in _REGISTRY.items():
        if not all(importlib.util.find_spec(pkg) is not None for pkg in needs):
            continue
        ready = getattr(importlib.import_module(f"{__name__}.{module_name}"), "ready", None)
        if ready is None or ready():
            usable.append(name)
    return usable


def get_detector(name: str, **options) -> Detector:
    """Create the detector called ``name`` (options go to its constructor); BadInput if unknown."""
    if name not in _REGISTRY:
        raise BadInput(f"unknown detector {name!r}; choose one of: {', '.join(_REGISTRY)} "
                       f"(usable here: {', '.join(available_detectors()) or 'none'})")
    module_name, class_name, needs = _REGISTRY[name]
    missing = [pkg for pkg in needs if importlib.util.find_spec(pkg) is None]
    if missing:
        raise BadInput(f"detector {name!r} needs the package(s) {', '.join(missing)}, which are not "
                       "installed; run `make setup` or choose another detector")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(**options)


def largest_first(detections: list[Detection]) -> list[Detection]:
    """Detections sorted by box area, largest first (the order every detector returns)."""
    return sorted(detections, key=lambda d: d.area, reverse=True)


def pick_face(detections: list[Detection], face_index: int, source: str) -> Detection:
    """The ``face_index``-th largest face; BadInput naming ``source`` when there are too few."""
    if not detections:
        raise BadInput(f"{source}: no face found; pass --portrait-landmarks FILE or choose another image")
    if not 0 <= face_index < len(detections):
        raise BadInput(f"{source}: face index {face_index} is out of range: {len(detections)} "
                       f"face(s) found (valid: 0-{len(detections) - 1}, 0 = the largest)")
    return detections[face_index]


def detect_portrait_landmarks(image: np.ndarray, source: str, detector: str | Detector = "mediapipe",
                              face_index: int = 0) -> Detection:
    """The landmarks of one face in a still portrait.

    ``image`` uint8 RGB (H, W, 3); ``source`` names it in error messages (usually the file);
    ``detector`` a registry name or a detector instance; ``face_index`` 0 = the largest face.
    Raises BadInput when no face is found or ``face_index`` is out of range.
    """
    if isinstance(detector, str):
        detector = get_detector(detector)
    return pick_face(detector.detect(image), face_index, source)
