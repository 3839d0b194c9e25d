"""The ``fewshot`` engine's job settings: names, defaults, validation, and where model files are found.

Settings arrive as a JSON mapping (the CLI's flags or the wire's job header) shared with other parts of
the job (retargeting reads its own keys), so only the keys below are read here; each bad value is
refused with a BadInput naming the key. Model files live ON THE BACKEND MACHINE: a relative path is
resolved against ``$LIVINGPORTRAIT_MODELS`` when set (else the backend's working folder).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from livingportrait_wire.errors import BadInput

MODELS_ENV = "LIVINGPORTRAIT_MODELS"
MODEL_FILE = "model.safetensors"  # the file in a checkpoint folder (model.checkpoint writes it)
# Files torch.save / pickle write: refused, since unpickling runs arbitrary code.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")
MAX_SHOTS = 32
MAX_FINETUNE_STEPS = 100_000


def resolve_model_file(value, key: str) -> str:
    """A checkpoint folder or safetensors file named by setting ``key`` -> the safetensors file's path.
    BadInput when it is missing or a pickle."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"settings.{key}: give the path of a checkpoint folder (or its model.safetensors) on "
                       "the backend machine", code="bad_input")
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        path = os.path.join(os.environ.get(MODELS_ENV) or os.getcwd(), path)
    path = os.path.normpath(path)
    where = f" (relative paths are resolved against ${MODELS_ENV}={os.environ[MODELS_ENV]})" \
        if os.environ.get(MODELS_ENV) else f" (relative paths are resolved against the backend's folder; set ${MODELS_ENV})"
    if path.lower().endswith(PICKLE_SUFFIXES):
        raise BadInput(f"settings.{key}: {path} is a pickle/torch.save file, which is refused (loading it can "
                       "run code); use a safetensors checkpoint written by `livingportrait train`")
    if os.path.isdir(path):
        inside = os.path.join(path, MODEL_FILE)
        if not os.path.isfile(inside):
            pickles = sorted(f for f in os.listdir(path) if f.lower().endswith(PICKLE_SUFFIXES))
            hint = (f"; it holds pickle files ({', '.join(pickles[:3])}), which are refused: use a safetensors "
                    "checkpoint written by `livingportrait train`") if pickles else \
                "; point at a checkpoint folder written by `livingportrait train`"
            raise BadInput(f"settings.{key}: {path} has no {MODEL_FILE}{hint}")
        return inside
    if not os.path.isfile(path):
        raise BadInput(f"settings.{key}: {path} does not exist on the backend machine{where}")
    return path


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (hex, 16 chars), remembered per (path, size, mtime) in this process."""
    st = os.stat(path)
    memo = (path, st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _DIGESTS[memo] = h.hexdigest()[:16]
    return _DIGESTS[memo]


def _int(settings: dict, key: str, default: int, lo: int, hi: int) -> int:
    value = settings.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not lo <= value <= hi:
        raise BadInput(f"settings.{key}: {value!r} is not a whole number from {lo} to {hi}")
    return int(value)


def _choice(settings: dict, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = settings.get(key, default)
    if value is None:
        return default
    if value not in choices:
        raise BadInput(f"settings.{key}: {value!r} is not one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class FewShotSettings:
    checkpoint: str  # the resolved model.safetensors path
    finetune_steps: int = 0
    finetune_batch: int = 4
    shots: int = 1
    batch: int | None = None  # frames per generator call; None: 8 on a GPU, 1 on the CPU
    device: str = "auto"
    compile: bool = False
    precision: str = "auto"  # auto: bf16 (fp16 where bf16 is missing) on GPUs, fp32 on the CPU
    shot_landmarks: tuple[np.ndarray, ...] = ()  # landmarks of portraits[1:], else detected
    detector: str = "mediapipe"
    vgg19: str | None = None
    vggface: str | None = None

    @classmethod
    def parse(cls, settings: dict, portraits: int) -> "FewShotSettings":
        """Validate ``settings`` for a job with ``portraits`` shots. BadInput naming the bad key."""
        if "checkpoint" not in settings:
            raise BadInput("settings.checkpoint: the fewshot engine needs a model checkpoint (a folder written "
                           "by `livingportrait train`); pass --checkpoint or set it in the job")
        shots = _int(settings, "shots", min(portraits, MAX_SHOTS), 1, MAX_SHOTS)
        if shots > portraits:
            raise BadInput(f"settings.shots: {shots} shots asked for but the job holds {portraits} portrait image(s)")
        compile_ = settings.get("compile", False)
        if not isinstance(compile_, bool):
            raise BadInput(f"settings.compile: {compile_!r} must be true or false")
        marks = settings.get("shot_landmarks") or []
        try:
            marks = tuple(np.asarray(m, np.float32).reshape(68, 2) for m in marks)
        except (ValueError, TypeError):
            raise BadInput("settings.shot_landmarks: give one list of 68 (x, y) points per extra portrait") from None
        if len(marks) > portraits - 1 or not all(np.all(np.isfinite(m)) for m in marks):
            raise BadInput(f"settings.shot_landmarks: {len(marks)} finite point sets expected at most "
                           f"{portraits - 1} (one per portrait after the first)")
        batch = settings.get("batch")
        return cls(
            checkpoint=resolve_model_file(settings["checkpoint"], "checkpoint"),
            finetune_steps=_int(settings, "finetune_steps", 0, 0, MAX_FINETUNE_STEPS),
            finetune_batch=_int(settings, "finetune_batch", 4, 1, MAX_SHOTS),
            shots=shots,
            batch=None if batch is None else _int(settings, "batch", 1, 1, 256),
            device=_choice(settings, "device", "auto", ("auto", "cpu", "cuda")),
            compile=compile_,
            precision=_choice(settings, "precision", "auto", ("auto", "fp32", "bf16", "fp16")),
            shot_landmarks=marks,
            detector=str(settings.get("detector") or "mediapipe"),
            vgg19=resolve_model_file(settings["vgg19"], "vgg19") if settings.get("vgg19") else None,
            vggface=resolve_model_file(settings["vggface"], "vggface") if settings.get("vggface") else None,
        )
