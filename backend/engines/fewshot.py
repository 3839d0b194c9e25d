"""The neural engine: the paper's few-shot talking-head model behind the engine interface.

prepare(): load the checkpoint (safetensors + config), crop each portrait shot to the model's
resolution, embed the T shots and (optionally) fine-tune on them — or take that personalisation from
the on-disk cache — then fold the generator for inference (spectral norm, and pooling/upsampling into
the convs) in channels_last layout, which oneDNN and cuDNN both run fastest.
render()/render_batch(): per frame, crop around the frame's landmarks, draw the landmark raster,
generate (batched; inference mode; bf16/fp16 autocast and optional torch.compile on GPUs) and paste
the crop back into the full-resolution portrait under a soft matte, in linear light.
This module imports torch: the registry imports it only when a fewshot engine is created.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch

from livingportrait_wire.errors import BadInput
from livingportrait_wire.render_settings import RenderSettings

from ..colorspace import srgb_to_linear
from . import FramePatch
from ..model.checkpoint import load_model
from ..model.personalized import PersonalizedGenerator, output_images
from ..model_input import apply_affine, crop_affine, raster_for, shot_input
from ..training.finetune import FineTuneOptions, personalize
from . import fewshot_cache
from .face_crop import PasteBack, crop_face
from .fewshot_settings import file_digest, resolve_options

ProgressFn = Callable[[str, int, int], None]


def pick_device(name: str) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` -> a torch device; BadInput when CUDA is asked for but absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("settings.device: cuda was asked for but this backend has no usable CUDA GPU; "
                       "use auto or cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def pick_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None for plain fp32."""
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class FewShotEngine:
    name = "fewshot"

    def prepare(self, portraits: list, points: np.ndarray, settings: RenderSettings,
                on_progress: ProgressFn | None = None) -> None:
        """Personalise the model to ``portraits`` (the first ``shots`` of them; portraits[0] is animated,
        ``points`` its 68 landmarks in pixels). Reports stages "load", "shots", "embed", "finetune"
        (per step) or "cached"; each report may raise Cancelled."""
        report = on_progress or (lambda stage, done, total: None)
        opts = resolve_options(settings, len(portraits))
        self.opts = opts
        self.device = pick_device(opts.device)
        self.dtype = pick_dtype(opts.precision, self.device)
        report("load", 0, 1)
        cfg, nets = load_model(opts.checkpoint, self.device)
        self.size = size = cfg.resolution
        report("load", 1, 1)

        shot_points = [np.asarray(points, np.float32)]
        for i in range(1, opts.shots):
            report("shots", i, opts.shots)
            if i - 1 < len(opts.shot_landmarks):
                shot_points.append(np.asarray(opts.shot_landmarks[i - 1], np.float32))
            else:
                from ..detectors import detect_portrait_landmarks
                shot_points.append(detect_portrait_landmarks(portraits[i].srgb8, portraits[i].source,
                                                             settings.detector).points.astype(np.float32))
        shots = np.empty((opts.shots, 6, size, size), np.float32)
        for i, p in enumerate(shot_points):
            affine = crop_affine(p, size)
            shots[i] = shot_input(crop_face(portraits[i].linear, affine, size), apply_affine(affine, p), size)
        self.shots = shots

        tune = FineTuneOptions(steps=opts.finetune_steps, batch=opts.finetune_batch,
                               vgg19=opts.vgg19, vggface=opts.vggface)
        extra = {"vgg19": file_digest(opts.vgg19) if opts.vgg19 else None,
                 "vggface": file_digest(opts.vggface) if opts.vggface else None}
        key = fewshot_cache.cache_key(file_digest(opts.checkpoint), [p.digest for p in portraits[:opts.shots]],
                                           shot_points, {**tune.key(), **extra})
        root = getattr(self, "cache_dir", None)  # a farm job's prepare cache, else the user's cache
        personal = fewshot_cache.load(key, root)
        self.cache_hit = personal is not None
        if personal is None:
            report("embed", 0, 1)
            personal = personalize(cfg, nets, shots, tune, self.device, report)
            fewshot_cache.save(key, personal, root)
        else:
            report("cached", 1, 1)
        self.personal = personal
        model = PersonalizedGenerator.build(cfg.generator, nets["generator"], personal)
        del nets  # the embedder and discriminator are not needed to render
        model = model.to(memory_format=torch.channels_last)
        self.model = torch.compile(model) if opts.compile else model
        self.batch = opts.batch or (8 if self.device.type == "cuda" else 1)
        self.paste = PasteBack(portraits[0].linear, points, size)

    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def generate(self, rasters: np.ndarray) -> np.ndarray:
        """rasters float32 (B, 3, S, S) in [-1, 1] -> generated crops float32 (B, S, S, 3) sRGB in [0, 1]."""
        x = torch.from_numpy(rasters).to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            y = self.model(x)
        return output_images(y)

    def render(self, targets: np.ndarray) -> FramePatch:
        """One frame: ``targets`` float32 (68, 2) portrait pixels -> the changed region (scene-linear)."""
        return self.render_batch([targets])[0]

    def render_batch(self, targets: list) -> list[FramePatch]:
        """Several frames, generated ``batch`` at a time -> one FramePatch each, in order."""
        out: list[FramePatch] = []
        s = self.size
        for lo in range(0, len(targets), self.batch):
            chunk = [np.asarray(t, np.float64) for t in targets[lo:lo + self.batch]]
            affines = [crop_affine(t, s) for t in chunk]
            rasters = np.stack([raster_for(apply_affine(a, t), s) for a, t in zip(affines, chunk)])
            crops = self.generate(rasters)
            for crop, a, t in zip(crops, affines, chunk):
                out.append(self.paste.paste(srgb_to_linear(crop), a, t))
        return out
