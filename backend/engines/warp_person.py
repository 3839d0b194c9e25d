"""The person layer of the warp engine: who moves and what stays.

Computed once per job in ``prepare`` (it depends only on the portrait): mediapipe's bundled selfie
segmentation gives a soft matte of the person; the background behind the person is filled from the
background around it (OpenCV's Telea inpainting, at reduced size) into a clean plate. Per frame the
engine warps the person and its matte and lays them over the plate, so the background never bends and
what a moving head uncovers shows the plate.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..colorspace import srgb_to_linear

# The matte is used as hard as this: pixels the segmenter is less sure of than LOW are background,
# above HIGH person; the band between is the soft edge (hair wisps keep their blend).
LOW, HIGH = 0.3, 0.7
FRINGE = 0.02  # the matte's value in the fringe just outside the segmenter's edge


def person_layers(portrait, roi: tuple[slice, slice], cache_dir: str | None = None):
    """(alpha, premultiplied person, clean plate, from_cache) inside ``roi`` of ``portrait`` (an
    ``images.Portrait``); alpha, person and plate are None when the segmenter finds nobody. With a job's
    ``cache_dir`` (farm chunks) they are read from it when an earlier chunk made them, else made and
    stored: a chunk then never starts mediapipe."""
    from .. import prepare_cache

    key = prepare_cache.entry_key("warp-person", portrait.digest, [(s.start, s.stop) for s in roi], LOW, HIGH, FRINGE)
    stored = prepare_cache.load_arrays(cache_dir, "warp", key) if cache_dir else None
    if stored is not None:
        if not stored:
            return None, None, None, True
        return stored["alpha"], stored["person"], stored["plate"], True
    matte = person_matte(portrait.srgb8)
    arrays = {}
    if matte is not None:
        alpha = np.ascontiguousarray(matte[roi])
        person, plate = layers(portrait.linear[roi], portrait.srgb8[roi], alpha)
        arrays = {"alpha": alpha, "person": person, "plate": plate}
    if cache_dir:
        prepare_cache.save_arrays(cache_dir, "warp", key, arrays)
    return arrays.get("alpha"), arrays.get("person"), arrays.get("plate"), False


def person_matte(srgb8: np.ndarray) -> np.ndarray | None:
    """Soft person matte float32 (h, w) in 0..1, or None when the segmenter finds nobody."""
    from .selfie_segmentation import selfie_probability

    mask = selfie_probability(srgb8)
    if float(mask.max()) < 0.5:
        return None
    a = np.clip((mask - LOW) / (HIGH - LOW), 0.0, 1.0)
    a = (a * a * (3 - 2 * a)).astype(np.float32)
    # The segmenter's edge is soft and a little tight (hair wisps fall outside it): a faint fringe
    # around the matte makes them part of the person, so they move with the head and the clean plate
    # behind is filled there too, instead of a wisp staying behind as a ghost outline.
    h, w = a.shape
    k = max(3, int(round(0.012 * max(h, w)))) | 1
    fringe = cv2.dilate((a > 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return np.maximum(a, FRINGE * fringe).astype(np.float32)


def layers(linear: np.ndarray, srgb8: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(premultiplied person, clean plate), float32 (h, w, 3) linear each, such that
    ``person + plate * (1 - alpha)`` is the portrait exactly: the engine warps the person and its
    alpha and composites them over the plate the same way, so a frame at rest is the portrait and a
    moved head leaves no ghost of its old edge behind."""
    plate = clean_plate(linear, srgb8, alpha)
    return (linear - plate * (1.0 - alpha)[..., None]).astype(np.float32), plate


def clean_plate(linear: np.ndarray, srgb8: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The background with the person removed: the portrait where the matte is 0, filled from the
    surroundings wherever there is any person. float32 (h, w, 3) linear."""
    h, w = alpha.shape
    hole = (alpha > 0.0).astype(np.uint8)
    if not hole.any():
        return linear.copy()
    # Inpaint at a reduced size (the plate only shows in what a head move uncovers, a few pixels
    # wide, and Telea's cost grows with the hole's area), then upsample.
    f = min(1.0, 256.0 / max(h, w))
    small = cv2.resize(srgb8[:, :, :3], (max(int(w * f), 8), max(int(h * f), 8)), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    small_hole = cv2.dilate(small_hole, np.ones((5, 5), np.uint8))
    filled = cv2.inpaint(np.ascontiguousarray(small[:, :, ::-1]), small_hole, 5, cv2.INPAINT_TELEA)[:, :, ::-1]
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    fill_linear = srgb_to_linear(filled.astype(np.float32) / 255.0).astype(np.float32)
    return np.where(hole[..., None] > 0, fill_linear, linear).astype(np.float32)


def inpaint_linear(linear: np.ndarray, srgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``linear`` with the pixels of ``hole`` (bool (h, w)) filled from around them (Telea), float32."""
    filled = cv2.inpaint(np.ascontiguousarray(srgb8[:, :, 2::-1]), hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    fill_linear = srgb_to_linear(filled[:, :, ::-1].astype(np.float32) / 255.0)
    return np.where(hole[..., None], fill_linear, linear).astype(np.float32)
