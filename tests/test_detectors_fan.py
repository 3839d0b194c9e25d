"""The fan detector (face-alignment): offline it never downloads; missing weights get a message naming
the files and where to put them; weights present in --fan-weights DIR or torch hub's cache are found
and loaded through face-alignment for real."""
import numpy as np
import pytest
import torch
from face_alignment.detection.sfd.net_s3fd import s3fd
from face_alignment.models import FAN
from skimage import data

from livingportrait_backend.detectors import get_detector
from livingportrait_backend.detectors.fan import FACE_FINDER_FILE, LANDMARK_FILE, WEIGHT_URLS, find_weights
from livingportrait_wire.errors import BadInput
from livingportrait_wire.layout import interocular_distance


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """torch hub's cache pointed at an empty folder, as on a fresh offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def one_face_weights(tmp_path_factory):
    """Checkpoints with the real architectures, written as face-alignment's file names: FAN with
    seeded random weights, and S3FD set to report exactly one face (its coarsest anchor) so the
    whole path runs: face finder -> crop -> FAN -> heatmap peaks -> points."""
    folder = tmp_path_factory.mktemp("fan-weights")
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), folder / LANDMARK_FILE)
    finder = s3fd()
    with torch.no_grad():
        for name, module in finder.named_children():
            if name.endswith("mbox_conf") or name.endswith("mbox_loc"):
                module.weight.zero_()
                module.bias.zero_()
        finder.conv3_3_norm_mbox_conf.bias.copy_(torch.tensor([10.0, 10.0, 10.0, -10.0]))
        for name in ("conv4_3_norm", "conv5_3_norm", "fc7", "conv6_2"):
            getattr(finder, f"{name}_mbox_conf").bias.copy_(torch.tensor([10.0, -10.0]))
        finder.conv7_2_mbox_conf.bias.copy_(torch.tensor([-10.0, 10.0]))  # "a face" at stride 128
    torch.save(finder.state_dict(), folder / FACE_FINDER_FILE)
    return folder


def test_missing_weights_name_the_files_and_where_to_put_them(empty_hub):
    with pytest.raises(BadInput) as err:
        get_detector("fan")
    message = err.value.message
    assert LANDMARK_FILE in message and FACE_FINDER_FILE in message
    assert f"Put the file(s) in {empty_hub}" in message
    assert "--fan-weights DIR" in message and "--fan-download" in message
    for url in WEIGHT_URLS.values():
        assert url in message
    assert not empty_hub.exists() or not any(empty_hub.iterdir())  # nothing was downloaded


def test_only_the_missing_file_is_named(empty_hub, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / LANDMARK_FILE).write_bytes(b"x")
    with pytest.raises(BadInput, match=rf"weights missing: {FACE_FINDER_FILE} \(searched {folder} or"):
        get_detector("fan", weights_dir=folder)


def test_a_weights_folder_that_does_not_exist(empty_hub, tmp_path):
    with pytest.raises(BadInput, match=r"--fan-weights .*nowhere: no such folder"):
        get_detector("fan", weights_dir=tmp_path / "nowhere")


def test_corrupt_weights_are_reported_not_crashed_on(empty_hub, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in WEIGHT_URLS:
        (folder / name).write_bytes(b"this is not a checkpoint")
    with pytest.raises(BadInput, match=r"could not be loaded .*download them again from https://"):
        get_detector("fan", weights_dir=folder)


def test_weights_in_the_hub_cache_are_found(empty_hub, one_face_weights):
    empty_hub.mkdir(parents=True)
    for name in WEIGHT_URLS:
        (empty_hub / name).symlink_to(one_face_weights / name)
    assert find_weights(None) == {name: empty_hub / name for name in WEIGHT_URLS}


def test_weights_folder_runs_the_whole_fan_path(empty_hub, one_face_weights):
    # face-alignment is handed the folder's files; nothing is copied into torch hub's cache
    detector = get_detector("fan", weights_dir=one_face_weights, device="cpu", flip_input=False)
    image = np.ascontiguousarray(data.astronaut()[::4, ::4])  # 128 px: S3FD's stride-128 anchor is one cell
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    # one of the coarsest anchors: 512 px square, as S3FD decodes it with zero offsets
    x0, y0, x1, y1 = face.box
    assert (x1 - x0, y1 - y0) == pytest.approx((512.0, 512.0))
    assert face.points.shape == (68, 2) and face.points.dtype == np.float32
    assert np.all(np.isfinite(face.points))
    assert np.all((face.confidence >= 0) & (face.confidence <= 1))
    assert torch.hub.get_dir() == str(empty_hub.parent)  # torch hub's folder was put back
    assert not empty_hub.exists() or not any(empty_hub.iterdir())


def test_fan_on_the_astronaut_with_the_real_weights_or_says_what_is_missing():
    """With face-alignment's real weights in the hub cache, fan agrees with the offline detector on the
    astronaut; without them (this machine is offline) it says exactly which files are missing."""
    try:
        find_weights(None)
    except BadInput as err:
        assert LANDMARK_FILE in err.message or FACE_FINDER_FILE in err.message
        return
    fan = get_detector("fan").detect(data.astronaut())[0].points
    reference = get_detector("mediapipe").detect(data.astronaut())[0].points
    error = np.linalg.norm(fan - reference, axis=1) / interocular_distance(reference)
    assert np.median(error[17:]) < 0.08
