"""Previews of an EXR sequence: a contact-sheet PNG and an MP4, both sRGB for eyes, not pipelines."""
from __future__ import annotations

import math

import numpy as np

from .colorspace import linear_to_srgb8


def read_exr(path: str) -> dict[str, np.ndarray]:
    """All channels of an EXR file as float32 arrays (H, W), by channel name."""
    import OpenEXR

    with OpenEXR.File(path, separate_channels=True) as f:
        # Copy inside the block: the pixel buffers belong to the open file.
        return {name: ch.pixels.astype(np.float32) for name, ch in f.channels().items()}


def exr_rgb(path: str) -> np.ndarray:
    ch = read_exr(path)
    return np.stack([ch["R"], ch["G"], ch["B"]], axis=2)


def moving_region(paths: list[str], margin: float = 0.25) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the box where any frame's matte is non-zero, grown by ``margin``."""
    union = None
    for p in paths:
        matte = read_exr(p)["matte.Y"] > 0
        union = matte if union is None else union | matte
    if not union.any():
        return 0, union.shape[0], 0, union.shape[1]
    ys, xs = np.nonzero(union)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    gy, gx = int((y1 - y0) * margin), int((x1 - x0) * margin)
    return max(y0 - gy, 0), min(y1 + gy, union.shape[0]), max(x0 - gx, 0), min(x1 + gx, union.shape[1])


def contact_sheet(paths: list[str], out_png: str, columns: int = 6, thumb_width: int = 256,
                  labels: list[str] | None = None, crop: tuple[int, int, int, int] | None = None) -> None:
    """A grid of frames (every frame if few, else evenly spaced) written as an sRGB PNG.

    ``crop`` (y0, y1, x0, x1) shows only that part of each frame (e.g. ``moving_region(paths)``).
    """
    import cv2

    from livingportrait_wire.atomic_write import write_bytes_atomic

    count = min(len(paths), columns * 4)
    picks = np.linspace(0, len(paths) - 1, count).round().astype(int)
    y0, y1, x0, x1 = crop or (0, None, 0, None)
    tiles = []
    for i in picks:
        rgb = linear_to_srgb8(exr_rgb(paths[i])[y0:y1, x0:x1])
        h = int(round(rgb.shape[0] * thumb_width / rgb.shape[1]))
        tile = cv2.resize(rgb, (thumb_width, h), interpolation=cv2.INTER_AREA)
        if labels:
            cv2.putText(tile, labels[i], (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    rows = math.ceil(len(tiles) / columns)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (rows * columns - len(tiles))
    sheet = np.concatenate([np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1) for r in range(rows)])
    ok, png = cv2.imencode(".png", sheet[:, :, ::-1])
    write_bytes_atomic(out_png, png.tobytes())


def movie(paths: list[str], out_mp4: str, fps: float = 24.0) -> None:
    """An MP4 (mp4v) of the sequence in sRGB, written under a temp name then renamed."""
    import os

    import cv2

    first = linear_to_srgb8(exr_rgb(paths[0]))
    h, w = first.shape[:2]
    tmp = out_mp4 + ".part.mp4"
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w - w % 2, h - h % 2))
    if not writer.isOpened():
        raise RuntimeError(f"{out_mp4}: OpenCV cannot write MP4 here")
    try:
        for p in paths:
            writer.write(linear_to_srgb8(exr_rgb(p))[: h - h % 2, : w - w % 2, ::-1])
    finally:
        writer.release()
    os.replace(tmp, out_mp4)
