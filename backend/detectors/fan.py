"""The paper's detector: face-alignment 1.5.0 (2D-FAN-4 landmarks on faces found by S3FD).

face-alignment downloads its two checkpoints into torch hub's cache on first use. This detector
never lets it reach for the network on its own: it looks for the files first, in ``weights_dir`` (the
CLI's ``--fan-weights DIR``) and then in torch hub's checkpoints folder, and when one is missing it says
which files are needed, where to put them and where they come from. ``download=True`` (``--fan-download``)
lets face-alignment fetch them on a connected machine.

Confidence: FAN's per-point heatmap peak (face-alignment's landmark score), clipped to [0, 1].
torch and face-alignment are imported only when a detector is made.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from livingportrait_wire.errors import BadInput

from . import Detection, largest_first

# The files face-alignment 1.5.0 loads for 2-D landmarks, and where it downloads them from.
LANDMARK_FILE = "2DFAN4-11f355bf06.pth.tar"
FACE_FINDER_FILE = "s3fd-619a316812.pth"
WEIGHT_URLS = {
    LANDMARK_FILE: "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
    FACE_FINDER_FILE: "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
}


def hub_checkpoints_dir() -> Path:
    """torch hub's checkpoints folder, where face-alignment caches its weights
    ($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def ready() -> bool:
    """Whether both checkpoints are in torch hub's default cache, checked without importing torch
    (for the list of usable detectors; --fan-weights DIR can still supply them per job)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    checkpoints = Path(torch_home) / "hub" / "checkpoints"
    return all((checkpoints / name).is_file() for name in WEIGHT_URLS)


def find_weights(weights_dir: str | os.PathLike | None) -> dict[str, Path]:
    """The path of each needed file, searched in ``weights_dir`` and then the hub cache.
    Raises BadInput listing the missing files, the folders searched and the download addresses."""
    folders = ([Path(weights_dir)] if weights_dir else []) + [hub_checkpoints_dir()]
    if weights_dir and not Path(weights_dir).is_dir():
        raise BadInput(f"--fan-weights {weights_dir}: no such folder; it must hold {LANDMARK_FILE} and "
                       f"{FACE_FINDER_FILE}")
    found, missing = {}, []
    for name in WEIGHT_URLS:
        path = next((folder / name for folder in folders if (folder / name).is_file()), None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        where = " or ".join(str(f) for f in folders)
        sources = "; ".join(f"{name} from {WEIGHT_URLS[name]}" for name in missing)
        raise BadInput(f"fan detector: weights missing: {', '.join(missing)} (searched {where}). "
                       f"Put the file(s) in {folders[-1]} or in a folder you pass as --fan-weights DIR. "
                       f"On a connected machine, download {sources}; or pass --fan-download to let "
                       "face-alignment fetch them; or use --detector mediapipe, which needs no download")
    return found


@contextmanager
def _hub_dir_holding(landmark_file: Path):
    """Point torch hub (through $TORCH_HOME, for the duration) at a folder whose hub/checkpoints/
    holds ``landmark_file``: face-alignment looks for its landmark network only in the hub cache."""
    if landmark_file.parent == hub_checkpoints_dir():
        yield
        return
    previous = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory(prefix="lp-fan-") as home:
        checkpoints = Path(home) / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        os.symlink(landmark_file.resolve(), checkpoints / landmark_file.name)
        os.environ["TORCH_HOME"] = home
        try:
            yield
        finally:
            if previous is None:
                del os.environ["TORCH_HOME"]
            else:
                os.environ["TORCH_HOME"] = previous


class FanDetector:
    """``detect(image)`` -> faces as 68 iBUG points (face-alignment's own order), largest first.

    ``weights_dir``: a folder holding the two checkpoints (else torch hub's cache is used);
    ``device``: "cuda" when a GPU is available, else "cpu", unless given; ``download``: let
    face-alignment download missing weights; ``flip_input``: also run on the mirrored face and average
    (face-alignment's default; twice the work, steadier points).
    """

    name = "fan"

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str | None = None,
                 download: bool = False, flip_input: bool = True):
        import face_alignment
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.flip_input = flip_input
        kinds = dict(landmarks_type=face_alignment.LandmarksType.TWO_D, device=self.device,
                     flip_input=flip_input, compile=False)
        if download:
            self._fan = face_alignment.FaceAlignment(**kinds)
            return
        weights = find_weights(weights_dir)
        try:
            with _hub_dir_holding(weights[LANDMARK_FILE]):
                self._fan = face_alignment.FaceAlignment(
                    face_detector_kwargs={"path_to_detector": str(weights[FACE_FINDER_FILE])}, **kinds)
        except Exception as exc:  # a damaged checkpoint can fail anywhere inside torch's unpickler
            raise BadInput(f"fan detector: the weights in {', '.join(str(p) for p in weights.values())} "
                           f"could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                           f"download them again from {' and '.join(WEIGHT_URLS.values())}") from None

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a uint8 RGB (H, W, 3) image as pixel points (top-left origin), largest first."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"detect() needs a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face-alignment warns on every frame without a face
            points, scores, boxes = self._fan.get_landmarks_from_image(
                np.ascontiguousarray(image), return_bboxes=True, return_landmark_score=True)
        if points is None:
            return []
        # the heatmap peaks of the plain and the mirrored pass are summed
        peak = 2.0 if self.flip_input else 1.0
        faces = [Detection(points=np.asarray(p, np.float32)[:, :2],
                           confidence=np.clip(np.asarray(s, np.float32).reshape(68) / peak, 0.0, 1.0),
                           box=tuple(float(v) for v in b[:4]))
                 for p, s, b in zip(points, scores, boxes)]
        return largest_first(faces)
