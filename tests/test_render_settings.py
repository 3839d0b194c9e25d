"""RenderSettings: one typed settings object from the CLI through the wire to the backend, checked once."""
import argparse
import dataclasses
import subprocess
import sys

import OpenEXR
import pytest

from livingportrait_backend.commands import render as render_command
from livingportrait_backend.frame_renderer import RenderSpec, job_digest
from livingportrait_backend.images import read_portrait_file
from livingportrait_wire.client import BackendClient, RenderJob
from livingportrait_wire.errors import BadInput
from livingportrait_wire.render_settings import ENGINE_PARTS, FewShotOptions, RenderSettings

CLI = [sys.executable, "-m", "livingportrait_backend"]


def parse_render_flags(*flags):
    p = argparse.ArgumentParser()
    render_command.add_arguments(p)
    args = p.parse_args(["--portrait", "p.png", "--driver", "d.npz", "--out", "o", *flags])
    return render_command.settings_from_args(args)


def test_every_field_is_documented_and_checked():
    parts = [RenderSettings, *ENGINE_PARTS.values()]
    for cls in parts:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            if f.name not in ENGINE_PARTS:
                assert f.metadata.get("check"), f"{cls.__name__}.{f.name} is not checked"


def test_the_render_flags_default_to_the_default_settings():
    assert parse_render_flags() == RenderSettings()


def test_the_render_flags_fill_the_settings_and_the_chosen_engines_part():
    s = parse_render_flags("--engine", "fewshot", "--mode", "absolute", "--neutral-frame", "3",
                           "--expression-scale", "1.5", "--regions", "pose, eyes,mouth", "--zip-level", "4",
                           "--checkpoint", "run/ckpt", "--finetune-steps", "20", "--device", "cpu",
                           "--detector", "fan")
    assert s == RenderSettings(engine="fewshot", detector="fan", mode="absolute", neutral_frame=3,
                               expression_scale=1.5, regions=("pose", "eyes", "mouth"), zip_level=4,
                               fewshot=FewShotOptions(checkpoint="run/ckpt", finetune_steps=20, device="cpu"))


def test_every_bad_field_is_named_in_one_message():
    with pytest.raises(BadInput) as err:
        RenderSettings.from_dict({"zip_level": 12, "mode": "sideways", "regions": ["ears"], "colour": "red",
                                  "fewshot": {"device": "gpu", "finetune_steps": -1}})
    message = err.value.message
    for key in ("zip_level: 12", "mode: 'sideways'", "regions: unknown region(s) 'ears'", "colour: not a render setting",
                "fewshot.device: 'gpu'", "fewshot.finetune_steps: -1"):
        assert key in message, message


def test_settings_made_in_code_are_checked_too():
    with pytest.raises(BadInput, match="^expression_scale: "):
        RenderSettings(expression_scale=float("nan"))
    with pytest.raises(BadInput, match="^device: 'tpu'"):
        FewShotOptions(device="tpu")
    assert RenderSettings(regions="pose, jaw", expression_scale=2).regions == ("pose", "jaw")


def test_the_wire_form_round_trips():
    s = RenderSettings(engine="fewshot", regions=("eyes",), smoothing=2.0,
                       fewshot=FewShotOptions(checkpoint="c", shot_landmarks=[[(1.0, 2.0)] * 68]))
    assert RenderSettings.from_dict(s.to_dict()) == s


def test_an_old_flat_settings_dict_decodes_into_the_engines_part():
    old = {"mode": "absolute", "regions": "pose,mouth", "checkpoint": "ck", "finetune_steps": 5, "device": "cpu",
           "zip_level": 3}
    s = RenderSettings.from_dict(old, engine="fewshot")
    assert s == RenderSettings(engine="fewshot", mode="absolute", regions=("pose", "mouth"), zip_level=3,
                               fewshot=FewShotOptions(checkpoint="ck", finetune_steps=5, device="cpu"))
    with pytest.raises(BadInput, match="engine: 'warp' in the settings but 'fewshot' in the job"):
        RenderSettings.from_dict({"engine": "warp"}, engine="fewshot")


def test_the_job_digest_depends_on_what_the_pictures_show_only(astronaut_png, short_performance):
    portrait = read_portrait_file(astronaut_png)[1]

    def digest(settings):
        return job_digest(RenderSpec([portrait], short_performance, settings=settings))

    plain = digest({})
    # Explicit defaults, storage-only settings and another engine's options make the same pictures.
    assert digest(RenderSettings()) == plain
    assert digest({"expression_scale": 1.0, "zip_level": 9, "regions": "pose,expression"}) == plain
    assert digest({"fewshot": {"checkpoint": "elsewhere"}}) == plain
    assert digest({"mode": "absolute"}) != plain
    assert digest({"smoothing": 1.0}) != plain
    assert digest({"warp": {"mouth_interior": False}}) != plain  # the chosen engine's options count
    assert digest({"engine": "fewshot", "checkpoint": "a"}) == digest({"engine": "fewshot", "fewshot": {"checkpoint": "a"}})


def test_bad_settings_over_the_wire_come_back_as_one_typed_error(backend, astronaut_png, short_performance, tmp_path):
    with open(astronaut_png, "rb") as f:
        portrait = f.read()
    job = RenderJob([portrait], short_performance, str(tmp_path), "bad",
                    settings={"zip_level": 0, "expression_scale": "big", "regions": []})
    with BackendClient(backend.address, timeout_s=30) as client:
        with pytest.raises(BadInput) as err:
            client.submit(job).wait()
    for key in ("zip_level: 0", "expression_scale: 'big'", "regions: empty"):
        assert key in err.value.message


def test_an_old_clients_flat_settings_render_what_the_settings_object_renders(backend, astronaut_png,
                                                                              short_performance, tmp_path):
    with open(astronaut_png, "rb") as f:
        portrait = f.read()
    flat = {"mode": "absolute", "expression_scale": 0.5, "regions": ["pose", "mouth"], "zip_level": 2}
    typed = RenderSettings(mode="absolute", expression_scale=0.5, regions=("pose", "mouth"), zip_level=2)
    with BackendClient(backend.address, timeout_s=60) as client:
        for name, settings in (("old", flat), ("new", typed)):
            job = RenderJob([portrait], short_performance, str(tmp_path / name), "face", settings=settings,
                            frame_range=(2, 3), window=2)
            client.submit(job).wait()
    for frame in ("face.0002.exr", "face.0003.exr"):
        old, new = (tmp_path / "old" / frame).read_bytes(), (tmp_path / "new" / frame).read_bytes()
        assert old == new
    with OpenEXR.File(str(tmp_path / "new" / "face.0002.exr")) as f:
        assert f.header()["livingportrait.job"]


def test_the_cli_names_every_bad_flag(astronaut_png, short_performance_npz, tmp_path):
    result = subprocess.run([*CLI, "render", "--portrait", astronaut_png, "--driver", short_performance_npz,
                             "--out", str(tmp_path), "--zip-level", "12", "--expression-scale", "-1",
                             "--regions", "pose,ears"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for key in ("zip_level: 12", "expression_scale: -1", "regions: unknown region(s) 'ears'"):
        assert key in result.stderr, result.stderr


@pytest.mark.parametrize("settings, key", [
    ({"expression_scale": 10**400}, "expression_scale"),
    ({"smoothing": 10**400}, "smoothing"),
    ({"neutral_frame": 10**400}, "neutral_frame"),
    ({"mode": "x" * 100_000}, "mode"),
    ({"y" * 100_000: 1}, "y" * 60),
    ({"fewshot": {"shot_landmarks": [[1e308 * 10] * 136]}}, "fewshot.shot_landmarks"),
])
def test_hostile_values_are_refused_in_a_short_message(settings, key):
    with pytest.raises(BadInput, match=f"^{key}: ") as err:
        RenderSettings.from_dict(settings)
    assert len(err.value.message) < 400
