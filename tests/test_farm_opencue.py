"""OpenCue: our pyoutline layer serialised by real pyoutline, and each chunk executed as an RQD host
executes it (`pycuerun OUTLINE.yaml -e FRAME-LAYER`, real pycuerun, real CLI); frames byte-identical to one
in-process render. Cuebot (a Java server) cannot run here: a real RQD is driven by a stand-in of its
launch call and report service (tests/cuebot_standin.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import outline
import outline.cuerun
import pytest
from outline.loader import load_outline

from farm_job import BIN, REPO, exr_files, render_in_process, subprocess_env, write_job
from livingportrait_backend.opencue_layer import LivingPortraitRender, build_outline


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return write_job(tmp_path_factory.mktemp("opencue_job"), frames=12)


@pytest.fixture(scope="module")
def reference(job, tmp_path_factory):
    return render_in_process(job, tmp_path_factory.mktemp("reference"))


@pytest.fixture
def session_dir(tmp_path):
    """pyoutline's session folder (where a submitted outline is serialised) inside the test's folder.
    (``outline.config`` is pyoutline's ConfigParser.)"""
    before = outline.config.get("outline", "session_dir")
    outline.config.set("outline", "session_dir", str(tmp_path / "sessions"))
    yield tmp_path / "sessions"
    outline.config.set("outline", "session_dir", before)


def test_the_outline_serialises_into_a_job_spec_and_a_loadable_outline(job, tmp_path, session_dir):
    ol = build_outline("shot", portrait=job.portrait, driver=job.driver, out=str(tmp_path / "out"),
                       frames="1-12", chunk=5, portrait_landmarks=job.landmarks, service="livingportrait")
    launcher = outline.cuerun.OutlineLauncher(ol)
    launcher.setup()
    spec = launcher.serialize()
    assert '<layer name="render" type="Render">' in spec
    assert "<range>1-12</range><chunk>5</chunk>" in spec
    assert "<service>livingportrait</service>" in spec
    assert f"{ol.get_path()} -e #IFRAME#-render" in spec  # what RQD runs on each host
    loaded = load_outline(ol.get_path()).get_layer("render")
    assert isinstance(loaded, LivingPortraitRender)
    assert loaded.command([9, 10, 11, 12])[-2:] == ["--frames", "9-12"]


def test_pycuerun_executes_each_chunk_as_a_host_would_byte_identical(job, reference, tmp_path, session_dir):
    out = tmp_path / "out"
    ol = build_outline("shot", portrait=job.portrait, driver=job.driver, out=str(out), frames="1-12", chunk=5,
                       portrait_landmarks=job.landmarks, executable=str(BIN / "livingportrait"))
    outline.cuerun.OutlineLauncher(ol).setup()
    # Cuebot dispatches tasks at frames 1, 6 and 11 (the last chunk is partial: 11-12).
    for first in (1, 6, 11):
        result = subprocess.run([str(BIN / "pycuerun"), ol.get_path(), "-e", f"{first}-render"],
                                capture_output=True, text=True, env=subprocess_env(), timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    files = exr_files(out)
    assert sorted(files) == sorted(reference)
    assert files == reference


def test_the_submit_helper_dry_run_prints_the_job_spec(job, tmp_path):
    env = {**subprocess_env(), "OUTLINE_OUTLINE_SESSION_DIR": str(tmp_path / "sessions")}
    result = subprocess.run([sys.executable, str(REPO / "farm" / "opencue" / "submit_living_portrait.py"),
                             "--portrait", job.portrait, "--driver", job.driver, "--out", str(tmp_path / "out"),
                             "--name", "shot", "--frames", "1-96", "--chunk", "8", "--gpus", "1",
                             "--engine", "fewshot", "--render-arg=--checkpoint", "--render-arg=/models/paper",
                             "--dry-run"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "<range>1-96</range><chunk>8</chunk>" in result.stdout
    (yaml_path,) = Path(tmp_path / "sessions").rglob("outline.yaml")
    layer = load_outline(str(yaml_path)).get_layer("render")
    assert layer.command([1, 2])[-5:] == ["fewshot", "--checkpoint", "/models/paper", "--frames", "1-2"]
    assert layer.get_arg("gpus") == 1


def test_a_real_rqd_launched_by_a_cuebot_stand_in_runs_each_chunk_from_the_cue_variables(job, reference, tmp_path):
    """Real RQD (opencue-rqd), driven through its gRPC LaunchFrame by a STAND-IN of Cuebot
    (tests/cuebot_standin.py): the layer's command has no frame tokens at all; each task's chunk
    comes from CUE_IFRAME/CUE_CHUNK/CUE_RANGE. A task that fails is reported with its exit status and,
    relaunched (Cuebot's retry), completes."""
    from cuebot_standin import CuebotStandIn

    out = tmp_path / "out"
    command = " ".join([str(BIN / "livingportrait"), *job.render_args(str(out))])
    cuebot = CuebotStandIn(tmp_path, subprocess_env())
    try:
        (out / "shot.0007.exr").mkdir(parents=True)  # this host cannot write frame 7
        statuses = [cuebot.launch(command, first, 5, "1-12", tmp_path / "logs").exit_status for first in (1, 6, 11)]
        assert statuses[0] == 0 and statuses[1] != 0 and statuses[2] == 0
        (out / "shot.0007.exr").rmdir()
        assert cuebot.launch(command, 6, 5, "1-12", tmp_path / "logs").exit_status == 0
    finally:
        cuebot.stop()
    files = exr_files(out)
    assert sorted(files) == sorted(reference)
    assert files == reference
