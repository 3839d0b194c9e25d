"""Builds the three networks of a ModelConfig (the one place that wires configs to classes)."""
from __future__ import annotations

from .config import ModelConfig
from .discriminator import Discriminator
from .embedder import Embedder
from .generator import Generator

NETWORK_NAMES = ("embedder", "generator", "discriminator")


def build_networks(cfg: ModelConfig) -> dict:
    """{"embedder": Embedder, "generator": Generator, "discriminator": Discriminator}, freshly initialised
    from torch's current RNG state."""
    if cfg.generator.embed_dim != cfg.embedder.embed_dim or cfg.discriminator.embed_dim != cfg.embedder.embed_dim:
        raise ValueError("model config: embedder, generator and discriminator must share one embedding size")
    return {"embedder": Embedder(cfg.embedder), "generator": Generator(cfg.generator),
            "discriminator": Discriminator(cfg.discriminator)}
