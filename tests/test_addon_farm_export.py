"""The add-on's *Export Farm Job* in real Blender (4.2 and 5.0, the built extension installed), and the
bundle it writes run by the real `openjd` CLI: the frames are the ones one in-process render of the same
job makes, byte for byte."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import build_addon
from farm_job import BIN, exr_files, render_in_process, write_job
from openjd_runner import openjd_env

ROOT = Path(__file__).resolve().parents[1]
BLENDERS = {"4.2": ROOT / ".venv-bpy42", "5.0": ROOT / ".venv-bpy50"}
FRAME_START, FRAME_END = 11, 17  # scene frames; the performance file's own numbers start at 1


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("farm_export")


@pytest.fixture(scope="module")
def job(work):
    return write_job(work / "inputs", frames=FRAME_END - FRAME_START + 1, name="farmjob")


@pytest.fixture(scope="module")
def addon_zip(work):
    return build_addon.build("linux-x64", work / "dist", ROOT / "build" / "wheels")


@pytest.fixture(scope="module", params=sorted(BLENDERS))
def exported(request, work, job, addon_zip):
    """Export Farm Job run in one Blender; returns (observations, its folder)."""
    folder = work / f"blender_{request.param}"
    folder.mkdir()
    config = {"zip": str(addon_zip), "work": str(folder), "portrait": job.portrait, "performance": job.driver,
              "frame_start": FRAME_START, "frame_end": FRAME_END, "output_dir": str(folder / "frames")}
    (folder / "config.json").write_text(json.dumps(config))
    run = subprocess.run([str(BLENDERS[request.param] / "bin" / "python"),
                          str(ROOT / "tests" / "blender" / "farm_export_scenario.py"),
                          str(folder / "config.json"), str(folder / "results.json")],
                         env=dict(os.environ, BLENDER_USER_RESOURCES=str(folder / "user")),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((folder / "results.json").read_text())
    assert "failed" not in results, results.get("traceback")
    assert results["blender"].startswith(request.param)
    return results, folder


def test_export_writes_a_bundle_with_absolute_checked_paths(exported, job):
    results, folder = exported
    assert results["export"]["error"] is None
    assert results["export"]["files"] == ["openjd_parameters.json", "parameter_values.yaml", "performance.npz",
                                          "template.yaml"]
    bundle = folder / "bundle"
    assert (bundle / "template.yaml").read_text() == \
        (ROOT / "farm" / "openjd" / "living_portrait" / "template.yaml").read_text()
    values = {v["name"]: v["value"] for v in yaml.safe_load((bundle / "parameter_values.yaml").read_text())["parameterValues"]}
    assert json.loads((bundle / "openjd_parameters.json").read_text()) == values
    assert values["Portrait"] == job.portrait and values["Driver"] == str(bundle / "performance.npz")
    assert values["OutputDir"] == str(folder / "frames") and os.path.isabs(values["OutputDir"])
    assert values["Frames"] == f"{FRAME_START}-{FRAME_END}"  # numbered by scene frame
    assert values["Regions"] == "pose,expression,eyes" and values["ExpressionScale"] == 1.25
    assert values["ChunkSize"] == 3 and values["Engine"] == "warp"


def test_a_missing_portrait_is_reported_and_nothing_is_written(exported):
    results, _ = exported
    error = results["missing_portrait"]["error"]
    assert error and "missing image" in error and "Traceback" not in error
    assert not results["missing_portrait"]["exists"]


def test_the_exported_bundle_runs_under_openjd_like_one_render_of_the_job(exported, job, work):
    _, folder = exported
    bundle = folder / "bundle"
    result = subprocess.run([str(BIN / "openjd"), "run", str(bundle / "template.yaml"), "-p",
                             f"file://{bundle / 'openjd_parameters.json'}"], capture_output=True, text=True,
                            env=openjd_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Chunks run: 3" in result.stdout
    reference = render_in_process(
        job, folder / "reference", "--driver", str(bundle / "performance.npz"), "--expression-scale", "1.25",
        "--regions", "pose,expression,eyes", "--driver-smoothing", "1", landmarks=False)
    frames = exr_files(folder / "frames")
    assert sorted(frames) == [f"farmjob.{f:04d}.exr" for f in range(FRAME_START, FRAME_END + 1)]
    assert frames == reference
