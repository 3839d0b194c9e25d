"""OpenJD / AWS Deadline Cloud: the job bundle checked and run with the real `openjd` CLI, in chunks,
against one in-process render of the same job. Nothing here is a stand-in."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
import yaml

from livingportrait_backend.prepare_cache import CACHE_FOLDER

from farm_job import BIN, exr_files, render_in_process, write_job
from openjd_runner import (BUNDLE, GPU_BUNDLE, QUEUE_ENVIRONMENT, job_parameters, openjd_command, openjd_env,
                           openjd_run)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    # 96 frames: the SIGTERM test's single chunk runs long enough (~1-2 s) to be stopped in the middle.
    return write_job(tmp_path_factory.mktemp("openjd_job"), frames=96)


@pytest.fixture(scope="module")
def reference(job, tmp_path_factory):
    return render_in_process(job, tmp_path_factory.mktemp("reference"))


def test_every_template_passes_openjd_check():
    for template in (BUNDLE / "template.yaml", GPU_BUNDLE / "template.yaml", QUEUE_ENVIRONMENT):
        result = subprocess.run([str(BIN / "openjd"), "check", str(template)], capture_output=True, text=True,
                                env=openjd_env())
        assert result.returncode == 0 and "passes validation checks" in result.stdout, result.stdout + result.stderr


def test_the_bundles_have_the_documented_parameters_and_chunked_step():
    template = yaml.safe_load((BUNDLE / "template.yaml").read_text())
    names = [p["name"] for p in template["parameterDefinitions"]]
    assert names[:1] == ["Portrait"] and {"Driver", "OutputDir", "Name", "Frames", "ChunkSize", "Engine",
                                          "Checkpoint", "LivingPortrait"} <= set(names)
    (step,) = template["steps"]
    (chunk,) = step["parameterSpace"]["taskParameterDefinitions"]
    assert chunk["type"] == "CHUNK[INT]" and chunk["range"] == "{{Param.Frames}}"
    assert template["extensions"] == ["TASK_CHUNKING"]
    (worker,) = step["stepEnvironments"]  # the session's warm worker, started and stopped around its tasks
    actions = worker["script"]["actions"]
    assert actions["onEnter"]["args"][:2] == ["session", "start"] and actions["onExit"]["args"] == ["session", "stop"]
    values = yaml.safe_load((BUNDLE / "parameter_values.yaml").read_text())["parameterValues"]
    assert {v["name"] for v in values} <= set(names)
    # The GPU variant is the same job plus a GPU host requirement and neural defaults.
    gpu = yaml.safe_load((GPU_BUNDLE / "template.yaml").read_text())
    assert gpu["steps"][0].pop("hostRequirements") == {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    assert gpu["steps"] == template["steps"]
    defaults = {p["name"]: p.get("default") for p in gpu["parameterDefinitions"]}
    assert defaults["Engine"] == "fewshot" and defaults["Device"] == "cuda"
    assert [p["name"] for p in gpu["parameterDefinitions"]] == names


def test_chunks_through_openjd_run_are_byte_identical_to_one_render(job, reference, tmp_path):
    # PATH without our venv: the example queue environment is what puts `livingportrait` on it.
    env = openjd_env(PATH="/usr/bin:/bin")
    params = {**job_parameters(job, str(tmp_path / "out"), "1-12", 4), "LivingPortraitBin": str(BIN)}
    result = openjd_run(BUNDLE / "template.yaml", params, "--environment", str(QUEUE_ENVIRONMENT),
                        "--output", "json", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "success" and summary["chunks_run"] == 3, {k: summary[k] for k in summary if k != "logs"}
    files = exr_files(tmp_path / "out")
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in range(1, 13)]
    assert all(files[name] == reference[name] for name in files)


def test_a_failed_chunk_rerun_alone_with_task_param_completes(job, reference, tmp_path):
    out = tmp_path / "out"
    (out / "shot.0006.exr").mkdir(parents=True)  # frame 6 cannot be written: its chunk fails
    params = job_parameters(job, str(out), "1-12", 4)
    failed = openjd_run(BUNDLE / "template.yaml", params)
    assert failed.returncode != 0
    assert "openjd_fail: " in failed.stdout and "shot.0006.exr" in failed.stdout
    assert "Traceback" not in failed.stdout
    whole = [p.name for p in out.glob("*.exr") if p.is_file()]
    (out / "shot.0006.exr").rmdir()  # the host is fixed; the farm reruns the failed chunk alone
    rerun = openjd_run(BUNDLE / "template.yaml", params, "--task-param", "Frames=5-8")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert f"skipped {len(whole) - 4} already complete" in rerun.stdout  # chunk 1-4 and what 5-8 wrote
    files = exr_files(out)
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in range(1, 9)]
    assert all(files[name] == reference[name] for name in files)


def test_a_task_stopped_by_sigterm_mid_chunk_resumes_to_identical_frames(job, reference, tmp_path):
    out = tmp_path / "out"
    params = job_parameters(job, str(out), "1-96", 96)
    with subprocess.Popen(openjd_command(BUNDLE / "template.yaml", params), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=openjd_env()) as session:
        for line in session.stdout:
            if "openjd_progress: " in line:  # the first frame is on disk: stop the task as a farm would
                (task,) = [p for p in psutil.Process(session.pid).children(recursive=True)
                           if "render" in p.cmdline()]
                task.send_signal(signal.SIGTERM)
                break
        rest = session.stdout.read()
    assert session.returncode != 0
    assert "stopped by SIGTERM" in rest
    stopped_with = exr_files(out)
    assert 1 <= len(stopped_with) < 96
    resumed = openjd_run(BUNDLE / "template.yaml", params)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"skipped {len(stopped_with)} already complete" in resumed.stdout
    assert exr_files(out) == reference
    assert not [p for p in os.listdir(out) if not p.endswith(".exr") and p != CACHE_FOLDER]  # no temp files


def test_a_path_mapping_rule_is_honoured(job, reference, tmp_path):
    # The job was submitted from a machine where everything lived under /studio/show; here it is tmp_path.
    inputs = Path(job.portrait).parent
    submitted = {k: v.replace(str(inputs), "/studio/show/inputs") for k, v in
                 job_parameters(job, "/studio/show/renders", "1-6", 3).items()}
    (tmp_path / "renders").mkdir()
    rules = {"version": "pathmapping-1.0", "path_mapping_rules": [
        {"source_path_format": "POSIX", "source_path": "/studio/show/inputs", "destination_path": str(inputs)},
        {"source_path_format": "POSIX", "source_path": "/studio/show/renders", "destination_path": str(tmp_path / "renders")},
    ]}
    result = openjd_run(BUNDLE / "template.yaml", submitted, "--path-mapping-rules", json.dumps(rules))
    assert result.returncode == 0, result.stdout[-3000:]
    files = exr_files(tmp_path / "renders")
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in range(1, 7)]
    assert all(files[name] == reference[name] for name in files)


def _worker_pids(text: str, what: str) -> list[int]:
    return [int(m) for m in re.findall(rf"session worker pid (\d+): job \w+ {what}", text)]


def test_tasks_of_one_session_share_one_warm_worker_that_prepares_once(job, reference, tmp_path):
    result = openjd_run(BUNDLE / "template.yaml", job_parameters(job, str(tmp_path / "out"), "1-12", 4))
    assert result.returncode == 0, result.stdout[-3000:]
    # The worker says which task prepared the job; the others reuse its preparation, in the same process.
    prepared, reused = _worker_pids(result.stdout, "prepared in this task"), _worker_pids(result.stdout, "was prepared by")
    assert len(prepared) == 1 and len(reused) == 2 and set(reused) == set(prepared), result.stdout[-3000:]
    assert "rendering in this process" not in result.stdout
    # Between tasks the worker renders the next frames ahead into memory; written after the same checks.
    assert "of its frames rendered ahead" in result.stdout, result.stdout[-3000:]
    assert f"warm worker pid {prepared[0]} stopped after 3 task(s); jobs prepared: 1" in result.stdout  # onExit
    files = exr_files(tmp_path / "out")
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in range(1, 13)]
    assert all(files[name] == reference[name] for name in files)
    try:  # stopped by the environment's exit action: the process ends (no sleeping: wait on it)
        psutil.Process(prepared[0]).wait(timeout=30)
    except psutil.NoSuchProcess:
        pass


def test_tasks_render_in_their_own_process_when_the_worker_is_gone(job, reference, tmp_path):
    out = tmp_path / "out"
    params = job_parameters(job, str(out), "1-12", 4)
    with subprocess.Popen(openjd_command(BUNDLE / "template.yaml", params), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=openjd_env()) as session:
        seen = []
        for line in session.stdout:
            seen.append(line)
            (pid,) = _worker_pids(line, "prepared in this task") or [None]
            if pid:  # the first chunk is rendered by the worker: kill it as a crash would
                os.kill(pid, signal.SIGKILL)
                break
        rest = session.stdout.read()
    assert session.returncode == 0, "".join(seen)[-2000:] + rest[-3000:]
    # Later tasks (or the first, if the worker died before saying it was done) render in their own process.
    assert "the session's render worker did not answer" in rest or "stopped answering" in rest, rest[-3000:]
    assert "rendering in this process" in rest and "Traceback" not in rest
    assert exr_files(out) == {k: v for k, v in reference.items() if int(k.split(".")[1]) <= 12}


def test_a_task_client_imports_neither_numpy_nor_zmq():
    # What a task of a session with a warm worker imports before it has handed over its chunk.
    code = ("import sys; from livingportrait_backend import cli, session_client; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'zmq', 'livingportrait_wire', 'cv2'}))")
    result = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True, env=openjd_env())
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_frames_rendered_ahead_for_another_chunk_are_dropped_and_tasks_still_match(job, reference, tmp_path):
    # After 1-4 the worker renders 5-8 ahead; the next task asks for 9-12 instead (stopping that work), then
    # 5-8 (nothing follows 9-12, so nothing was rendered ahead for it).
    tasks = json.dumps([{"Frames": "1-4"}, {"Frames": "9-12"}, {"Frames": "5-8"}])
    result = openjd_run(BUNDLE / "template.yaml", job_parameters(job, str(tmp_path / "out"), "1-12", 4),
                        "--tasks", tasks)
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(_worker_pids(result.stdout, "prepared in this task")) == 1
    assert "rendered ahead" not in result.stdout and "jobs prepared: 1" in result.stdout
    files = exr_files(tmp_path / "out")
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in range(1, 13)]
    assert all(files[name] == reference[name] for name in files)
