"""A small farm job on disk, for the farm tests and bench/bench_farm.py: the 160x160 astronaut portrait
(small_render_job), its landmarks as a .npy, the built-in performance as a .npz, and helpers to
render it in-process and compare output folders byte for byte.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import small_render_job
from livingportrait_wire.landmarks import save_sequence

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: livingportrait, openjd, pycuerun
LIVINGPORTRAIT = str(BIN / "livingportrait")


@dataclass
class FarmJob:
    portrait: str
    landmarks: str
    driver: str
    frames: int
    name: str = "shot"

    def render_args(self, out: str, frames: str | None = None, landmarks: bool = True) -> list[str]:
        """`livingportrait render` arguments (without the command) for this job into ``out``;
        ``landmarks=False`` leaves the portrait's landmarks to the detector."""
        args = ["render", "--portrait", self.portrait, "--driver", self.driver, "--out", out, "--name", self.name]
        args += ["--portrait-landmarks", self.landmarks] if landmarks else []
        return args + (["--frames", frames] if frames else [])


def write_job(folder: Path, frames: int = 12, name: str = "shot") -> FarmJob:
    """The job's inputs written into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    portrait = folder / "portrait.png"
    portrait.write_bytes(small_render_job.portrait_png())
    landmarks = folder / "portrait_landmarks.npy"
    np.save(landmarks, small_render_job.portrait_landmarks())
    driver = folder / "performance.npz"
    save_sequence(small_render_job.performance(frames), str(driver))
    return FarmJob(str(portrait), str(landmarks), str(driver), frames, name)


def render_in_process(job: FarmJob, out: Path, *extra: str, landmarks: bool = True) -> dict[str, bytes]:
    """One in-process render of every frame (the reference a farm's chunks must match)."""
    from livingportrait_backend.cli import main

    assert main(job.render_args(str(out), landmarks=landmarks) + list(extra)) == 0
    return exr_files(out)


def exr_files(folder: Path) -> dict[str, bytes]:
    """{file name: bytes} of the EXR frames in ``folder``."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("*.exr"))}


def subprocess_env() -> dict[str, str]:
    """The environment for a subprocess running our command: this checkout's packages, the venv's bin
    first on PATH (so `livingportrait`, `openjd`, `pycuerun` resolve), and no farm variables leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUE_", "OPENJD_"))}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env
