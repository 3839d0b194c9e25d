"""The two metrics of Table 1 that need trained networks: FID and CSIM.

- FID: the Fréchet distance between Gaussians fitted to Inception-v3 pool features of the real and the
  generated frames (``inception.py``; the user's weights).
- CSIM: mean cosine similarity between face-recognition embeddings of each real frame and its
  generated counterpart. The paper used a state-of-the-art recogniser; here the embedding is VGGFace's
  relu5_3 map, average-pooled (the VGGFace weights the content loss already uses), so CSIM values are
  comparable between our models, not to the paper's numbers.
Frames are float32 (N, H, W, 3) sRGB in [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from livingportrait_backend.model.vgg import load_vgg_features

VGGFACE_RELU5_3 = 29  # index of relu5_3 in the VGGFace (16-layer) feature stack
VGGFACE_INPUT = 224


def _batches(frames: np.ndarray, size: int = 16):
    for lo in range(0, len(frames), size):
        yield torch.from_numpy(np.ascontiguousarray(frames[lo:lo + size].transpose(0, 3, 1, 2), np.float32))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets (N, D) and (M, D), float64.

    The trace of sqrt(S1 S2) is the sum of square roots of the eigenvalues of S1 S2, which are those of a
    symmetric positive semi-definite matrix: S1^1/2 S2 S1^1/2 (D x D), or, with fewer frames than
    feature dimensions, A B^T B A^T (N x N, A and B the centred features; same non-zero spectrum) —
    exact, stable for singular covariances, and fast where a general matrix square root is neither.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    n, m, d = len(a), len(b), a.shape[1]
    if n < 2 or m < 2:
        raise ValueError("FID needs at least two frames per set")
    ca, cb = a - a.mean(0), b - b.mean(0)
    if min(n, m) < d:
        cross = ca @ cb.T
        spectrum = np.linalg.eigvalsh(cross @ cross.T / ((n - 1) * (m - 1)))
    else:
        s1, s2 = ca.T @ ca / (n - 1), cb.T @ cb / (m - 1)
        w, u = np.linalg.eigh(s1)
        root1 = (u * np.sqrt(np.clip(w, 0, None))) @ u.T
        middle = root1 @ s2 @ root1
        spectrum = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(np.clip(spectrum, 0, None)).sum())
    traces = (ca * ca).sum() / (n - 1) + (cb * cb).sum() / (m - 1)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + traces - 2 * trace_root)


class Fid:
    """``Fid(weights_path)(real, fake)`` -> FID over the two frame sets."""

    def __init__(self, weights: str):
        from .inception import load_inception

        self.net = load_inception(weights)

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> np.ndarray:
        return np.concatenate([self.net(x).double().numpy() for x in _batches(frames)])

    def __call__(self, real: np.ndarray, fake: np.ndarray) -> float:
        return frechet_distance(self.features(real), self.features(fake))


class Csim:
    """``Csim(vggface_weights)(real, fake)`` -> mean cosine similarity of paired frames."""

    def __init__(self, weights: str):
        self.net = load_vgg_features(weights, "vggface", (VGGFACE_RELU5_3,))

    @torch.inference_mode()
    def embed(self, frames: np.ndarray) -> torch.Tensor:
        out = []
        for x in _batches(frames):
            x = F.interpolate(x, size=(VGGFACE_INPUT, VGGFACE_INPUT), mode="bilinear", align_corners=False)
            out.append(self.net(x * 2 - 1)[0].mean(dim=(2, 3)))
        return torch.cat(out)

    def __call__(self, real: np.ndarray, fake: np.ndarray) -> float:
        return float(F.cosine_similarity(self.embed(real), self.embed(fake), dim=1).mean())
