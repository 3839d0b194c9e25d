"""The lab's one-shot bi-layer model (Zakharov et al., ECCV 2020) for inference, reimplemented from
reading the publisher's code (MPL-2.0): one network per file, each with its config dataclass.

    model = load_converted(folder, device)          # written by `livingportrait convert-weights bilayer`
    ident = model.identity(image, seg, stickman, kp)  # once per portrait
    rgb, seg = model.frames(keypoints, ident.texture)  # per frame, batched
"""
from .config import BilayerConfig
from .convert import CONFIG_FILE, WEIGHTS_FILE, convert_runs, load_converted
from .model import NETWORKS, BilayerModel, Identity

__all__ = ["BilayerConfig", "BilayerModel", "Identity", "NETWORKS", "CONFIG_FILE", "WEIGHTS_FILE",
           "convert_runs", "load_converted"]
