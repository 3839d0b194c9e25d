"""Previews of an EXR sequence: a contact-sheet PNG and an MP4, both sRGB for eyes, not pipelines."""
from __future__ import annotations

import math

import numpy as np

from .colorspace import linear_to_srgb8
from .exr import read_exr


def write_previews(paths: list[str], sheet_png: str, movie_mp4: str, fps: float = 24.0,
                   labels: list[str] | None = None, columns: int = 6, thumb_width: int = 200,
                   margin: float = 0.25) -> None:
    """Read the sequence once and write both previews: an MP4 (mp4v) of the whole frames, and a contact
    sheet of up to ``columns`` x 4 evenly spaced frames showing only where anything moved (the union of
    the frames' mattes, grown by ``margin``). Both are written under temp names, then renamed."""
    import os

    import cv2

    from livingportrait_wire.atomic_write import write_bytes_atomic

    picks = set(np.linspace(0, len(paths) - 1, min(len(paths), columns * 4)).round().astype(int).tolist())
    kept: list[tuple[int, np.ndarray]] = []
    moved = None
    tmp = movie_mp4 + ".part.mp4"
    writer = None
    try:
        for i, path in enumerate(paths):
            ch = read_exr(path)
            rgb = linear_to_srgb8(np.stack([ch["R"], ch["G"], ch["B"]], axis=2))
            matte = ch["matte.Y"] > 0
            moved = matte if moved is None else moved | matte
            if writer is None:
                h, w = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"{movie_mp4}: OpenCV cannot write MP4 here")
            writer.write(np.ascontiguousarray(rgb[:h, :w, ::-1]))
            if i in picks:
                kept.append((i, rgb))
    finally:
        if writer is not None:
            writer.release()
    os.replace(tmp, movie_mp4)
    y0, y1, x0, x1 = _grown_box(moved, margin)
    tiles = []
    for i, rgb in kept:
        crop = rgb[y0:y1, x0:x1]
        th = int(round(crop.shape[0] * thumb_width / crop.shape[1]))
        tile = cv2.resize(crop, (thumb_width, th), interpolation=cv2.INTER_AREA)
        if labels:
            cv2.putText(tile, labels[i], (6, th - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    rows = math.ceil(len(tiles) / columns)
    tiles += [np.zeros_like(tiles[0])] * (rows * columns - len(tiles))
    sheet = np.concatenate([np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1) for r in range(rows)])
    ok, png = cv2.imencode(".png", sheet[:, :, ::-1])
    write_bytes_atomic(sheet_png, png.tobytes())


def _grown_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the box of ``mask``'s true pixels grown by ``margin``; all of it when none."""
    if not mask.any():
        return 0, mask.shape[0], 0, mask.shape[1]
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    gy, gx = int((y1 - y0) * margin), int((x1 - x0) * margin)
    return max(y0 - gy, 0), min(y1 + gy, mask.shape[0]), max(x0 - gx, 0), min(x1 + gx, mask.shape[1])
