"""VGG19 and VGGFace feature extractors for the content loss, with their input conventions.

Both are the plain VGG conv stacks laid out as torchvision's ``features`` (conv, ReLU, ..., max-pool),
cut after the deepest layer the loss taps. Weights come only from safetensors files the user supplies
(``livingportrait convert-weights`` writes them from the published formats); each file's metadata
says which input the weights expect, because feeding RGB in 0..1 to nets trained on Caffe's BGR 0..255
mean-subtracted input makes the content loss tiny and useless (REFERENCE: a known reimplementation bug).

Metadata keys (JSON strings): ``network`` ("vgg19" | "vggface"), ``channel_order`` ("rgb" | "bgr"),
``scale`` (255 or 1: the value of a white pixel before normalisation), ``mean`` and ``std``
(3 floats each, in ``channel_order``, applied after scaling).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from torch import nn

from livingportrait_wire.errors import BadInput

from .tensor_file import read_safetensors

# Conv widths, "M" for a 2x2 max-pool: the VGG "E" (19-layer) and "D" (16-layer, VGGFace) stacks.
LAYOUTS = {
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
    "vggface": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}

# The published conventions the converter knows (values in channel order).
CONVENTIONS = {
    # torchvision's ImageNet-trained weights: RGB in 0..1, ImageNet mean/std.
    "torchvision": {"channel_order": "rgb", "scale": 1.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    # The original Caffe VGG19 (and ports of it, e.g. jcjohnson's): BGR 0..255 minus the ImageNet pixel mean.
    "caffe-vgg19": {"channel_order": "bgr", "scale": 255.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0]},
    # The original Caffe VGGFace: BGR 0..255 minus the VGGFace pixel mean.
    "caffe-vggface": {"channel_order": "bgr", "scale": 255.0, "mean": [93.5940, 104.7624, 129.1863], "std": [1.0, 1.0, 1.0]},
    # The MatConvNet-derived VGGFace port (vgg_face_dag): RGB 0..255 minus the same mean in RGB order.
    "vggface-dag": {"channel_order": "rgb", "scale": 255.0, "mean": [129.1863, 104.7624, 93.5940], "std": [1.0, 1.0, 1.0]},
}


@dataclass(frozen=True)
class InputConvention:
    channel_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_metadata(cls, meta: dict, source: str) -> "InputConvention":
        try:
            order = meta["channel_order"]
            if order not in ("rgb", "bgr"):
                raise ValueError(order)
            return cls(order, float(meta["scale"]), tuple(json.loads(meta["mean"])), tuple(json.loads(meta["std"])))
        except (KeyError, ValueError, TypeError) as err:
            raise BadInput(f"{source}: the file's metadata does not say which input its weights expect ({err}); "
                           "write it with `livingportrait convert-weights`") from None


class VGGFeatures(nn.Module):
    """image (B, 3, H, W) RGB in [-1, 1] -> list of ReLU outputs at ``taps`` (indices into ``features``).

    The module converts the image into the weights' own convention before the first conv.
    """

    def __init__(self, network: str, taps: tuple[int, ...], convention: InputConvention):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in LAYOUTS[network]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
            if len(layers) > max(taps):
                break
        self.features = nn.Sequential(*layers[: max(taps) + 1])
        self.taps = tuple(taps)
        self.network = network
        self.convention = convention
        self.register_buffer("mean", torch.tensor(convention.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(convention.std).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)  # a fixed feature net: always eval

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image + 1.0) * 0.5 * self.convention.scale
        if self.convention.channel_order == "bgr":
            x = x.flip(1)
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def load_vgg_features(path: str | os.PathLike, network: str, taps: tuple[int, ...]) -> VGGFeatures:
    """Build ``network`` ("vgg19" | "vggface") and load its weights from a converted safetensors file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BadInput(f"{path}: {network} weights not found; convert the published weights with "
                       f"`livingportrait convert-weights {network} SOURCE --out {path}`")
    tensors, meta = read_safetensors(path, f"convert the published weights with `livingportrait "
                                           f"convert-weights {network} SOURCE --out {path}`")
    if meta.get("network") != network:
        raise BadInput(f"{path}: holds {meta.get('network', 'unknown')!r} weights, expected {network!r}")
    net = VGGFeatures(network, taps, InputConvention.from_metadata(meta, path))
    wanted = net.features.state_dict()
    missing = [k for k in wanted if f"features.{k}" not in tensors]
    if missing:
        raise BadInput(f"{path}: missing tensors {missing[:4]}; the file is not a complete {network}")
    try:
        net.features.load_state_dict({k: tensors[f"features.{k}"] for k in wanted})
    except RuntimeError as err:  # torch says which tensor has the wrong shape
        raise BadInput(f"{path}: tensors do not fit {network} ({str(err).splitlines()[-1].strip()[:200]}); "
                       "re-run convert-weights on the original file") from None
    return net
