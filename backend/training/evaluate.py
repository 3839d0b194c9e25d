"""Held-out reconstruction error: embed K shots of an unseen video, render its other frames, compare."""
from __future__ import annotations

import numpy as np
import torch

from livingportrait_backend.data.episodes import EpisodeLoader


@torch.no_grad()
def reconstruction_error(embedder, generator, dataset, k_shots: int, episodes: int = 16, seed: int = 12345,
                         device: torch.device | str = "cpu") -> float:
    """Mean L1 (images in [-1, 1]) between targets and the generator's rendering of them, over
    ``episodes`` deterministic episodes of ``dataset`` (one per video in turn, as the loader draws them).
    The networks are put in eval mode and restored to their previous mode afterwards."""
    modes = embedder.training, generator.training
    embedder.eval()
    generator.eval()
    loader = EpisodeLoader(dataset, k_shots, batch_size=1, seed=seed)
    errors = []
    for i in range(episodes):
        ep = loader.batch(i)
        e = embedder(torch.from_numpy(ep.shots).to(device))
        fake = generator(torch.from_numpy(ep.target_raster).to(device), generator.project(e))
        errors.append((fake.float().cpu() - torch.from_numpy(ep.target_image)).abs().mean().item())
    embedder.train(modes[0])
    generator.train(modes[1])
    return float(np.mean(errors))
