"""The model's configuration: the three networks' configs, the loss weights and the training settings.

A checkpoint stores this as JSON; ``ModelConfig.from_dict`` rebuilds the exact networks from it alone.
Presets:
  - ``paper``: 256x256, the paper's widths (E ~15M, G ~38M incl. P, D ~20M + 512 per training video).
  - ``small``: 64x64, narrow: a CPU-trainable model for CI-sized runs and the few-shot results page.
  - ``tiny``: 32x32, very narrow: unit tests only.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from livingportrait_wire.errors import BadInput

from .discriminator import DiscriminatorConfig
from .embedder import EmbedderConfig
from .generator import GeneratorConfig
from .losses import LossConfig


@dataclass
class TrainingConfig:
    k_shots: int = 8
    batch_size: int = 8  # episodes per step, over all processes together
    lr_generator: float = 5e-5  # E, G (TTUR, as the paper's code)
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps_per_g_step: int = 2


@dataclass
class ModelConfig:
    preset: str = "paper"
    resolution: int = 256
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        parts = {"embedder": EmbedderConfig, "generator": GeneratorConfig,
                 "discriminator": DiscriminatorConfig, "losses": LossConfig, "training": TrainingConfig}
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            kwargs[f.name] = _build(parts[f.name], value) if f.name in parts else value
        return cls(**kwargs)

    def with_num_videos(self, n: int) -> "ModelConfig":
        return dataclasses.replace(self, discriminator=dataclasses.replace(self.discriminator, num_videos=n))


def _build(kind, values: dict):
    names = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(values) - set(names)
    if unknown:
        raise BadInput(f"model config: unknown {kind.__name__} fields {sorted(unknown)}; "
                       "the checkpoint was written by a different version")
    # JSON turns tuples into lists; the dataclasses keep tuples so configs compare equal.
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def preset(name: str) -> ModelConfig:
    """The named preset (``paper``, ``small`` or ``tiny``) as a fresh ModelConfig."""
    if name == "paper":
        return ModelConfig()
    if name == "small":
        return ModelConfig(
            preset="small", resolution=64,
            embedder=EmbedderConfig(channels=(32, 64, 128, 256), attention_after=1),
            generator=GeneratorConfig(down_channels=(32, 64, 128), down_attention_after=1, res_blocks=3,
                                      up_channels=(64, 32, 32), up_attention_after=0, embed_dim=256),
            discriminator=DiscriminatorConfig(channels=(32, 64, 128, 256), attention_after=1),
            training=TrainingConfig(k_shots=4, batch_size=8, lr_generator=2e-4, lr_discriminator=4e-4),
        )
    if name == "tiny":
        return ModelConfig(
            preset="tiny", resolution=32,
            embedder=EmbedderConfig(channels=(8, 16, 32), attention_after=0),
            generator=GeneratorConfig(down_channels=(8, 16), down_attention_after=0, res_blocks=1,
                                      up_channels=(16, 8), up_attention_after=0, embed_dim=32),
            discriminator=DiscriminatorConfig(channels=(8, 16, 32), attention_after=0),
            training=TrainingConfig(k_shots=2, batch_size=4, lr_generator=5e-4, lr_discriminator=1e-3),
        )
    raise BadInput(f"unknown model config {name!r}; use paper, small or tiny")

