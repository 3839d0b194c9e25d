"""Turns the ``--data`` argument into a dataset: a prepared folder or ``synthetic:N[:FRAMES]``."""
from __future__ import annotations

from livingportrait_wire.errors import BadInput

from .prepared import PreparedVideos
from .synthetic import SyntheticTalkingHeads

SYNTHETIC = "synthetic:"
# Held-out synthetic identities come from a seed no training spec uses.
HELD_OUT_SEED_OFFSET = 1_000_003


def open_dataset(spec: str, resolution: int, seed: int = 0):
    """``synthetic:200`` -> 200 synthetic videos (64 frames each; ``synthetic:200:32`` for 32) rendered
    at ``resolution``; anything else is a folder written by ``livingportrait prepare``, whose crops
    must be ``resolution`` pixels square."""
    if spec.startswith(SYNTHETIC):
        parts = spec[len(SYNTHETIC):].split(":")
        try:
            count = int(parts[0])
            frames = int(parts[1]) if len(parts) > 1 else 64
            if count < 1 or frames < 2 or len(parts) > 2:
                raise ValueError
        except ValueError:
            raise BadInput(f"--data {spec}: expected synthetic:VIDEOS or synthetic:VIDEOS:FRAMES with "
                           "VIDEOS >= 1 and FRAMES >= 2, e.g. synthetic:200") from None
        return SyntheticTalkingHeads(count, resolution, seed=seed, frames_per_video=frames)
    data = PreparedVideos(spec)
    if data.resolution != resolution:
        raise BadInput(f"{spec}: crops are {data.resolution} px but the model config needs {resolution} px; "
                       f"re-run `livingportrait prepare --size {resolution}` or pick the matching --config")
    return data


def held_out(spec: str, resolution: int, seed: int = 0, videos: int = 16):
    """Unseen synthetic identities for evaluation when training on synthetic data, else None."""
    if not spec.startswith(SYNTHETIC):
        return None
    return SyntheticTalkingHeads(videos, resolution, seed=seed + HELD_OUT_SEED_OFFSET)
