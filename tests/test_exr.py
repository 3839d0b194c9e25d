"""EXR frames: standard files OpenEXR reads back, linear values, metadata, atomic writes."""
import os

import numpy as np
import OpenEXR
import pytest

from livingportrait_backend.colorspace import SRGB8_TO_LINEAR
from livingportrait_backend.engines import FramePatch
from livingportrait_backend.exr import ExrFrameEncoder, read_attributes
from livingportrait_backend.images import decode_portrait
from livingportrait_wire.atomic_write import atomic_writer
from livingportrait_wire.errors import BadInput


def read(path):
    with OpenEXR.File(str(path), separate_channels=True) as f:
        return dict(f.header()), {k: v.pixels.copy() for k, v in f.channels().items()}


@pytest.fixture
def base():
    yy, xx = np.mgrid[0:70, 0:90]
    return np.stack([xx / 90, yy / 70, (xx + yy) / 160], -1).astype(np.float32)


def test_frames_are_half_rgba_plus_matte_with_metadata(tmp_path, base):
    enc = ExrFrameEncoder(base, {"livingportrait.engine": "warp"})
    patch = FramePatch(20, 30, np.full((33, 20, 3), 0.25, np.float32), np.full((33, 20), 0.5, np.float32))
    path = tmp_path / "a.0001.exr"
    path.write_bytes(enc.encode(patch, {"livingportrait.frame": 1}))
    header, ch = read(path)
    assert sorted(ch) == ["A", "B", "G", "R", "matte.Y"]
    assert all(c.dtype == np.float16 for c in ch.values())
    assert str(header["compression"]).endswith("ZIP_COMPRESSION")
    assert header["livingportrait.engine"] == "warp" and header["livingportrait.frame"] == 1
    expected_r = base[..., 0].astype(np.float16)
    expected_r[20:53, 30:50] = 0.25
    np.testing.assert_array_equal(ch["R"], expected_r)
    assert np.all(ch["A"] == 1.0)
    assert ch["matte.Y"][30, 40] == np.float16(0.5) and ch["matte.Y"][0, 0] == 0
    assert read_attributes(str(path))["livingportrait.frame"] == 1


def test_encoding_is_deterministic(base):
    enc = ExrFrameEncoder(base)
    patch = FramePatch(0, 0, base * 0.5, np.zeros(base.shape[:2], np.float32))
    assert enc.encode(patch) == ExrFrameEncoder(base).encode(patch)


def test_srgb_pixels_decode_to_linear(tmp_path):
    import cv2

    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :, 0] = 128  # red channel = sRGB code 128
    img[:, :, 1] = 255
    ok, png = cv2.imencode(".png", img[:, :, ::-1])
    p = decode_portrait(png.tobytes(), "test.png")
    # sRGB 128/255 = 0.50196 -> linear ((0.50196 + 0.055) / 1.055) ** 2.4 = 0.21586
    assert abs(float(p.linear[5, 5, 0]) - 0.21586) < 1e-4
    assert p.linear[5, 5, 1] == pytest.approx(1.0) and p.linear[5, 5, 2] == 0.0
    assert SRGB8_TO_LINEAR[10] == pytest.approx(10 / 255 / 12.92)
    # 16-bit images are sRGB-encoded too, with 65535 as white
    ok, png16 = cv2.imencode(".png", (img.astype(np.uint16) * 257)[:, :, ::-1])
    assert abs(float(decode_portrait(png16.tobytes(), "t16.png").linear[5, 5, 0]) - 0.21586) < 1e-4


def test_float_exr_portraits_are_taken_as_linear(tmp_path, base):
    path = tmp_path / "in.exr"
    path.write_bytes(ExrFrameEncoder(base * 3.0).encode(None))
    p = decode_portrait(path.read_bytes(), "in.exr")
    np.testing.assert_allclose(p.linear, (base * 3.0).astype(np.float16).astype(np.float32))


def test_a_file_that_is_not_an_image_is_refused_by_name():
    with pytest.raises(BadInput, match="notes.txt: not an image"):
        decode_portrait(b"hello, this is text", "notes.txt")


def test_truncated_files_are_not_complete(tmp_path, base):
    data = ExrFrameEncoder(base).encode(None, {"livingportrait.frame": 3})
    path = tmp_path / "t.exr"
    path.write_bytes(data[:-10])
    assert read_attributes(str(path)) is None
    path.write_bytes(data)
    assert read_attributes(str(path)) == {"livingportrait.frame": 3}


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "frame.exr"
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as f:
            f.write(b"half a frame")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    from livingportrait_wire.atomic_write import write_bytes_atomic

    write_bytes_atomic(tmp_path / "f.exr", b"data")
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "f.exr").stat().st_mode & 0o777 == 0o666 & ~umask
