"""Model checkpoints: safetensors + JSON, rebuilt from the config alone; pickles and corrupt files refused."""
import os
import pickle

import pytest
import torch

from livingportrait_backend.model.checkpoint import MODEL_FILE, load_model, save_model
from livingportrait_backend.model.config import preset
from livingportrait_backend.model.networks import build_networks
from livingportrait_wire.errors import BadInput


def _saved(tmp_path):
    torch.manual_seed(3)
    cfg = preset("tiny").with_num_videos(7)
    nets = build_networks(cfg)
    save_model(tmp_path / "ckpt", cfg, nets)
    return cfg, nets


def test_round_trip_rebuilds_identical_networks(tmp_path):
    cfg, nets = _saved(tmp_path)
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["config.json", MODEL_FILE]
    cfg2, nets2 = load_model(tmp_path / "ckpt")
    assert cfg2 == cfg
    for name in nets:
        a, b = nets[name].state_dict(), nets2[name].state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    x = torch.rand(1, 2, 6, 32, 32)
    nets["embedder"].eval()
    torch.testing.assert_close(nets["embedder"](x), nets2["embedder"](x), rtol=0, atol=0)


def test_a_pickle_checkpoint_is_refused(tmp_path):
    path = tmp_path / MODEL_FILE
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(BadInput, match="pickle"):
        load_model(path)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "ckpt" / MODEL_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="corrupt or truncated"):
        load_model(tmp_path / "ckpt")


def test_a_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(BadInput, match="missing"):
        load_model(tmp_path / "nothing_here.safetensors")
