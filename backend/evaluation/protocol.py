"""The paper's evaluation protocol: self-reenactment on held-out videos.

Per test video: a seeded permutation of its frames gives the T shots (the first T) and the held-out
frames (the last ``held_out``, the same for every T, so rows compare like with like). Each method
renders every held-out frame from that frame's own landmarks, and the result is compared to the real
frame. Methods: the ``fewshot`` model embedded on the T shots (feed-forward) or also fine-tuned on them,
and the ``warp`` engine, which warps the first shot (it cannot use more than one).
Frames are the model's crops: uint8 RGB (S, S, 3) and landmarks (68, 2) in crop pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .metrics import frame_metrics

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Method:
    engine: str  # "fewshot" | "warp"
    shots: int
    finetune_steps: int = 0

    @property
    def label(self) -> str:
        if self.engine == "warp":
            return "warp"
        return "fewshot, fine-tuned" if self.finetune_steps else "fewshot, feed-forward"


@dataclass
class Row:
    method: Method
    videos: int
    frames: int
    ssim: float
    psnr: float
    l1: float
    fid: float | None = None
    csim: float | None = None

    def as_dict(self) -> dict:
        return {"engine": self.method.engine, "shots": self.method.shots, "finetuned": self.method.finetune_steps > 0,
                "finetune_steps": self.method.finetune_steps, "videos": self.videos, "frames": self.frames,
                "ssim": self.ssim, "psnr": self.psnr, "l1": self.l1, "fid": self.fid, "csim": self.csim}


@dataclass
class Evaluation:
    rows: list[Row]
    shots: dict[int, np.ndarray] = field(default_factory=dict)  # video -> uint8 (T_max, S, S, 3)
    real: dict[int, np.ndarray] = field(default_factory=dict)  # video -> float32 (N, S, S, 3) in [0, 1]
    fake: dict[tuple[Method, int], np.ndarray] = field(default_factory=dict)  # (method, video) -> like real


def split_video(frame_count: int, max_shots: int, held_out: int, seed: int, video: int) -> tuple[list[int], list[int]]:
    """(shot frame indices, held-out frame indices), disjoint, a pure function of the arguments."""
    if frame_count < max_shots + held_out:
        from livingportrait_wire.errors import BadInput
        raise BadInput(f"video {video} has {frame_count} frames; the protocol needs {max_shots} shots plus "
                       f"{held_out} held-out frames; lower --shots/--frames or use longer videos")
    order = np.random.default_rng([seed, video]).permutation(frame_count)
    return [int(i) for i in order[:max_shots]], [int(i) for i in order[-held_out:]]


class FewShotModel:
    """A checkpoint ready for the protocol: ``reenact`` personalises it on shots and renders targets."""

    def __init__(self, checkpoint: str, device: str = "cpu"):
        from livingportrait_backend.model.checkpoint import load_model

        self.device = device
        self.cfg, self.nets = load_model(checkpoint, device)
        self.resolution = self.cfg.resolution

    def reenact(self, images: np.ndarray, points: np.ndarray, targets: np.ndarray, finetune,
                on_progress: ProgressFn | None = None) -> np.ndarray:
        """images uint8 (T, S, S, 3) with landmarks (T, 68, 2); targets (N, 68, 2) crop pixels;
        ``finetune`` a FineTuneOptions -> generated frames float32 (N, S, S, 3) sRGB in [0, 1]."""
        import torch

        from livingportrait_backend.model_input import raster_for, shot_input
        from livingportrait_backend.model.personalized import PersonalizedGenerator, output_images
        from livingportrait_backend.training.finetune import personalize

        s = self.resolution
        shots = np.stack([shot_input(im, p, s) for im, p in zip(images, points)])
        personal = personalize(self.cfg, self.nets, shots, finetune, self.device, on_progress)
        gen = PersonalizedGenerator.build(self.cfg.generator, self.nets["generator"], personal)
        rasters = torch.from_numpy(np.stack([raster_for(t, s) for t in targets])).to(self.device)
        with torch.inference_mode():
            out = torch.cat([gen(rasters[i:i + 8]) for i in range(0, len(rasters), 8)])
        return output_images(out)


def warp_reenact(image: np.ndarray, points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The warp engine on one shot: uint8 (S, S, 3), its landmarks, targets (N, 68, 2) ->
    float32 (N, S, S, 3) sRGB in [0, 1] (warped in linear light, as the engine does)."""
    from livingportrait_backend.colorspace import SRGB8_TO_LINEAR, linear_to_srgb
    from livingportrait_backend.engines.warp import WarpEngine
    from livingportrait_backend.images import Portrait

    portrait = Portrait(SRGB8_TO_LINEAR[image], image, "shot", "evaluation")
    engine = WarpEngine()
    engine.prepare([portrait], points)
    out = []
    for t in targets:
        patch = engine.render(t)
        frame = portrait.linear.copy()
        h, w = patch.matte.shape
        frame[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w] = patch.rgb
        out.append(linear_to_srgb(frame))
    return np.stack(out)


def evaluate(dataset, videos: list[int], methods: list[Method], model: FewShotModel | None, held_out: int,
             seed: int = 0, finetune_batch: int = 4, fid=None, csim=None,
             on_progress: ProgressFn | None = None) -> Evaluation:
    """Run every method on every video of ``dataset`` (``frame(video, i)`` -> (uint8, landmarks)).
    ``fid``/``csim``: callables (real, fake) -> float, or None to leave those columns empty."""
    from livingportrait_backend.training.finetune import FineTuneOptions

    report = on_progress or (lambda stage, done, total: None)
    max_shots = max(m.shots for m in methods)
    result = Evaluation(rows=[])
    per_method: dict[Method, list[dict]] = {m: [] for m in methods}
    total = len(videos) * len(methods)
    for vi, video in enumerate(videos):
        shot_ids, target_ids = split_video(dataset.frame_count(video), max_shots, held_out, seed, video)
        shots = [dataset.frame(video, i) for i in shot_ids]
        targets = [dataset.frame(video, i) for i in target_ids]
        images = np.stack([im for im, _ in shots])
        points = np.stack([p for _, p in shots])
        target_points = np.stack([p for _, p in targets])
        real = np.stack([im for im, _ in targets]).astype(np.float32) / 255.0
        result.shots[video], result.real[video] = images, real
        for mi, m in enumerate(methods):
            report("evaluate", vi * len(methods) + mi, total)
            if m.engine == "warp":
                fake = warp_reenact(images[0], points[0], target_points)
            else:
                opts = FineTuneOptions(steps=m.finetune_steps, batch=finetune_batch, seed=seed)
                fake = model.reenact(images[:m.shots], points[:m.shots], target_points, opts)
            result.fake[(m, video)] = fake
            per_method[m] += [frame_metrics(r, f) for r, f in zip(real, fake)]
    report("evaluate", total, total)
    for m in methods:
        scores = per_method[m]
        real = np.concatenate([result.real[v] for v in videos])
        fake = np.concatenate([result.fake[(m, v)] for v in videos])
        result.rows.append(Row(m, len(videos), len(scores),
                               *(float(np.mean([s[k] for s in scores])) for k in ("ssim", "psnr", "l1")),
                               fid=fid(real, fake) if fid else None, csim=csim(real, fake) if csim else None))
    return result
