"""`livingportrait evaluate`: the paper's protocol on held-out synthetic identities, a Table-1-shaped
Markdown and CSV; FID and CSIM only with weights the user supplies (random weights stand in here)."""
import csv

import numpy as np
import pytest
import torch

from livingportrait_backend.cli import main as cli_main
from livingportrait_backend.evaluation.feature_metrics import frechet_distance
from livingportrait_backend.evaluation.inception import InceptionFeatures
from livingportrait_backend.evaluation.protocol import split_video
from livingportrait_backend.model.checkpoint import save_model
from livingportrait_backend.model.config import preset
from livingportrait_backend.model.networks import build_networks


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Two spinning OpenMP threads on a busy 2-core machine make these small networks far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = preset("tiny")
    folder = tmp_path_factory.mktemp("evaluate") / "tiny"
    save_model(folder, cfg, build_networks(cfg))
    return str(folder)


def evaluate(checkpoint, out, *extra):
    return cli_main(["evaluate", "--checkpoint", checkpoint, "--data", "synthetic:2", "--out", str(out),
                     "--shots", "1,2", "--videos", "2", "--frames", "2", "--finetune-steps", "2", "--warp", *extra])


def test_writes_a_table_shaped_like_the_papers(checkpoint, tmp_path, capsys):
    assert evaluate(checkpoint, tmp_path / "table") == 0
    err = capsys.readouterr().err
    assert "FID not computed: pass --inception" in err and "CSIM not computed: pass --vggface" in err
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert [(r["engine"], r["shots"], r["finetuned"]) for r in rows] == [
        ("warp", "1", "False"), ("fewshot", "1", "False"), ("fewshot", "1", "True"),
        ("fewshot", "2", "False"), ("fewshot", "2", "True")]
    for r in rows:
        assert r["frames"] == "4" and r["fid"] == "" and r["csim"] == ""
        assert 0 < float(r["l1"]) < 1 and -1 <= float(r["ssim"]) <= 1 and float(r["psnr"]) > 0
    md = (tmp_path / "table.md").read_text()
    assert md.splitlines()[0] == "| Method (T) | FID↓ | SSIM↑ | CSIM↑ | PSNR↑ (dB) | L1↓ |"
    assert "| fewshot, fine-tuned (2) | — |" in md


def test_fid_and_csim_are_filled_when_weights_are_given(checkpoint, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    save_file(InceptionFeatures().state_dict(), str(tmp_path / "inception.safetensors"))
    from livingportrait_backend.model.vgg import LAYOUTS
    state, cin, i = {}, 3, 0
    for v in LAYOUTS["vggface"]:  # a torchvision-layout VGGFace state dict, converted by the real converter
        if v == "M":
            i += 1
            continue
        state[f"features.{i}.weight"] = torch.randn(v, cin, 3, 3) * 0.05
        state[f"features.{i}.bias"] = torch.zeros(v)
        cin, i = v, i + 2
    torch.save(state, tmp_path / "vggface.pth")
    assert cli_main(["convert-weights", "vggface", str(tmp_path / "vggface.pth"), "--out",
                     str(tmp_path / "vggface.safetensors"), "--convention", "caffe"]) == 0
    # One method on 3 frames: Inception at 299 px and VGGFace at 224 px are slow on 2 busy cores.
    assert cli_main(["evaluate", "--checkpoint", checkpoint, "--data", "synthetic:1", "--out", str(tmp_path / "table"),
                     "--shots", "1", "--videos", "1", "--frames", "3",
                     "--inception", str(tmp_path / "inception.safetensors"),
                     "--vggface", str(tmp_path / "vggface.safetensors")]) == 0
    (row,) = csv.DictReader(open(tmp_path / "table.csv"))
    assert float(row["fid"]) >= 0 and -1 <= float(row["csim"]) <= 1


def test_pickled_inception_weights_are_refused(checkpoint, tmp_path, capsys):
    torch.save(InceptionFeatures().state_dict(), tmp_path / "inception.pth")
    assert evaluate(checkpoint, tmp_path / "table", "--inception", str(tmp_path / "inception.pth")) == 2
    assert "pickles are refused" in capsys.readouterr().err
    assert not (tmp_path / "table.md").exists()


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_a_shift():
    a = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(frechet_distance(a, a)) < 1e-6
    assert frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)


@pytest.mark.parametrize("frames", [300, 5])  # more frames than feature dimensions, and fewer
def test_frechet_distance_matches_the_textbook_formula(frames):
    from scipy import linalg

    rng = np.random.default_rng(frames)
    a = rng.normal(size=(frames, 8))
    b = rng.normal(size=(frames + 2, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    textbook = (((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2)
                - 2 * np.trace(linalg.sqrtm(s1 @ s2).real))
    assert frechet_distance(a, b) == pytest.approx(textbook, rel=1e-6)


def test_held_out_frames_are_disjoint_from_the_shots_and_deterministic():
    shots, held = split_video(64, 32, 16, seed=0, video=3)
    assert len(set(shots)) == 32 and len(set(held)) == 16 and not set(shots) & set(held)
    assert split_video(64, 32, 16, seed=0, video=3) == (shots, held)


def test_psnr_is_decibels_of_the_mean_squared_error_and_infinite_for_identical_frames():
    from livingportrait_backend.evaluation.metrics import psnr

    real = np.full((8, 8, 3), 0.5, np.float32)
    fake = real + np.float32(0.1)  # MSE 0.01 on a [0, 1] scale: 20 dB
    assert psnr(real, fake) == pytest.approx(20.0, abs=1e-4)
    assert psnr(real, real) == float("inf")
