"""The fewshot engine: a tiny checkpoint built here, served by a real backend over ZeroMQ.

Frames keep the warp engine's contract (same EXR channels, types, size, naming, matte); the personalised
model is cached on disk and reused; fine-tuning fits the shots; bad checkpoints are refused with a
readable message; cancel stops fine-tuning and rendering promptly.
"""
import os
import time

import cv2
import numpy as np
import OpenEXR
import pytest
import torch

from livingportrait_backend.cli import main as cli_main
from livingportrait_backend.colorspace import SRGB8_TO_LINEAR
from livingportrait_backend.data.synthetic import SyntheticTalkingHeads
from livingportrait_backend.engines import create_engine
from livingportrait_backend.images import read_portrait_file
from livingportrait_backend.model.checkpoint import save_model
from livingportrait_backend.model.config import preset
from livingportrait_backend.model.networks import build_networks
from livingportrait_wire.client import BackendClient, ProgressEvent, RenderJob
from livingportrait_wire.errors import BadInput, Cancelled
from livingportrait_wire.landmarks import LandmarkSequence
from livingportrait_wire.render_settings import RenderSettings

from backend_process import BackendProcess

SIZE = 128  # portrait pixels; the tiny model works on 32 px crops
SHOTS = 3


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private personalised-model cache, and one torch thread per process: on a busy 2-core machine
    OpenMP threads spinning against other processes make tiny networks 10x slower."""
    root = tmp_path_factory.mktemp("fewshot")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVINGPORTRAIT_CACHE", str(root / "cache"))
        mp.setenv("OMP_NUM_THREADS", "1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield root
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(env):
    torch.manual_seed(0)
    cfg = preset("tiny")
    folder = env / "tiny"
    save_model(folder, cfg, build_networks(cfg))
    return str(folder)


@pytest.fixture(scope="module")
def face(env):
    """Shots of one synthetic identity as PNG files, their landmarks, and a driver of the same face."""
    heads = SyntheticTalkingHeads(1, SIZE, seed=7)
    paths, points = [], []
    for i in range(SHOTS):
        image, p = heads.frame(0, i * 9)
        path = env / f"shot{i}.png"
        cv2.imwrite(str(path), image[:, :, ::-1])
        paths.append(str(path))
        points.append(p)
    driver = LandmarkSequence(np.stack([heads.landmarks(0, 30 + f) for f in range(6)]),
                              np.arange(1, 7, dtype=np.int32), (SIZE, SIZE))
    return {"paths": paths, "points": points, "driver": driver,
            "images": [open(p, "rb").read() for p in paths]}


@pytest.fixture(scope="module")
def backend(env):
    proc = BackendProcess()
    yield proc
    proc.stop()


def settings(checkpoint, face, **extra):
    return {"checkpoint": checkpoint, "shot_landmarks": [p.tolist() for p in face["points"][1:]], **extra}


def submit(backend, job, on_event=None):
    with BackendClient(backend.address, timeout_s=30) as client:
        client.handshake()
        return client.submit(job).wait(on_event)


def job(face, out, engine="fewshot", settings=None, frame_range=None, driver=None, name="face"):
    return RenderJob(face["images"], driver or face["driver"], str(out), name, engine, settings or {},
                     frame_range, face["points"][0], window=2)


def read_exr(path):
    with OpenEXR.File(str(path), separate_channels=True) as f:
        return dict(f.header()), {k: v.pixels.copy() for k, v in f.channels().items()}


def test_frames_keep_the_warp_engines_contract(backend, checkpoint, face, tmp_path):
    submit(backend, job(face, tmp_path / "fewshot", settings=settings(checkpoint, face, finetune_steps=2)))
    submit(backend, job(face, tmp_path / "warp", engine="warp"))
    names = sorted(os.listdir(tmp_path / "fewshot"))
    assert names == sorted(os.listdir(tmp_path / "warp")) == [f"face.{f:04d}.exr" for f in range(1, 7)]
    portrait = SRGB8_TO_LINEAR[cv2.imread(face["paths"][0])[:, :, ::-1]]
    for name in names:
        header, ch = read_exr(tmp_path / "fewshot" / name)
        _, warp_ch = read_exr(tmp_path / "warp" / name)
        assert sorted(ch) == sorted(warp_ch) == ["A", "B", "G", "R", "matte.Y"]
        assert all(c.dtype == np.float16 and c.shape == (SIZE, SIZE) for c in ch.values())
        assert header["livingportrait.engine"] == "fewshot"
        matte = ch["matte.Y"].astype(np.float32)
        assert matte.min() >= 0 and matte.max() <= 1 and matte.max() > 0.9
        assert matte[0, 0] == 0 and matte[-1, -1] == 0  # the corners are the portrait's own
        rgb = np.stack([ch["R"], ch["G"], ch["B"]], -1).astype(np.float32)
        assert np.all(np.isfinite(rgb)) and np.all(ch["A"] == 1)
        untouched = matte == 0
        np.testing.assert_allclose(rgb[untouched], portrait[untouched], atol=2e-3)
        assert np.abs(rgb - portrait)[matte > 0.9].mean() > 1e-3  # the generated face is really there


def test_second_render_takes_the_fine_tuned_model_from_the_cache(backend, checkpoint, face, env, tmp_path):
    s = settings(checkpoint, face, finetune_steps=4, finetune_batch=2)
    stages = [[], []]
    for i, frames in enumerate([(1, 3), (4, 6)]):  # two farm chunks of one job
        submit(backend, job(face, tmp_path, settings=s, frame_range=frames),
               lambda e, i=i: isinstance(e, ProgressEvent) and stages[i].append(e.stage))
    assert "finetune" in stages[0] and "cached" not in stages[0]
    assert "cached" in stages[1] and "finetune" not in stages[1]
    assert len(os.listdir(tmp_path)) == 6


def test_fine_tuning_lowers_the_reconstruction_error_on_the_shots(env, checkpoint, face):
    portraits = [read_portrait_file(p)[1] for p in face["paths"]]

    def shot_error(steps):
        engine = create_engine("fewshot")
        engine.prepare(portraits, face["points"][0], RenderSettings.from_dict(
            settings(checkpoint, face, finetune_steps=steps, finetune_batch=3), engine="fewshot"))
        made = engine.generate(np.ascontiguousarray(engine.shots[:, 3:]))
        real = (engine.shots[:, :3].transpose(0, 2, 3, 1) + 1) / 2
        return float(np.abs(made - real).mean())

    before, after = shot_error(0), shot_error(40)
    assert after < 0.6 * before, (before, after)


@pytest.mark.parametrize("kind, expected", [
    ("pickle_folder", "pickle"), ("pickle_file", "pickle"), ("pickle_named_safetensors", "pickle"),
    ("truncated", "corrupt or truncated"), ("missing", "does not exist"), ("mismatched", "do not match"),
])
def test_bad_checkpoints_are_refused_with_a_clear_message(backend, checkpoint, face, tmp_path, kind, expected):
    good = open(os.path.join(checkpoint, "model.safetensors"), "rb").read()
    target = tmp_path / "ckpt"
    target.mkdir()
    if kind == "pickle_folder":
        torch.save({"w": torch.zeros(2)}, target / "model.pt")
    elif kind == "pickle_file":
        target = target / "weights.pth"
        torch.save({"w": torch.zeros(2)}, target)
    elif kind == "pickle_named_safetensors":
        torch.save({"w": torch.zeros(2)}, target / "model.safetensors")
    elif kind == "truncated":
        (target / "model.safetensors").write_bytes(good[: len(good) // 2])
    elif kind == "missing":
        target = tmp_path / "nowhere"
    else:  # a generator weight of the wrong shape for the config
        from safetensors.torch import load, save
        from safetensors import safe_open
        with safe_open(os.path.join(checkpoint, "model.safetensors"), "pt") as f:
            meta = f.metadata()
        tensors = load(good)
        tensors["generator.projection.weight"] = torch.zeros(3, 3)
        (target / "model.safetensors").write_bytes(save(tensors, metadata=meta))
    with pytest.raises(BadInput) as err:
        submit(backend, job(face, tmp_path / "out", settings=settings(str(target), face)))
    assert expected in str(err.value)
    assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")


def cancel_once(backend, render_job, started, what: str):
    """Submit, poll until ``started(stream)``, cancel; the stream must end with Cancelled within 5 s."""
    with BackendClient(backend.address, timeout_s=30) as client:
        client.handshake()
        stream = client.submit(render_job)
        deadline = time.monotonic() + 60
        while not started(stream):
            assert time.monotonic() < deadline, f"{what} never started"
            stream.poll(200)
        cancelled_at = time.monotonic()
        stream.cancel()
        with pytest.raises(Cancelled):
            stream.wait()
        assert time.monotonic() - cancelled_at < 5
        return stream


def test_cancel_stops_fine_tuning_promptly(backend, checkpoint, face, tmp_path):
    endless = job(face, tmp_path, settings=settings(checkpoint, face, finetune_steps=100000))
    cancel_once(backend, endless, lambda s: s.stage == "finetune" and s.stage_done >= 2, "fine-tuning")
    assert os.listdir(tmp_path) == []


def test_cancel_stops_rendering_promptly(backend, checkpoint, face, tmp_path):
    long_driver = LandmarkSequence(np.tile(face["driver"].landmarks, (100, 1, 1)),
                                   np.arange(1, 601, dtype=np.int32), (SIZE, SIZE))
    long_job = job(face, tmp_path, settings=settings(checkpoint, face), driver=long_driver)
    stream = cancel_once(backend, long_job, lambda s: bool(s.frames_written), "rendering")
    assert len(stream.frames_written) < 600


def test_farm_render_takes_the_checkpoint_flags(env, checkpoint, face, tmp_path):
    np.save(tmp_path / "points.npy", face["points"][0])
    from livingportrait_wire.landmarks import save_sequence
    save_sequence(face["driver"], tmp_path / "drive.npz")
    code = cli_main(["render", "--portrait", face["paths"][0], "--driver", str(tmp_path / "drive.npz"),
                     "--out", str(tmp_path / "out"), "--engine", "fewshot", "--checkpoint", checkpoint,
                     "--finetune-steps", "1", "--device", "cpu", "--frames", "2-3",
                     "--portrait-landmarks", str(tmp_path / "points.npy")])
    assert code == 0
    assert sorted(p for p in os.listdir(tmp_path / "out") if p.endswith(".exr")) == ["portrait.0002.exr", "portrait.0003.exr"]


def test_batched_rendering_gives_the_same_frames_as_one_at_a_time(backend, checkpoint, face, tmp_path):
    for batch in (1, 4):
        submit(backend, job(face, tmp_path / f"b{batch}", settings=settings(checkpoint, face, batch=batch)))
    for name in sorted(os.listdir(tmp_path / "b1")):
        one = np.stack([read_exr(tmp_path / "b1" / name)[1][c] for c in "RGB"]).astype(np.float32)
        four = np.stack([read_exr(tmp_path / "b4" / name)[1][c] for c in "RGB"]).astype(np.float32)
        np.testing.assert_allclose(four, one, atol=2e-3)
