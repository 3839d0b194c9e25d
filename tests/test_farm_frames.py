"""The command a farm runs: frame lists, frames the performance lacks, progress a farm reads, OpenCue's
chunk variables, one-line failures. Real `livingportrait render` processes, real EXR files."""
from __future__ import annotations

import subprocess

import pytest

from farm_job import LIVINGPORTRAIT, exr_files, render_in_process, subprocess_env, write_job
from livingportrait_backend.farm_environment import apply_cue_gpus, cue_task_frames
from livingportrait_wire.errors import BadInput
from livingportrait_wire.naming import format_frames, parse_frames


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return write_job(tmp_path_factory.mktemp("farm_frames"), frames=12)


@pytest.fixture(scope="module")
def reference(job, tmp_path_factory):
    return render_in_process(job, tmp_path_factory.mktemp("reference"))


def run_render(job, out, frames=None, env=None):
    return subprocess.run([LIVINGPORTRAIT, *job.render_args(str(out), frames)], capture_output=True, text=True,
                          env={**subprocess_env(), **(env or {})}, timeout=300)


def test_frame_lists_parse_as_farms_write_them():
    assert parse_frames("1-3,5,9-10") == [1, 2, 3, 5, 9, 10]
    assert parse_frames(" 9-10, 1-3 ,5,2") == [1, 2, 3, 5, 9, 10]
    assert parse_frames("-2-1") == [-2, -1, 0, 1]
    assert format_frames([1, 2, 3, 5, 9, 10]) == "1-3,5,9-10"
    for bad in ("", "1-", "a", "5-3", "1,,2", "1-3x2"):
        with pytest.raises(BadInput):
            parse_frames(bad)


def test_a_frame_list_renders_exactly_those_frames_byte_identical(job, reference, tmp_path):
    result = run_render(job, tmp_path, "1-3,5,9-10")
    assert result.returncode == 0, result.stderr
    files = exr_files(tmp_path)
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in (1, 2, 3, 5, 9, 10)]
    assert all(files[name] == reference[name] for name in files)


def test_frames_past_the_performance_are_named_in_a_warning(job, reference, tmp_path):
    result = run_render(job, tmp_path, "10-15")
    assert result.returncode == 0, result.stderr
    assert "warning: the performance has no frame(s) 13-15; rendering 10-12" in result.stderr
    assert sorted(exr_files(tmp_path)) == ["shot.0010.exr", "shot.0011.exr", "shot.0012.exr"]


def test_frames_the_performance_lacks_entirely_are_an_error_in_one_line(job, tmp_path):
    result = run_render(job, tmp_path, "20-22")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["livingportrait render: error: frames 20-22: the performance has none of them (it has "
                     "frames 1-12); ask for frames it has"]
    assert not exr_files(tmp_path)


def test_under_openjd_progress_and_failure_are_lines_the_session_reads(job, tmp_path):
    env = {"OPENJD_SESSION_WORKING_DIR": str(tmp_path)}
    ok = run_render(job, tmp_path / "out", "1-4", env)
    assert ok.returncode == 0, ok.stderr
    progress = [float(line.split(":", 1)[1]) for line in ok.stdout.splitlines() if line.startswith("openjd_progress: ")]
    assert progress and progress[-1] == 100.0 and progress == sorted(progress)
    assert "openjd_status: render shot 4/4" in ok.stdout
    # Before the first frame the farm sees the stage, not silence.
    stages = [line for line in ok.stdout.splitlines() if line.startswith("openjd_status: ")]
    assert stages[:2] == ["openjd_status: Finding the portrait's landmarks", "openjd_status: Preparing"]
    failed = run_render(job, tmp_path / "out", "30", env)
    assert failed.returncode == 2
    assert [line for line in failed.stdout.splitlines() if line.startswith("openjd_fail: ")] == [
        "openjd_fail: frames 30: the performance has none of them (it has frames 1-12); ask for frames it has"]


def test_off_a_tty_and_outside_openjd_progress_is_plain_lines(job, tmp_path):
    result = run_render(job, tmp_path, "1-2")
    assert "openjd_" not in result.stdout + result.stderr
    assert "render shot: 100% 2/2" in result.stderr
    assert result.stderr.splitlines()[:2] == ["Finding the portrait's landmarks", "Preparing"]


def test_on_opencue_the_chunk_comes_from_rqd_variables(job, reference, tmp_path):
    # The layer's last chunk is partial: 9-12 of a 1-12 range in chunks of 5 starts at 11.
    env = {"CUE_IFRAME": "11", "CUE_CHUNK": "5", "CUE_RANGE": "1-12"}
    result = run_render(job, tmp_path, None, env)
    assert result.returncode == 0, result.stderr
    files = exr_files(tmp_path)
    assert sorted(files) == ["shot.0011.exr", "shot.0012.exr"]
    assert all(files[name] == reference[name] for name in files)


def test_opencue_frame_sets_and_chunks_follow_pyoutline():
    assert cue_task_frames({}) is None
    assert cue_task_frames({"CUE_IFRAME": "1", "CUE_CHUNK": "4", "CUE_RANGE": "1-10"}) == [1, 2, 3, 4]
    assert cue_task_frames({"CUE_IFRAME": "5", "CUE_CHUNK": "3", "CUE_RANGE": "1-20x2"}) == [5, 7, 9]
    assert cue_task_frames({"CUE_IFRAME": "7", "CUE_CHUNK": "3", "CUE_RANGE": "1,3,7-8"}) == [7, 8]
    with pytest.raises(BadInput, match="not in CUE_RANGE"):
        cue_task_frames({"CUE_IFRAME": "2", "CUE_CHUNK": "3", "CUE_RANGE": "1-20x2"})


def test_gpu_selection_follows_cue_gpu_cores_unless_the_host_chose():
    env = {"CUE_GPU_CORES": "1,3"}
    apply_cue_gpus(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"
    chosen = {"CUE_GPU_CORES": "1", "CUDA_VISIBLE_DEVICES": "0"}
    apply_cue_gpus(chosen)
    assert chosen["CUDA_VISIBLE_DEVICES"] == "0"


def test_a_frame_list_with_connect_renders_those_frames_on_a_backend_byte_identical(job, reference, tmp_path):
    from backend_process import BackendProcess

    backend = BackendProcess()
    try:
        result = subprocess.run([LIVINGPORTRAIT, *job.render_args(str(tmp_path), "1-2,5,11-13"),
                                 "--connect", backend.address], capture_output=True, text=True,
                                env=subprocess_env(), timeout=300)
    finally:
        backend.stop()
    assert result.returncode == 0, result.stderr
    assert "warning: the performance has no frame(s) 13; rendering 1-2,5,11-12" in result.stderr
    files = exr_files(tmp_path)
    assert sorted(files) == [f"shot.{f:04d}.exr" for f in (1, 2, 5, 11, 12)]
    assert all(files[name] == reference[name] for name in files)
