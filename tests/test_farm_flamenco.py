"""Flamenco: our job type compiled under node by a STAND-IN of Flamenco Manager's documented job-compiler
API (tests/flamenco/manager_standin.js; Flamenco itself cannot be installed here), then each compiled
task executed as a worker would: the real `livingportrait` CLI, frames compared byte for byte with one
in-process render."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from farm_job import BIN, REPO, exr_files, render_in_process, subprocess_env, write_job

JOB_TYPE = REPO / "farm" / "flamenco" / "living_portrait.js"
STANDIN = Path(__file__).parent / "flamenco" / "manager_standin.js"
NODE = shutil.which("node") or "node"  # `make test` installs node when the machine has none (make node)
# The Manager variable the docs tell studios to configure, here pointing at this checkout's command.
VARIABLES = {"livingportrait": {"values": [{"platform": "linux", "value": str(BIN / "livingportrait")},
                                           {"platform": "windows", "value": "C:\\livingportrait\\livingportrait.exe"}]}}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return write_job(tmp_path_factory.mktemp("flamenco_job"), frames=12)


@pytest.fixture(scope="module")
def reference(job, tmp_path_factory):
    return render_in_process(job, tmp_path_factory.mktemp("reference"))


def compile_job(tmp_path: Path, settings: dict) -> dict:
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    (tmp_path / "variables.json").write_text(json.dumps(VARIABLES))
    result = subprocess.run([NODE, str(STANDIN), str(JOB_TYPE), str(tmp_path / "settings.json"),
                             str(tmp_path / "variables.json")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def settings_for(job, out: Path, frames: str, chunk_size: int) -> dict:
    return {"portrait": job.portrait, "driver": job.driver, "portrait_landmarks": job.landmarks,
            "output_dir": str(out), "name": job.name, "frames": frames, "chunk_size": chunk_size}


def run_task(task: dict) -> subprocess.CompletedProcess:
    """One task on a worker: its commands in order, the real CLI."""
    for command in task["commands"]:
        assert command["type"] == "exec"
        result = subprocess.run([command["exe"], *command["args"]], capture_output=True, text=True,
                                env=subprocess_env(), timeout=300)
        if result.returncode != 0:
            return result
    return result


def test_the_job_type_compiles_into_one_task_per_chunk_of_the_same_command(job, tmp_path):
    compiled = compile_job(tmp_path, settings_for(job, tmp_path / "out", "1-10,12", 4))
    assert compiled["label"] == "Living Portrait"
    assert compiled["settings"]["engine"] == "warp"  # the default filled in
    assert [t["name"] for t in compiled["tasks"]] == ["render-1-4", "render-5-8", "render-9,10,12"]
    assert {t["type"] for t in compiled["tasks"]} == {"livingportrait"}  # workers opt in by task type
    first = compiled["tasks"][0]["commands"][0]
    assert first["exe"] == str(BIN / "livingportrait")  # the {livingportrait} Manager variable
    assert first["args"][:2] == ["render", "--portrait"] and first["args"][-2:] == ["--frames", "1-4"]
    assert "--checkpoint" not in first["args"]  # empty optional settings stay off the command line


def test_compiled_tasks_run_by_the_real_cli_are_byte_identical_and_a_failed_task_reruns_elsewhere(
        job, reference, tmp_path):
    out = tmp_path / "out"
    compiled = compile_job(tmp_path, settings_for(job, out, "1-12", 5))
    tasks = compiled["tasks"]
    assert [t["name"] for t in tasks] == ["render-1-5", "render-6-10", "render-11,12"]
    (out / "shot.0007.exr").mkdir(parents=True)  # this worker cannot write frame 7: the task fails
    results = [run_task(task) for task in tasks]
    assert [r.returncode for r in results] == [0, 2, 0]
    assert "shot.0007.exr" in results[1].stderr and "Traceback" not in results[1].stderr
    (out / "shot.0007.exr").rmdir()  # Flamenco retries the failed task on another worker
    assert run_task(tasks[1]).returncode == 0
    files = exr_files(out)
    assert sorted(files) == sorted(reference)
    assert files == reference


def test_fewshot_settings_reach_the_command_as_strings(job, tmp_path):
    settings = {**settings_for(job, tmp_path / "out", "1-2", 8), "engine": "fewshot",
                "checkpoint": "/models/paper", "finetune_steps": 50}
    args = compile_job(tmp_path, settings)["tasks"][0]["commands"][0]["args"]
    assert args[args.index("--engine") + 1] == "fewshot"
    assert args[args.index("--checkpoint") + 1] == "/models/paper"
    assert args[args.index("--finetune-steps") + 1] == "50"
