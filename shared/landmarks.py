"""The landmark sequence: one type and one file format everywhere (add-on, wire, CLI, farm).

``landmarks`` float32 [T, 68, 2] pixels, top-left origin, in an image of ``image_size`` (width,
height); ``frames`` int32 [T] explicit frame numbers, strictly increasing; optional ``confidence``
float32 [T, 68] in [0, 1]. The ``.npz`` file stores exactly these arrays plus ``layout`` = "ibug68";
extra arrays (e.g. a raw track beside a smoothed one) are kept in ``extras``. One extra is understood:
``gaze`` float32 [T, 2, 2], the iris centres (pixels) of the eye of points 36-41, then of 42-47, per
frame (``track`` records it; files without it load as before and their eyes stay as painted); and
``mouth`` uint8 [T, h, w, 3] with ``mouth_lips`` float32 [T, 3]: the actor's mouth interior per frame
and the colour of the lips around it (``track`` records them from footage; the warp engine lays them
into the portrait's opened mouth).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .errors import BadInput
from .layout import LAYOUT_NAME, NUM_POINTS

_CORE_KEYS = {"landmarks", "frames", "image_size", "layout", "confidence"}
PER_FRAME_EXTRAS = ("gaze", "mouth", "mouth_lips")  # extras with one entry per frame that renders use


@dataclass
class LandmarkSequence:
    landmarks: np.ndarray
    frames: np.ndarray
    image_size: tuple[int, int]
    confidence: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32)
        self.frames = np.asarray(self.frames, dtype=np.int32)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.confidence is not None:
            self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.validate()

    def __len__(self) -> int:
        return int(self.landmarks.shape[0])

    def validate(self, source: str = "landmark sequence") -> None:
        """Raise BadInput naming ``source`` if any field is malformed."""
        lm, fr = self.landmarks, self.frames
        if lm.ndim != 3 or lm.shape[1:] != (NUM_POINTS, 2):
            raise BadInput(f"{source}: landmarks must have shape [T, {NUM_POINTS}, 2], got "
                           f"{list(lm.shape)}; use the 68-point iBUG layout")
        if lm.shape[0] < 1:
            raise BadInput(f"{source}: the sequence is empty; it needs at least one frame")
        if not np.all(np.isfinite(lm)):
            bad = int(np.argwhere(~np.isfinite(lm).all(axis=(1, 2)))[0][0])
            raise BadInput(f"{source}: landmarks hold NaN or infinite values (first at index {bad}, "
                           f"frame {int(fr[bad]) if fr.shape == (lm.shape[0],) else '?'}); "
                           "fill or interpolate missing points before use")
        if fr.shape != (lm.shape[0],):
            raise BadInput(f"{source}: frames must have shape [{lm.shape[0]}] to match the landmarks, "
                           f"got {list(fr.shape)}")
        if fr.size > 1 and not np.all(np.diff(fr.astype(np.int64)) > 0):
            i = int(np.argwhere(np.diff(fr.astype(np.int64)) <= 0)[0][0])
            raise BadInput(f"{source}: frame numbers must be strictly increasing; frame {int(fr[i + 1])} "
                           f"follows {int(fr[i])} at index {i + 1}")
        w, h = self.image_size
        if w <= 0 or h <= 0:
            raise BadInput(f"{source}: image_size must be two positive integers (width, height), "
                           f"got {self.image_size}")
        if "gaze" in self.extras:
            g = np.asarray(self.extras["gaze"])
            if g.shape != (len(self.landmarks), 2, 2):
                raise BadInput(f"{source}: gaze must have shape [T, 2, 2] (iris centres of both eyes per "
                               f"frame), got {list(g.shape)}")
            if not np.all(np.isfinite(g)):
                raise BadInput(f"{source}: gaze values must be finite")
            self.extras["gaze"] = g.astype(np.float32)
        if "mouth" in self.extras or "mouth_lips" in self.extras:
            m, c = np.asarray(self.extras.get("mouth")), np.asarray(self.extras.get("mouth_lips"))
            if (m.ndim != 4 or m.shape[0] != len(self.landmarks) or m.shape[3] != 3 or m.dtype != np.uint8
                    or c.shape != (len(self.landmarks), 3) or not np.all(np.isfinite(c))):
                raise BadInput(f"{source}: mouth must be uint8 [T, h, w, 3] with mouth_lips [T, 3] "
                               f"(finite), got {list(m.shape)} {m.dtype} and {list(c.shape)}")
        if self.confidence is not None:
            c = self.confidence
            if c.shape != lm.shape[:2]:
                raise BadInput(f"{source}: confidence must have shape [T, {NUM_POINTS}], got {list(c.shape)}")
            if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
                raise BadInput(f"{source}: confidence values must be finite and within [0, 1]")

    @property
    def gaze(self) -> np.ndarray | None:
        """Iris centres float32 [T, 2, 2] (pixels; eye 36-41, then 42-47), or None."""
        return self.extras.get("gaze")

    def frame_index(self, frame: int) -> int:
        """Position of ``frame`` in the sequence; KeyError if it has no sample."""
        i = int(np.searchsorted(self.frames, frame))
        if i >= len(self.frames) or int(self.frames[i]) != frame:
            raise KeyError(frame)
        return i

    def select(self, first: int, last: int) -> "LandmarkSequence":
        """The frames within [first, last] inclusive (extras are dropped, except the per-frame ones
        the renderer uses: gaze and the actor's mouths)."""
        keep = (self.frames >= first) & (self.frames <= last)
        if not keep.any():
            raise BadInput(f"frame range {first}-{last} holds none of the performance's frames "
                           f"({int(self.frames[0])}-{int(self.frames[-1])})")
        conf = None if self.confidence is None else self.confidence[keep]
        extras = {k: self.extras[k][keep] for k in PER_FRAME_EXTRAS if k in self.extras}
        return LandmarkSequence(self.landmarks[keep], self.frames[keep], self.image_size, conf, extras)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "landmarks": self.landmarks,
            "frames": self.frames,
            "image_size": np.asarray(self.image_size, dtype=np.int32),
            "layout": np.asarray(LAYOUT_NAME),
        }
        if self.confidence is not None:
            arrays["confidence"] = self.confidence
        arrays.update(self.extras)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, source: str = "landmark sequence") -> "LandmarkSequence":
        missing = [k for k in ("landmarks", "frames", "image_size") if k not in arrays]
        if missing:
            raise BadInput(f"{source}: missing array(s) {', '.join(missing)}; a performance file holds "
                           "landmarks [T,68,2], frames [T] and image_size [2]")
        layout = str(arrays["layout"]) if "layout" in arrays else LAYOUT_NAME
        if layout != LAYOUT_NAME:
            raise BadInput(f"{source}: layout is {layout!r}; only {LAYOUT_NAME!r} is supported")
        size = np.asarray(arrays["image_size"]).reshape(-1)
        if size.shape != (2,):
            raise BadInput(f"{source}: image_size must hold two numbers (width, height), got {size.tolist()}")
        extras = {k: np.asarray(arrays[k]) for k in arrays if k not in _CORE_KEYS}
        try:
            seq = cls.__new__(cls)
            seq.landmarks = np.asarray(arrays["landmarks"], dtype=np.float32)
            seq.frames = np.asarray(arrays["frames"]).astype(np.int32)
            seq.image_size = (int(size[0]), int(size[1]))
            seq.confidence = (np.asarray(arrays["confidence"], dtype=np.float32)
                              if "confidence" in arrays else None)
            seq.extras = extras
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{source}: arrays are not numeric ({exc})") from None
        seq.validate(source)
        return seq


def check_points(points, source: str = "portrait landmarks") -> np.ndarray:
    """One face's landmarks as float32 (68, 2), or BadInput naming ``source`` when the shape is wrong
    or a value is not finite."""
    p = np.asarray(points)
    if p.shape != (NUM_POINTS, 2) or not np.issubdtype(p.dtype, np.number) or not np.all(np.isfinite(p)):
        raise BadInput(f"{source}: portrait landmarks must be {NUM_POINTS} finite (x, y) points, got "
                       f"shape {list(p.shape)}")
    return p.astype(np.float32)


def load_sequence(path: str | os.PathLike) -> LandmarkSequence:
    """Read and validate a ``.npz`` performance file. Raises BadInput with the file's name."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise BadInput(f"{path}: no such landmark file") from None
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a readable .npz landmark file ({exc})") from None
    return LandmarkSequence.from_arrays(arrays, source=path)


def save_sequence(seq: LandmarkSequence, path: str | os.PathLike) -> None:
    """Write ``seq`` as ``.npz`` atomically (temp file + rename)."""
    from .atomic_write import atomic_writer

    seq.validate()
    with atomic_writer(path) as f:
        np.savez_compressed(f, **seq.to_arrays())
