"""The per-job prepare cache beside the output: the first chunk of a job detects the portrait's landmarks
and prepares the engine, the next chunks (fresh processes, as on a farm) read both from
OUT/.livingportrait-cache and render the same bytes. Real CLI processes, real detector, real EXR files."""
from __future__ import annotations

import subprocess

import pytest

from farm_job import LIVINGPORTRAIT, exr_files, render_in_process, subprocess_env, write_job


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return write_job(tmp_path_factory.mktemp("cache_job"), frames=6)


def render_chunk(job, out, frames, *extra):
    result = subprocess.run([LIVINGPORTRAIT, *job.render_args(str(out), frames, landmarks=False), *extra],
                            capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_chunks_reuse_the_portrait_landmarks_and_warp_preparation_and_match_a_fresh_render(job, tmp_path):
    reference = render_in_process(job, tmp_path / "fresh", landmarks=False)  # detects, prepares, no reuse
    out = tmp_path / "chunks"
    first = render_chunk(job, out, "1-3")
    assert "reused from the job's prepare cache" not in first.stdout
    assert sorted(p.name for p in (out / ".livingportrait-cache").iterdir()) == ["landmarks", "warp"]
    second = render_chunk(job, out, "4-6")
    assert "reused from the job's prepare cache: portrait landmarks, warp engine preparation" in second.stdout
    assert exr_files(out) == reference


def test_an_unreadable_cache_entry_is_made_again(job, tmp_path):
    out = tmp_path / "chunks"
    render_chunk(job, out, "1")
    for entry in (out / ".livingportrait-cache").rglob("*.npz"):
        entry.write_bytes(b"truncated")
    again = render_chunk(job, out, "2")
    assert "reused" not in again.stdout
    assert "reused from the job's prepare cache: portrait landmarks, warp engine preparation" in \
        render_chunk(job, out, "3").stdout


def test_fewshot_chunks_reuse_the_personalised_model_fitted_by_the_first(job, tmp_path):
    import torch

    from livingportrait_backend.model.checkpoint import save_model
    from livingportrait_backend.model.config import preset
    from livingportrait_backend.model.networks import build_networks

    torch.manual_seed(0)
    cfg = preset("tiny")
    save_model(tmp_path / "tiny", cfg, build_networks(cfg))
    neural = ["--engine", "fewshot", "--checkpoint", str(tmp_path / "tiny"), "--finetune-steps", "2",
              "--device", "cpu"]
    out = tmp_path / "out"
    render_chunk(job, out, "1-2", *neural)
    assert len(list((out / ".livingportrait-cache" / "personalized").glob("*.safetensors"))) == 1
    second = render_chunk(job, out, "3-4", *neural)
    assert "fewshot engine preparation" in second.stdout
    assert sorted(exr_files(out)) == [f"shot.{f:04d}.exr" for f in range(1, 5)]
