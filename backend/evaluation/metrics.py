"""Image metrics of the paper's Table 1 on sRGB frames float32 (H, W, 3) in [0, 1].

SSIM (Gaussian-free 7x7 windows, scikit-image's defaults, per channel, averaged), PSNR in dB (both
scikit-image's) and mean
absolute error (L1) on the [0, 1] scale are always available. FID and CSIM need networks whose weights
the user supplies (``feature_metrics.py``).
"""
from __future__ import annotations

import numpy as np


def ssim(real: np.ndarray, fake: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(real, fake, channel_axis=2, data_range=1.0))


def psnr(real: np.ndarray, fake: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    with np.errstate(divide="ignore"):  # identical frames: infinite dB, not a warning
        return float(peak_signal_noise_ratio(real, fake, data_range=1.0))


def l1(real: np.ndarray, fake: np.ndarray) -> float:
    return float(np.mean(np.abs(real.astype(np.float64) - fake.astype(np.float64))))


def frame_metrics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """{"ssim", "psnr", "l1"} for one pair of sRGB frames in [0, 1]."""
    return {"ssim": ssim(real, fake), "psnr": psnr(real, fake), "l1": l1(real, fake)}
