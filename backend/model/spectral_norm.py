"""Spectral normalisation for training and its removal for inference.

Training wraps every conv/linear weight with ``torch.nn.utils.parametrizations.spectral_norm`` (one
power iteration per forward; the ``u``/``v`` vectors are buffers, so they live in checkpoints and make
resume exact). For inference, ``fold_spectral_norm`` replaces each parametrisation by the plain weight
it currently yields, which removes the per-forward division and power iteration.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Return ``module`` with its ``weight`` spectrally normalised when ``enabled``."""
    return spectral_norm(module) if enabled else module


@torch.no_grad()
def fold_spectral_norm(net: nn.Module) -> nn.Module:
    """Bake every spectral-norm parametrisation of ``net`` into a plain weight, in place.

    Call on a network in eval mode: the folded weight is ``W / sigma`` with sigma from the stored
    power-iteration vectors, exactly what an eval-mode forward would have used. Returns ``net``.
    """
    for module in net.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return net
