"""The ``bilayer`` engine: the lab's one-shot bi-layer model (converted public weights) behind the engine
interface.

prepare(): load the converted folder; crop the portrait in the publisher's convention (crop_box of the
portrait's own landmarks); segment the crop (mediapipe's selfie segmentation, eroded as the publisher
eroded Graphonomy's); draw its landmarks; embed, generate and enhance the texture — or take that
Identity from the on-disk cache (the few-shot engine's cache mechanism, so farm chunks never redo it);
set and fold the inference generator for this identity.
render()/render_batch(): the frames' landmarks -> keypoints in the SAME crop for the whole performance
(the publisher re-centres the crop on every frame, which makes the head jitter; a steady crop keeps the
head's own motion and nothing else) -> inference generator + warped texture -> RGB and segmentation ->
pasted back into the full-resolution portrait in linear light with the segmentation (feathered at the
crop's border) as the soft matte. Batched; CPU or CUDA; fp16 on GPUs by default.
This module imports torch: the registry imports it only when a bilayer engine is created.
"""
from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
import torch

from livingportrait_wire.render_settings import RenderSettings

from ..colorspace import srgb_to_linear
from ..model.bilayer import WEIGHTS_FILE, Identity, load_converted
from ..model.bilayer import inputs as bi
from . import FramePatch, fewshot_cache
from .bilayer_mask import SEGMENTER, source_mask
from .bilayer_weights import resolve_folder
from .face_crop import border_feather
from .fewshot import pick_device
from .fewshot_settings import file_digest

ProgressFn = Callable[[str, int, int], None]
CACHE_KIND, CACHE_FORMAT = "bilayer", "livingportrait-bilayer-identity/1"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_precision(precision: str, device: torch.device) -> torch.dtype:
    """auto: fp16 on a GPU (the model was built for mobile GPUs), fp32 on the CPU."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return DTYPES[precision]


class BilayerEngine:
    name = "bilayer"

    def prepare(self, portraits: list, points: np.ndarray, settings: RenderSettings | None = None,
                on_progress: ProgressFn | None = None) -> None:
        """Make ``portraits[0]``'s Identity (``points`` its 68 landmarks, pixels). Reports "load",
        "identity" or "cached"; each report may raise Cancelled."""
        report = on_progress or (lambda stage, done, total: None)
        opts = (settings or RenderSettings()).bilayer
        folder = resolve_folder(opts.checkpoint)
        self.device = pick_device(opts.device)
        self.dtype = pick_precision(opts.precision, self.device)
        report("load", 0, 1)
        model = load_converted(folder, self.device)
        report("load", 1, 1)
        size = model.cfg.image_size
        portrait = portraits[0]
        self.box = box = bi.crop_box(points)  # steady: one crop for the whole performance
        image = bi.crop_image(portrait.srgb8, box, size)
        kp = bi.keypoints(points, box)
        key = fewshot_cache.cache_key(file_digest(f"{folder}/{WEIGHTS_FILE}"), [portrait.digest],
                                      [np.asarray(points, np.float32)], {"engine": "bilayer", "mask": SEGMENTER})
        root = getattr(self, "cache_dir", None)  # a farm job's prepare cache, else the user's cache
        entry = fewshot_cache.read_entry(key, CACHE_KIND, CACHE_FORMAT, root)
        self.cache_hit = entry is not None
        if entry is not None:
            tensors, _ = entry
            n = sum(1 for k in tensors if k.startswith("embed."))
            ident = Identity([tensors[f"embed.{i}"].to(self.device) for i in range(n)], tensors["texture"].to(self.device))
            self.identity_seconds = 0.0
            report("cached", 1, 1)
        else:
            report("identity", 0, 1)
            start = time.perf_counter()
            crop8 = np.round((image.transpose(1, 2, 0) + 1) * 127.5).clip(0, 255).astype(np.uint8)
            self.source_mask = mask = source_mask(crop8)
            stick = bi.stickman(kp, size, model.cfg.stickman_thickness)
            as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None].to(self.device)  # noqa: E731
            ident = model.identity(as_t(image), as_t(mask[None]), as_t(stick), as_t(kp))
            self.identity_seconds = time.perf_counter() - start
            tensors = {f"embed.{i}": e.float().cpu() for i, e in enumerate(ident.embeds)}
            tensors["texture"] = ident.texture.float().cpu()
            fewshot_cache.write_entry(key, CACHE_KIND, CACHE_FORMAT, tensors,
                                      {"mask": SEGMENTER, "seconds": round(self.identity_seconds, 3)}, root)
            report("identity", 1, 1)
        model.inference_generator.personalise(ident.embeds)
        self.frames_net = model.frame_path(ident.texture, self.dtype)
        del model
        self.size = size
        # On 2 CPU cores one frame at a time is fastest per frame (measured on an idle machine: batch 1
        # 40 ms, 8 51 ms: bigger batches spill the caches); a GPU wants frames together.
        self.batch = opts.batch or (8 if self.device.type == "cuda" else 1)
        self.portrait = portrait.linear
        self.border = border_feather(size)
        # Portrait pixel centres -> crop pixel centres (the crop is the box resized to size x size).
        k = size / box.side
        self.affine = np.array([[k, 0, (0.5 - box.left_top[0]) * k - 0.5],
                                [0, k, (0.5 - box.left_top[1]) * k - 0.5]], np.float64)
        h, w = self.portrait.shape[:2]
        x0, y0 = box.left_top.astype(int)
        self.region = (max(x0, 0), max(y0, 0), min(x0 + box.side, w), min(y0 + box.side, h))

    def generate(self, targets: list) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (68, 2) portrait pixels per frame -> (crops float32 (N, S, S, 3) sRGB in [0, 1],
        foreground float32 (N, S, S) in [0, 1]), in the steady crop."""
        kp = torch.from_numpy(bi.keypoints(np.stack(targets), self.box)).to(self.device)
        with torch.inference_mode():
            rgb, seg = self.frames_net(kp)
        rgb = ((rgb.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        return rgb, seg.float()[:, 0].cpu().numpy()

    def render(self, targets: np.ndarray) -> FramePatch:
        """One frame: ``targets`` float32 (68, 2) portrait pixels -> the changed region (scene-linear)."""
        return self.render_batch([targets])[0]

    def render_batch(self, targets: list) -> list[FramePatch]:
        out = []
        for lo in range(0, len(targets), self.batch):
            crops, segs = self.generate(targets[lo:lo + self.batch])
            out += [self.paste(c, s) for c, s in zip(crops, segs)]
        return out

    def paste(self, crop: np.ndarray, seg: np.ndarray) -> FramePatch:
        """A generated crop (S, S, 3) sRGB [0, 1] and its foreground (S, S) -> the FramePatch: the crop in
        linear light over the portrait, the matte = the foreground, feathered at the crop's border."""
        x0, y0, x1, y1 = self.region
        if x1 - x0 < 2 or y1 - y0 < 2:
            return FramePatch(0, 0, self.portrait[:1, :1].copy(), np.zeros((1, 1), np.float32))
        local = self.affine.copy()
        local[:, 2] += self.affine[:, :2] @ np.array([x0, y0], np.float64)
        dsize = (x1 - x0, y1 - y0)
        inverse = cv2.WARP_INVERSE_MAP
        rgb = np.maximum(cv2.warpAffine(srgb_to_linear(crop.astype(np.float32)), local, dsize,
                                        flags=cv2.INTER_CUBIC | inverse, borderMode=cv2.BORDER_REPLICATE), 0)
        matte = np.clip(cv2.warpAffine(seg * self.border, local, dsize, flags=cv2.INTER_LINEAR | inverse,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0), 0, 1)
        base = self.portrait[y0:y1, x0:x1]
        a = matte[..., None]
        return FramePatch(y0, x0, (base * (1 - a) + rgb * a).astype(np.float32), matte.astype(np.float32))
