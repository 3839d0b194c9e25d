"""mediapipe 0.10.21's bundled selfie segmentation (offline): the person-vs-background probability of an
image. One call shared by the warp engine's person layer and the bi-layer engine's source mask."""
from __future__ import annotations

import numpy as np


def selfie_probability(srgb8: np.ndarray, model_selection: int = 0) -> np.ndarray:
    """uint8 RGB (h, w, 3+) -> float32 (h, w) person probability in [0, 1] (zeros when it finds nobody).
    ``model_selection``: 0 the general 256x256 model, 1 the landscape 144x256 one."""
    from ..native_logs import without_native_chatter

    with without_native_chatter():  # mediapipe's C++ start-up lines are not for users
        import mediapipe as mp

        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection) as seg:
            mask = seg.process(np.ascontiguousarray(srgb8[:, :, :3])).segmentation_mask
    if mask is None:
        return np.zeros(srgb8.shape[:2], np.float32)
    return np.clip(mask.astype(np.float32), 0.0, 1.0)
