"""Perceptual nets: the converter, the stored input convention, and refusing unsafe weight files."""

import pytest
import torch
import torch.nn.functional as F

from livingportrait_backend.cli import main
from livingportrait_backend.model.vgg import load_vgg_features
from livingportrait_wire.errors import BadInput

VGG19_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256)]


def _torchvision_style_vgg19(path):
    """A VGG19-shaped state dict with random weights, saved the way torchvision's .pth files are."""
    torch.manual_seed(0)
    widths = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
    state, cin, i = {}, 3, 0
    for w in widths:
        if w == "M":
            i += 1
            continue
        state[f"features.{i}.weight"] = torch.randn(w, cin, 3, 3) * 0.05
        state[f"features.{i}.bias"] = torch.randn(w) * 0.01
        cin, i = w, i + 2
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, path)
    return state


def test_caffe_vgg19_gets_bgr_0_255_mean_subtracted_input(tmp_path):
    state = _torchvision_style_vgg19(tmp_path / "vgg19.pth")
    out = tmp_path / "vgg19.safetensors"
    assert main(["convert-weights", "vgg19", str(tmp_path / "vgg19.pth"), "--out", str(out), "--convention", "caffe"]) == 0
    net = load_vgg_features(out, "vgg19", (1, 6))
    image = torch.rand(1, 3, 16, 16) * 2 - 1  # RGB in [-1, 1], the generator's output space
    feats = net(image)
    # By hand: RGB [-1, 1] -> 0..255 -> BGR -> minus the Caffe ImageNet mean (BGR order).
    x = ((image + 1) * 127.5).flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=1))
    torch.testing.assert_close(feats[0], expected, rtol=1e-4, atol=1e-3)
    assert len(feats) == 2 and feats[1].shape == (1, 128, 8, 8)


def test_torchvision_convention_is_rgb_0_1_normalised(tmp_path):
    state = _torchvision_style_vgg19(tmp_path / "vgg19.pth")
    out = tmp_path / "vgg19_tv.safetensors"
    main(["convert-weights", "vgg19", str(tmp_path / "vgg19.pth"), "--out", str(out), "--convention", "torchvision"])
    net = load_vgg_features(out, "vgg19", (1,))
    image = torch.rand(1, 3, 8, 8) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = ((image + 1) / 2 - mean) / std
    expected = F.relu(F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=1))
    torch.testing.assert_close(net(image)[0], expected, rtol=1e-4, atol=1e-4)


def test_vggface_dag_port_is_mapped_by_layer_name(tmp_path):
    torch.manual_seed(1)
    names = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
             "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    state, cin = {}, 3
    for n, w in zip(names, widths):
        state[f"{n}.weight"], state[f"{n}.bias"] = torch.randn(w, cin, 3, 3) * 0.05, torch.zeros(w)
        cin = w
    torch.save(state, tmp_path / "vgg_face_dag.pth")
    out = tmp_path / "vggface.safetensors"
    assert main(["convert-weights", "vggface", str(tmp_path / "vgg_face_dag.pth"), "--out", str(out)]) == 0
    net = load_vgg_features(out, "vggface", (1, 6, 11, 18, 25))
    assert net.convention.channel_order == "rgb" and net.convention.scale == 255.0
    torch.testing.assert_close(net.features[17].weight, state["conv4_1.weight"])
    assert [f.shape[1] for f in net(torch.zeros(1, 3, 32, 32))] == [64, 128, 256, 512, 512]


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_carries_code_is_refused(tmp_path, capsys):
    torch.save({"features.0.weight": _Payload()}, tmp_path / "evil.pth")
    code = main(["convert-weights", "vgg19", str(tmp_path / "evil.pth"), "--out", str(tmp_path / "x.safetensors"),
                 "--convention", "caffe"])
    captured = capsys.readouterr()
    assert code == 2
    assert "this must never run" not in captured.out
    assert "cannot be read safely" in captured.err
    assert not (tmp_path / "x.safetensors").exists()


def test_an_ambiguous_vgg19_needs_its_convention(tmp_path, capsys):
    _torchvision_style_vgg19(tmp_path / "vgg19.pth")
    assert main(["convert-weights", "vgg19", str(tmp_path / "vgg19.pth"), "--out", str(tmp_path / "v.safetensors")]) == 2
    assert "--convention" in capsys.readouterr().err


def test_missing_weights_file_names_the_converter(tmp_path):
    with pytest.raises(BadInput, match="convert-weights"):
        load_vgg_features(tmp_path / "absent.safetensors", "vgg19", (1,))


def test_a_pickle_passed_as_converted_weights_is_refused_before_it_is_read(tmp_path):
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "vgg19.safetensors")  # misnamed
    with pytest.raises(BadInput, match="pickle.*refused.*convert-weights vgg19"):
        load_vgg_features(tmp_path / "vgg19.safetensors", "vgg19", (1,))
