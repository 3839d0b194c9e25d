"""The ``fewshot`` engine's job settings made real on the backend: where model files are found.

The values were checked at the door (``RenderSettings``, its ``fewshot`` part); what is left is what only
this machine and this job can tell: model files live ON THE BACKEND MACHINE (a relative path is resolved
against ``$LIVINGPORTRAIT_MODELS`` when set, else the backend's working folder) and the shots asked for
must be in the job.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os

from livingportrait_wire.errors import BadInput
from livingportrait_wire.render_settings import MAX_SHOTS, FewShotOptions, RenderSettings

MODELS_ENV = "LIVINGPORTRAIT_MODELS"
MODEL_FILE = "model.safetensors"  # the file in a checkpoint folder (model.checkpoint writes it)
# Files torch.save / pickle write: refused, since unpickling runs arbitrary code.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")


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


def resolve_options(settings: RenderSettings, portraits: int) -> FewShotOptions:
    """The job's ``fewshot`` options (already checked by RenderSettings) made real for a job of
    ``portraits`` shots on this backend: ``checkpoint``/``vgg19``/``vggface`` resolved to safetensors
    files here, ``shots`` counted (None: all, at most 32). BadInput naming the key."""
    opts = settings.fewshot
    if opts.checkpoint is None:
        raise BadInput("settings.checkpoint: the fewshot engine needs a model checkpoint (a folder written "
                       "by `livingportrait train`); pass --checkpoint or set it in the job")
    shots = min(portraits, MAX_SHOTS) if opts.shots is None else opts.shots
    if shots > portraits:
        raise BadInput(f"settings.shots: {shots} shots asked for but the job holds {portraits} portrait image(s)")
    if len(opts.shot_landmarks) > portraits - 1:
        raise BadInput(f"settings.shot_landmarks: {len(opts.shot_landmarks)} point sets given, expected at most "
                       f"{portraits - 1} (one per portrait after the first)")
    return dataclasses.replace(
        opts, checkpoint=resolve_model_file(opts.checkpoint, "checkpoint"), shots=shots,
        vgg19=resolve_model_file(opts.vgg19, "vgg19") if opts.vgg19 else None,
        vggface=resolve_model_file(opts.vggface, "vggface") if opts.vggface else None)
