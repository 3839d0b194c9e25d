"""Decoding portrait images into the two forms the pipeline needs.

A ``Portrait`` holds ``linear`` float32 (H, W, 3) scene-linear Rec.709 (what engines warp and EXR
stores) and ``srgb8`` uint8 (H, W, 3) sRGB (what landmark detectors see), both top-left origin.
8-bit and 16-bit integer files are taken as sRGB-encoded; float files (EXR, HDR) as already linear.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from livingportrait_wire.errors import BadInput
from livingportrait_wire.protocol import ErrorCode, Limits

from .colorspace import SRGB8_TO_LINEAR, linear_to_srgb8, srgb_to_linear
from .exr import EXR_MAGIC


@dataclass
class Portrait:
    linear: np.ndarray
    srgb8: np.ndarray
    source: str
    digest: str  # sha256 of the file bytes, short: names the portrait in EXR metadata and caches



def decode_portrait(data: bytes, source: str, limits: Limits = Limits()) -> Portrait:
    """Decode encoded image bytes (PNG, JPEG, TIFF, EXR, ...). Raises BadInput naming ``source``."""
    import cv2

    if not data:
        raise BadInput(f"{source}: the file is empty; choose an image file (PNG, JPEG, TIFF, EXR)")
    buf = np.frombuffer(data, dtype=np.uint8)
    is_exr = data[:4] == EXR_MAGIC
    # OpenCV's EXR reader is off by default; OpenEXR reads those (as RGB), OpenCV the rest (as BGR).
    try:
        img = _decode_exr(data, source) if is_exr else cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        # OpenCV refuses, before allocating, a header that declares more pixels than it allows.
        raise BadInput(f"{source}: the image declares more than {limits.max_image_pixels} pixels, or its header "
                       "is damaged; downscale it or choose another file", ErrorCode.TOO_LARGE) from None
    if img is None:
        raise BadInput(f"{source}: not an image OpenCV can read; use PNG, JPEG, TIFF or EXR")
    h, w = img.shape[:2]
    if h * w > limits.max_image_pixels:
        raise BadInput(f"{source}: {w}x{h} pixels exceeds the limit of {limits.max_image_pixels} pixels; "
                       "downscale it first", ErrorCode.TOO_LARGE)
    if h < 16 or w < 16:
        raise BadInput(f"{source}: {w}x{h} pixels is too small to hold a face")
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 1:
        img = np.repeat(img, 3, axis=2)
    elif channels == 4:
        img = img[:, :, :3]
    elif channels != 3:
        raise BadInput(f"{source}: {channels} channels are not supported; use a grey, RGB or RGBA image")
    if not is_exr:
        img = img[:, :, ::-1]
    img = np.ascontiguousarray(img)
    if img.dtype == np.uint8:
        return Portrait(SRGB8_TO_LINEAR[img], img, source, _digest(data))
    if img.dtype == np.uint16:
        linear = srgb_to_linear(img.astype(np.float32) / 65535.0)
    elif img.dtype in (np.float16, np.float32, np.float64):
        linear = img.astype(np.float32)
        if not np.all(np.isfinite(linear)):
            raise BadInput(f"{source}: the image holds NaN or infinite pixels")
    else:
        raise BadInput(f"{source}: pixel type {img.dtype} is not supported; use 8/16-bit or float images")
    return Portrait(linear, linear_to_srgb8(linear), source, _digest(data))


def _decode_exr(data: bytes, source: str) -> np.ndarray:
    import tempfile

    from .exr import read_exr

    with tempfile.NamedTemporaryFile(suffix=".exr") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            ch = read_exr(tmp.name)
        except Exception as exc:  # OpenEXR raises plain exceptions for damaged files
            raise BadInput(f"{source}: a damaged EXR file ({exc})") from None
    if all(n in ch for n in ("R", "G", "B")):
        return np.stack([ch["R"], ch["G"], ch["B"]], axis=2)
    if "Y" in ch:
        return ch["Y"]
    raise BadInput(f"{source}: the EXR has no R, G, B or Y channels")


def read_portrait_file(path: str, limits: Limits = Limits()) -> tuple[bytes, Portrait]:
    """Read a portrait from disk: (file bytes, decoded Portrait). BadInput when unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder; pass an image file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    return data, decode_portrait(data, os.path.basename(path), limits)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
