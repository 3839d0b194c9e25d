"""What the farm manager running a task tells it through the environment.

- Open Job Description (``openjd run``, AWS Deadline Cloud workers): every action of a session gets
  ``OPENJD_SESSION_WORKING_DIR`` (openjd-sessions exports it as public API), and the session reads
  ``openjd_progress: <0-100>``, ``openjd_status: <text>`` and ``openjd_fail: <text>`` lines from stdout.
- OpenCue: RQD sets ``CUE_IFRAME`` (the task's first frame), ``CUE_CHUNK`` (frames per task) and
  ``CUE_RANGE`` (the layer's frame set), and ``CUE_GPU_CORES`` (the GPUs it booked for this task) rather
  than ``CUDA_VISIBLE_DEVICES``. The chunk is computed from these, as pyoutline computes a layer's local
  frame set, because ``#FRAME_END#`` tokens have been wrong on partial last chunks (OpenCue #1129).
"""
from __future__ import annotations

import os
import re
import sys
import time

from livingportrait_wire.errors import BadInput

OPENJD_SESSION_ENV = "OPENJD_SESSION_WORKING_DIR"


def under_openjd(environ=None) -> bool:
    """True inside an Open Job Description session."""
    return bool((environ if environ is not None else os.environ).get(OPENJD_SESSION_ENV))


def stage_reporter(min_interval_s: float = 1.0):
    """An ``on_progress(stage, done, total)`` that says what a render is doing before its first frame,
    in the words the add-on and ``render --connect`` show (``Fine-tuning 120/500``): inside an OpenJD
    session as ``openjd_status:`` lines on stdout (the farm shows them), elsewhere as lines on stderr.
    Each new stage at once; progress within one at most every ``min_interval_s``."""
    from livingportrait_wire.events import stage_text

    openjd = under_openjd()
    last = {"line": "", "stage": None, "at": 0.0}

    def report(stage: str, done: int, total: int) -> None:
        now, line = time.monotonic(), stage_text(stage, done, total)
        if line != last["line"] and (stage != last["stage"] or now - last["at"] >= min_interval_s or done >= total):
            last.update(line=line, stage=stage, at=now)
            stream = sys.stdout if openjd else sys.stderr
            stream.write(f"openjd_status: {line}\n" if openjd else f"{line}\n")
            stream.flush()
    return report


def cue_task_frames(environ=None) -> list[int] | None:
    """The frames of this OpenCue task from ``CUE_IFRAME``/``CUE_CHUNK``/``CUE_RANGE``, or None when
    RQD did not start this process. BadInput when the variables contradict each other."""
    env = environ if environ is not None else os.environ
    if "CUE_IFRAME" not in env:
        return None
    try:
        first = int(env["CUE_IFRAME"])
        chunk = int(env.get("CUE_CHUNK") or 1)
    except ValueError:
        raise BadInput(f"CUE_IFRAME={env.get('CUE_IFRAME')!r} CUE_CHUNK={env.get('CUE_CHUNK')!r}: not whole "
                       "numbers; run this command from an OpenCue task or pass --frames") from None
    layer = cue_frame_set(env["CUE_RANGE"]) if env.get("CUE_RANGE") else [first]
    if first not in layer:
        raise BadInput(f"CUE_IFRAME={first} is not in CUE_RANGE={env.get('CUE_RANGE')!r}; run this command "
                       "from an OpenCue task or pass --frames")
    start = layer.index(first)
    return layer[start:start + max(chunk, 1)]


_CUE_PART = re.compile(r"(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?")


def cue_frame_set(text: str) -> list[int]:
    """An OpenCue frame set (``1-100``, ``1-100x2``, ``1,3,5-9``) as its frames in order, each once."""
    frames: list[int] = []
    seen: set[int] = set()
    for part in text.replace(" ", "").split(","):
        m = _CUE_PART.fullmatch(part)
        if not m:
            raise BadInput(f"CUE_RANGE={text!r}: {part!r} is not a frame set this command reads (A, A-B or "
                           "A-BxN); pass --frames instead")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        step = int(m.group(3) or 1)
        if step < 1:
            raise BadInput(f"CUE_RANGE={text!r}: a step must be at least 1")
        for f in range(first, last + (1 if last >= first else -1), step if last >= first else -step):
            if f not in seen:
                seen.add(f)
                frames.append(f)
    return frames


def apply_cue_gpus(environ=None) -> None:
    """Make the GPUs RQD booked (``CUE_GPU_CORES``, e.g. ``0,1``) the ones CUDA sees, unless the host
    already chose with ``CUDA_VISIBLE_DEVICES``. Must run before torch initialises CUDA."""
    env = environ if environ is not None else os.environ
    cores = (env.get("CUE_GPU_CORES") or "").strip()
    if cores and "CUDA_VISIBLE_DEVICES" not in env:
        env["CUDA_VISIBLE_DEVICES"] = cores
