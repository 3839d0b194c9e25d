"""Running an OpenJD job template with the real `openjd` CLI, for the farm tests and bench_farm.py."""
from __future__ import annotations

import subprocess
from pathlib import Path

from farm_job import BIN, REPO, FarmJob, subprocess_env

BUNDLE = REPO / "farm" / "openjd" / "living_portrait"
GPU_BUNDLE = REPO / "farm" / "openjd" / "living_portrait_gpu"
QUEUE_ENVIRONMENT = REPO / "farm" / "openjd" / "queue_environment.yaml"


def job_parameters(job: FarmJob, out: str, frames: str, chunk_size: int) -> dict[str, str]:
    """The bundle's job parameters for ``job`` (its portrait landmarks given, so nothing is detected)."""
    return {"Portrait": job.portrait, "Driver": job.driver, "PortraitLandmarks": job.landmarks, "OutputDir": out,
            "Name": job.name, "Frames": frames, "ChunkSize": str(chunk_size)}


def openjd_command(template: Path, params: dict[str, str], *extra: str) -> list[str]:
    args = [str(BIN / "openjd"), "run", str(template)]
    for key, value in params.items():
        args += ["-p", f"{key}={value}"]
    return args + list(extra)


def openjd_env(**extra: str) -> dict[str, str]:
    # openjd logs through Python's stdout: unbuffered, so a reader sees each line as it happens.
    return {**subprocess_env(), "PYTHONUNBUFFERED": "1", **extra}


def openjd_run(template: Path, params: dict[str, str], *extra: str, env: dict | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(openjd_command(template, params, *extra), capture_output=True, text=True,
                          env=env or openjd_env(), timeout=timeout)
