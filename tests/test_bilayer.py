"""The bi-layer engine: the publisher's layout converted, the networks' shapes, and the engine served by a
real backend over ZeroMQ with converted random weights (the published weights cannot be downloaded here;
bench/check_bilayer_reference.py proves the function against the publisher's own code).

The engine tests use the published architecture scaled down (tests/bilayer_fixture.py: every width / 8,
64 px) so they stay fast on two busy cores; the published size is checked by parameter counts and a
per-frame forward.
"""
import os

import cv2
import numpy as np
import OpenEXR
import pytest
import torch

from livingportrait_backend.cli import main as cli_main
from livingportrait_backend.data.synthetic import SyntheticTalkingHeads
from livingportrait_backend.engines import available_engines, create_engine
from livingportrait_backend.engines.face_crop import border_feather
from livingportrait_backend.images import read_portrait_file
from livingportrait_backend.model.bilayer import BilayerConfig, BilayerModel, load_converted
from livingportrait_wire.client import BackendClient, ProgressEvent, RenderJob
from livingportrait_wire.errors import BadInput
from livingportrait_wire.landmarks import LandmarkSequence, save_sequence
from livingportrait_wire.render_settings import RenderSettings

from backend_process import BackendProcess
from bilayer_fixture import random_model, write_runs

SIZE = 160  # portrait pixels


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Converted tiny weights in $LIVINGPORTRAIT_MODELS/bilayer, a private identity cache, one torch thread."""
    root = tmp_path_factory.mktemp("bilayer")
    model = random_model()
    runs = write_runs(root, model)
    assert cli_main(["convert-weights", "bilayer", *map(str, runs), "--out", str(root / "models" / "bilayer")]) == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVINGPORTRAIT_MODELS", str(root / "models"))
        mp.setenv("LIVINGPORTRAIT_CACHE", str(root / "cache"))
        mp.setenv("OMP_NUM_THREADS", "1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield {"root": root, "model": model, "runs": runs, "folder": root / "models" / "bilayer"}
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def face(env):
    heads = SyntheticTalkingHeads(1, SIZE, seed=3)
    image, points = heads.frame(0, 0)
    path = env["root"] / "portrait.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    driver = LandmarkSequence(np.stack([heads.landmarks(0, 20 + 3 * f) for f in range(6)]),
                              np.arange(1, 7, dtype=np.int32), (SIZE, SIZE))
    return {"path": str(path), "image": path.read_bytes(), "points": points, "driver": driver}


@pytest.fixture(scope="module")
def backend(env):
    proc = BackendProcess()
    yield proc
    proc.stop()


def submit(backend, job, on_event=None):
    with BackendClient(backend.address, timeout_s=60) as client:
        client.handshake()
        return client.submit(job).wait(on_event)


def job(face, out, settings=None, frame_range=None, name="face"):
    return RenderJob([face["image"]], face["driver"], str(out), name, "bilayer", settings or {},
                     frame_range, face["points"], window=2)


def read_exr(path):
    with OpenEXR.File(str(path), separate_channels=True) as f:
        return dict(f.header()), {k: v.pixels.astype(np.float32) for k, v in f.channels().items()}


# ---- the converter ----

def test_converter_reads_the_publishers_layout_and_folds_spectral_norm(env):
    converted = load_converted(str(env["folder"]))
    assert converted.cfg == env["model"].cfg  # the architecture comes from args.txt
    for net, module in env["model"].networks().items():
        ours = converted.networks()[net].state_dict()
        for key, value in module.state_dict().items():
            torch.testing.assert_close(ours[key], value, atol=1e-6, rtol=1e-5, msg=f"{net}.{key}")


def refusal(tmp_path, capsys, runs):
    code = cli_main(["convert-weights", "bilayer", *map(str, runs), "--out", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()
    return capsys.readouterr().err


@pytest.fixture
def runs_copy(env, tmp_path):
    return write_runs(tmp_path / "download", env["model"])


def test_a_missing_checkpoint_is_named_with_where_it_goes(runs_copy, tmp_path, capsys):
    (runs_copy[1] / "checkpoints" / "1225_texture_enhancer.pth").unlink()
    err = refusal(tmp_path, capsys, runs_copy)
    assert "texture_enhancer" in err and "runs/vc2-hq_adrianb_paper_enhancer/checkpoints/1225_texture_enhancer.pth" in err


def test_a_missing_args_file_is_named(runs_copy, tmp_path, capsys):
    (runs_copy[0] / "args.txt").unlink()
    err = refusal(tmp_path, capsys, runs_copy)
    assert "args.txt is missing" in err and "runs/<experiment>/args.txt" in err


def test_a_pickled_whole_module_is_refused(runs_copy, tmp_path, capsys):
    torch.save(torch.nn.Linear(136, 4), runs_copy[0] / "checkpoints" / "2225_keypoints_embedder.pth")
    err = refusal(tmp_path, capsys, runs_copy)
    assert "2225_keypoints_embedder.pth" in err and "pickled Python objects" in err


def test_a_truncated_file_is_refused(runs_copy, tmp_path, capsys):
    path = runs_copy[0] / "checkpoints" / "2225_inference_generator.pth"
    path.write_bytes(path.read_bytes()[:5000])
    assert "truncated or corrupt" in refusal(tmp_path, capsys, runs_copy)


def test_a_mismatched_layout_is_refused(runs_copy, tmp_path, capsys):
    ckpt = runs_copy[0] / "checkpoints"
    (ckpt / "2225_texture_generator.pth").write_bytes((ckpt / "2225_identity_embedder.pth").read_bytes())
    err = refusal(tmp_path, capsys, runs_copy)
    assert "2225_texture_generator.pth" in err and "published-layout texture_generator" in err


def test_a_checkpoint_of_another_size_is_refused(runs_copy, tmp_path, capsys):
    args = (runs_copy[0] / "args.txt").read_text().replace("inf_max_channels: 32", "inf_max_channels: 64")
    (runs_copy[0] / "args.txt").write_text(args)
    err = refusal(tmp_path, capsys, runs_copy)
    assert "does not match the" in err and "shapes differ" in err


# ---- the networks ----

def test_each_network_has_the_published_size():
    counts = {n: sum(p.numel() for p in m.parameters()) for n, m in BilayerModel(BilayerConfig()).networks().items()}
    # The publisher's networks built by its own code: 31.4 M, 55.7 M, 1.2 M, 11.8 M (+ its UV grid), 2.7 M.
    assert counts == {"identity_embedder": 31442304, "texture_generator": 55664993, "keypoints_embedder": 1219328,
                      "inference_generator": 11844068, "texture_enhancer": 2715331}


def test_the_per_frame_networks_give_the_documented_shapes_at_the_published_size():
    model = BilayerModel(BilayerConfig()).eval()
    model.inference_generator.personalise([torch.zeros(1, c, 8, 8) for c in (512, 512, 512, 256, 128, 64)])
    with torch.inference_mode():
        pose = model.keypoints_embedder(torch.zeros(2, 136))
        uv, lf, seg = model.inference_generator(pose)
    assert pose.shape == (2, 256, 4, 4)
    assert uv.shape == (2, 256, 256, 2) and lf.shape == (2, 3, 256, 256) and seg.shape == (2, 1, 256, 256)


def test_each_network_gives_the_documented_shapes(env):
    model, s = env["model"], env["model"].cfg.image_size
    image = torch.rand(1, 3, s, s) * 2 - 1
    with torch.no_grad():
        embeds = model.identity_embedder(torch.rand(1, 6, s, s))
        texture = model.texture_generator(embeds)
        model.inference_generator.personalise(embeds)
        uv, lf, seg = model.inference_generator(model.keypoints_embedder(torch.zeros(3, 136)))
        enhanced = model.texture_enhancer(texture, image, uv[:1], lf[:1], torch.sigmoid(seg[:1]))
        rgb, fg = model.frames(torch.zeros(3, 136), enhanced)
    assert [tuple(e.shape) for e in embeds] == [(1, 64, 8, 8), (1, 32, 8, 8), (1, 16, 8, 8), (1, 8, 8, 8)]
    assert texture.shape == enhanced.shape == (1, 3, s, s)
    assert uv.shape == (3, s, s, 2) and lf.shape == (3, 3, s, s) and seg.shape == (3, 1, s, s)
    assert rgb.shape == (3, 3, s, s) and fg.shape == (3, 1, s, s) and float(fg.min()) >= 0 and float(fg.max()) <= 1
    assert not torch.equal(enhanced, texture)  # the enhancer changed the texture


def personalised_texture(model) -> torch.Tensor:
    """Personalise the model's inference generator to a random identity; that identity's texture."""
    s = model.cfg.image_size
    embeds = model.identity_embedder(torch.rand(1, 6, s, s))
    model.inference_generator.personalise(embeds)
    return model.texture_generator(embeds)


def test_the_folded_frame_path_is_the_same_function(env):
    model = env["model"]
    with torch.no_grad():
        texture = personalised_texture(model)
        kp = torch.rand(4, 136) * 1.6 - 0.8
        rgb, fg = model.frames(kp, texture)
        frgb, ffg = model.frame_path(texture)(kp)
    torch.testing.assert_close(frgb, rgb, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ffg, fg, atol=1e-5, rtol=1e-4)


# ---- the engine ----

def test_handshake_offers_bilayer_only_with_converted_weights(env, backend, monkeypatch, tmp_path):
    with BackendClient(backend.address, timeout_s=30) as client:
        assert "bilayer" in client.handshake()["engines"]
    monkeypatch.setenv("LIVINGPORTRAIT_MODELS", str(tmp_path))  # no bilayer folder there
    assert "bilayer" not in available_engines()
    bare = BackendProcess()
    try:
        with BackendClient(bare.address, timeout_s=30) as client:
            assert "bilayer" not in client.handshake()["engines"]
    finally:
        bare.stop()
    # Asked for anyway, it says how to get the weights instead of only that it is missing.
    with pytest.raises(BadInput, match="engine 'bilayer' needs the publisher's weights converted .*"
                                       "convert-weights bilayer"):
        create_engine("bilayer")


def test_a_render_without_converted_weights_says_how_to_make_them_and_writes_nothing(env, face, tmp_path,
                                                                                    monkeypatch, capsys):
    monkeypatch.setenv("LIVINGPORTRAIT_MODELS", str(tmp_path / "models"))  # no bilayer folder there
    save_sequence(face["driver"], tmp_path / "drive.npz")
    args = ["render", "--portrait", face["path"], "--driver", str(tmp_path / "drive.npz"),
            "--engine", "bilayer"]
    assert cli_main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "convert-weights bilayer" in capsys.readouterr().err
    assert cli_main([*args, "--out", str(tmp_path / "out"), "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []  # no frame, no cache


def test_frames_arrive_with_the_segmentation_as_matte(env, backend, face, tmp_path):
    submit(backend, job(face, tmp_path))
    names = sorted(os.listdir(tmp_path))
    assert names == [f"face.{f:04d}.exr" for f in range(1, 7)]
    # The same engine in this process, for the segmentations the network predicts.
    engine = create_engine("bilayer")
    _, portrait = read_portrait_file(face["path"])
    engine.prepare([portrait], face["points"], RenderSettings(engine="bilayer"))
    from livingportrait_backend.landmarks.retarget import RetargetOptions, retarget
    targets = retarget(face["points"], face["driver"], RetargetOptions.from_settings(RenderSettings()))
    _, segs = engine.generate(list(targets))
    box = engine.box
    for name, seg in zip(names, segs):
        header, ch = read_exr(tmp_path / name)
        assert header["livingportrait.engine"] == "bilayer"
        assert sorted(ch) == ["A", "B", "G", "R", "matte.Y"] and ch["R"].shape == (SIZE, SIZE)
        rgb = np.stack([ch["R"], ch["G"], ch["B"]], -1)
        assert np.all(np.isfinite(rgb)) and np.all(ch["A"] == 1)
        # The matte is the predicted segmentation, resized from the crop to the box and feathered at its border.
        expected = cv2.resize(seg * border_feather(seg.shape[0]), (box.side, box.side), interpolation=cv2.INTER_LINEAR)
        x0, y0 = box.left_top.astype(int)
        ys, xs = slice(max(y0, 0), min(y0 + box.side, SIZE)), slice(max(x0, 0), min(x0 + box.side, SIZE))
        window = expected[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        assert np.abs(ch["matte.Y"][ys, xs] - window).mean() < 0.01
        assert ch["matte.Y"][:ys.start].max(initial=0) == 0 and ch["matte.Y"][:, :xs.start].max(initial=0) == 0


def test_second_render_takes_the_identity_from_the_cache(env, backend, face, tmp_path):
    stages = [[], []]
    s = {"bilayer": {"batch": 2}}
    for i, frames in enumerate([(1, 3), (4, 6)]):  # two farm chunks of one job
        submit(backend, job(face, tmp_path, settings=s, frame_range=frames, name="cached"),
               lambda e, i=i: isinstance(e, ProgressEvent) and stages[i].append(e.stage))
    assert "cached" in stages[1] and "identity" not in stages[1]
    assert len(os.listdir(tmp_path)) == 6


def test_batched_rendering_gives_the_same_frames_as_one_at_a_time(env, backend, face, tmp_path):
    for batch in (1, 4):
        submit(backend, job(face, tmp_path / f"b{batch}", settings={"bilayer": {"batch": batch}}))
    for name in sorted(os.listdir(tmp_path / "b1")):
        one, four = read_exr(tmp_path / "b1" / name)[1], read_exr(tmp_path / "b4" / name)[1]
        for c in ("R", "G", "B", "matte.Y"):
            np.testing.assert_allclose(four[c], one[c], atol=2e-3)


def test_farm_render_takes_the_checkpoint_flag(env, face, tmp_path, monkeypatch):
    monkeypatch.delenv("LIVINGPORTRAIT_MODELS")  # the flag alone names the weights
    np.save(tmp_path / "points.npy", face["points"])
    save_sequence(face["driver"], tmp_path / "drive.npz")
    code = cli_main(["render", "--portrait", face["path"], "--driver", str(tmp_path / "drive.npz"),
                     "--out", str(tmp_path / "out"), "--engine", "bilayer", "--checkpoint", str(env["folder"]),
                     "--device", "cpu", "--frames", "2-3", "--portrait-landmarks", str(tmp_path / "points.npy")])
    assert code == 0
    assert sorted(f for f in os.listdir(tmp_path / "out") if f.endswith(".exr")) == \
        ["portrait.0002.exr", "portrait.0003.exr"]
    assert os.listdir(tmp_path / "out" / ".livingportrait-cache" / "bilayer")  # the identity, for later chunks


def test_a_folder_of_unconverted_checkpoints_is_refused(env, face, tmp_path):
    (tmp_path / "2225_identity_embedder.pth").write_bytes(b"")
    engine = create_engine("bilayer")
    _, portrait = read_portrait_file(face["path"])
    settings = RenderSettings.from_dict({"engine": "bilayer", "bilayer": {"checkpoint": str(tmp_path)}})
    with pytest.raises(BadInput, match="pickled checkpoints .*convert them first"):
        engine.prepare([portrait], face["points"], settings)


def test_the_half_precision_path_gives_the_fp32_frames_closely(env):
    """The GPU's fp16 path (no GPU here: the same module in float16 on the CPU)."""
    model = env["model"]
    with torch.no_grad():
        texture = personalised_texture(model)
        kp = torch.rand(4, 136) * 1.6 - 0.8
        rgb, fg = model.frame_path(texture)(kp)
        hrgb, hfg = model.frame_path(texture, torch.float16)(kp)
    assert hrgb.dtype == hfg.dtype == torch.float16
    assert float((hrgb.float() - rgb).abs().max()) < 0.03 and float((hfg.float() - fg).abs().max()) < 0.01
