"""The bi-layer model wired for inference: the five networks, the once-per-portrait stage and the
per-frame stage. (Networks are defined in their own files; this module only connects them.)

Per portrait (``identity``): embed the masked source and its landmark drawing, generate the texture,
set the inference generator's identity-owned parameters, render the source pose and refine the texture
with the enhancer. Per frame (``frames``): keypoints -> pose tensor -> UVs, low-frequency image and
segmentation -> image = low-frequency + texture warped to the UVs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import BilayerConfig
from .identity_embedder import IdentityEmbedder
from .inference_generator import InferenceGenerator
from .keypoints_embedder import KeypointsEmbedder
from .texture_enhancer import TextureEnhancer
from .texture_generator import TextureGenerator
from .texture_warp import warp_texture

NETWORKS = ("identity_embedder", "texture_generator", "keypoints_embedder", "inference_generator",
            "texture_enhancer")


@dataclass
class Identity:
    """What one portrait contributes, computed once: the embedding maps (the inference generator's
    identity-owned parameters come from them) and the (enhanced) texture (1, 3, S, S)."""
    embeds: list[torch.Tensor]
    texture: torch.Tensor


class BilayerModel(nn.Module):
    def __init__(self, cfg: BilayerConfig):
        super().__init__()
        self.cfg = cfg
        self.identity_embedder = IdentityEmbedder(cfg.identity_embedder)
        self.texture_generator = TextureGenerator(cfg.texture_generator)
        self.keypoints_embedder = KeypointsEmbedder(cfg.keypoints_embedder)
        self.inference_generator = InferenceGenerator(cfg.inference_generator)
        self.texture_enhancer = TextureEnhancer(cfg.texture_enhancer) if cfg.texture_enhancer else None

    def networks(self) -> dict[str, nn.Module]:
        return {n: getattr(self, n) for n in NETWORKS if getattr(self, n) is not None}

    @torch.no_grad()
    def identity(self, image: torch.Tensor, segmentation: torch.Tensor | None, stickman: torch.Tensor,
                 keypoints: torch.Tensor) -> Identity:
        """The source portrait's crop ``image`` (1, 3, S, S) in [-1, 1], its foreground ``segmentation``
        (1, 1, S, S) in [0, 1] (None: no masking), its landmark drawing ``stickman`` (1, 3, S, S) in
        [-1, 1] and its ``keypoints`` (1, 136) -> the Identity (leaves the inference generator set to it)."""
        x = image
        if self.cfg.mask_source and segmentation is not None:
            x = x * segmentation - (1 - segmentation)
        if self.cfg.identity_embedder.stickman:
            x = torch.cat([x, stickman], 1)
        embeds = self.identity_embedder(x)
        texture = self.texture_generator(embeds)
        self.inference_generator.personalise(embeds)
        if self.texture_enhancer is not None:
            uv, lf, seg = self.inference_generator(self.keypoints_embedder(keypoints))
            texture = self.texture_enhancer(texture, image, uv, lf, None if seg is None else torch.sigmoid(seg))
        return Identity(embeds, texture)

    def frame_path(self, texture: torch.Tensor, dtype: torch.dtype = torch.float32) -> nn.Module:
        """The per-frame path folded for the identity the inference generator is set to (see
        frame_path.py), in ``dtype``: a module keypoints (N, 136) -> (images, foreground)."""
        from .frame_path import FramePath

        return FramePath(self.keypoints_embedder, self.inference_generator, texture).to(dtype).eval()

    def frames(self, keypoints: torch.Tensor, texture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``keypoints`` (N, 136) normalised landmarks -> (images (N, 3, S, S) in about [-2, 2] (the sum of
        two [-1, 1] layers; clamp for display), foreground probability (N, 1, S, S) or None)."""
        uv, lf, seg = self.inference_generator(self.keypoints_embedder(keypoints))
        return lf + warp_texture(texture.to(lf.dtype), uv), (torch.sigmoid(seg) if seg is not None else None)
