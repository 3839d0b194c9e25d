"""What can be measured about the bi-layer engine's source segmentation without Graphonomy.

    PYTHONPATH=. python bench/bilayer_source_mask.py [--picture FILE] [IMAGE ...]   (default: the astronaut)

The publisher's identity embedder saw portraits masked by Graphonomy (foreground = 1 - P(background),
eroded with a 5 px disc). Graphonomy cannot run here (CUDA-only wrapper, its own weights), so its mask
cannot be compared directly. Measured instead, on the publisher's 256 px crop of each portrait: how much
of the crop the engine's mask (mediapipe selfie segmentation, general model, same erosion) calls
foreground; how much of it is uncertain (0.05 < p < 0.95); how far mediapipe's two bundled models
(general 256x256 vs landscape 144x256) disagree (mean |difference| and IoU at 0.5), a floor on how
uncertain a person/background split of this crop is; and what the erosion removes.
"""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np


def main() -> int:
    from skimage import data as skdata

    from livingportrait_backend.detectors import detect_portrait_landmarks
    from livingportrait_backend.engines.bilayer_mask import ERODE, _disc, source_mask
    from livingportrait_backend.engines.selfie_segmentation import selfie_probability
    from livingportrait_backend.model.bilayer import inputs as bi

    argv = sys.argv[1:]
    picture = None
    if argv[:1] == ["--picture"]:
        picture, argv = argv[1], argv[2:]
    images = [(p, cv2.imread(p)[:, :, ::-1].copy()) for p in argv] or [("astronaut", skdata.astronaut())]
    rows = []
    for name, image in images:
        points = detect_portrait_landmarks(image, name).points
        crop = bi.crop_image(image, bi.crop_box(points), 256)
        crop8 = np.round((crop.transpose(1, 2, 0) + 1) * 127.5).clip(0, 255).astype(np.uint8)
        ours = source_mask(crop8)
        general, landscape = selfie_probability(crop8, 0), selfie_probability(crop8, 1)
        landscape_eroded = cv2.erode(landscape, _disc(ERODE))
        a, b = ours > 0.5, landscape_eroded > 0.5
        rows.append({
            "image": name,
            "foreground_fraction": round(float(ours.mean()), 3),
            "uncertain_fraction": round(float(((ours > 0.05) & (ours < 0.95)).mean()), 3),
            "general_vs_landscape_mean_abs": round(float(np.abs(ours - landscape_eroded).mean()), 3),
            "general_vs_landscape_iou": round(float((a & b).sum() / max((a | b).sum(), 1)), 3),
            "erosion_removes_fraction": round(float(general.mean() - ours.mean()), 3),
        })
        if picture and len(rows) == 1:
            masked = crop8.astype(np.float32) * ours[..., None]  # what the embedder sees: background -> -1 (black)
            panels = [crop8, np.repeat((ours * 255).astype(np.uint8)[..., None], 3, -1),
                      np.repeat((np.abs(ours - landscape_eroded) * 255).clip(0, 255).astype(np.uint8)[..., None], 3, -1),
                      masked.astype(np.uint8)]
            cv2.imwrite(picture, np.concatenate(panels, 1)[:, :, ::-1])
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
