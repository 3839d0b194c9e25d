"""The bi-layer model's configuration: one dataclass per network, gathered in ``BilayerConfig``, read
from a published run's ``args.txt`` (by the converter) and stored as JSON beside the converted weights.

Only the architecture the publisher trained is supported (leaky ReLU, nearest upsampling, average
pooling, SPADE batch norm in the texture generator, adaptive batch norm in the inference generator,
identity-owned 1x1 skip convs, no norm in the embedder and enhancer); the sizes are free. A run whose
args.txt asks for another variant is refused by name.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .identity_embedder import IdentityEmbedderConfig
from .inference_generator import InferenceGeneratorConfig
from .keypoints_embedder import KeypointsEmbedderConfig
from .texture_enhancer import TextureEnhancerConfig
from .texture_generator import TextureGeneratorConfig

FORMAT = "livingportrait-bilayer/1"

# args.txt key -> the only value this implementation builds (the published runs' choice)
REQUIRED_CHOICES = {
    "emb_norm_layer_type": "none", "emb_activation_type": "leakyrelu", "emb_downsampling_type": "avgpool",
    "tex_norm_layer_type": "ada_spade_bn", "tex_activation_type": "leakyrelu", "tex_upsampling_type": "nearest",
    "tex_skip_layer_type": "ada_conv", "tex_pixelwise_bias_type": "none",
    "inf_norm_layer_type": "ada_bn", "inf_activation_type": "leakyrelu", "inf_upsampling_type": "nearest",
    "inf_skip_layer_type": "ada_conv",
    "pse_norm_layer_type": "none", "pse_activation_type": "leakyrelu",
    "enh_norm_layer_type": "none", "enh_activation_type": "leakyrelu", "enh_downsampling_type": "avgpool",
    "enh_upsampling_type": "nearest",
    "num_source_frames": "1",
}


@dataclass(frozen=True)
class BilayerConfig:
    identity_embedder: IdentityEmbedderConfig = field(default_factory=IdentityEmbedderConfig)
    texture_generator: TextureGeneratorConfig = field(default_factory=TextureGeneratorConfig)
    keypoints_embedder: KeypointsEmbedderConfig = field(default_factory=KeypointsEmbedderConfig)
    inference_generator: InferenceGeneratorConfig = field(default_factory=InferenceGeneratorConfig)
    texture_enhancer: TextureEnhancerConfig | None = field(default_factory=TextureEnhancerConfig)
    image_size: int = 256
    stickman_thickness: int = 2  # line width of the source portrait's landmark drawing
    mask_source: bool = True     # the embedder sees the portrait with its background set to -1

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **dataclasses.asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BilayerConfig":
        d = json.loads(text)
        if d.pop("format", None) != FORMAT:
            raise ValueError(f"not a {FORMAT} config")
        enh = d.pop("texture_enhancer")
        return cls(identity_embedder=IdentityEmbedderConfig(**d.pop("identity_embedder")),
                   texture_generator=TextureGeneratorConfig(**d.pop("texture_generator")),
                   keypoints_embedder=KeypointsEmbedderConfig(**d.pop("keypoints_embedder")),
                   inference_generator=InferenceGeneratorConfig(**d.pop("inference_generator")),
                   texture_enhancer=TextureEnhancerConfig(**enh) if enh else None, **d)

    @classmethod
    def from_args(cls, args: dict[str, str], harmonics: bool, enhancer: bool) -> "BilayerConfig":
        """From a run's args.txt (key -> text value). ``harmonics`` (whether the keypoints embedder encodes
        with harmonics) comes from the checkpoint's own layout, since args.txt writes that store_true flag
        ambiguously; ``enhancer`` whether a texture enhancer is part of the model. ValueError naming the
        key for an unsupported variant."""
        def get(key, cast, default):
            return cast(args[key]) if key in args else default

        def flag(key, default):
            v = args.get(key)
            return default if v is None else v.strip() == "True"

        for key, want in REQUIRED_CHOICES.items():
            if key in args and args[key].strip() != want:
                raise ValueError(f"{key} is {args[key].strip()!r}; only the published {want!r} is supported")
        size = get("image_size", int, 256)
        eps = get("eps", float, 1e-7)
        emb_c, emb_max = get("emb_num_channels", int, 64), get("emb_max_channels", int, 512)
        tex_c, tex_max = get("tex_num_channels", int, 64), get("tex_max_channels", int, 512)
        tex_in = get("tex_input_tensor_size", int, 4)
        inf_c, inf_max = get("inf_num_channels", int, 32), get("inf_max_channels", int, 256)
        inf_in = get("inf_input_tensor_size", int, 4)
        return cls(
            identity_embedder=IdentityEmbedderConfig(size, emb_c, emb_max, get("emb_output_tensor_size", int, 8),
                                                     tex_c, tex_max, tex_in, not flag("emb_no_stickman", False)),
            texture_generator=TextureGeneratorConfig(size, tex_c, tex_max, tex_in, emb_c, emb_max, eps),
            keypoints_embedder=KeypointsEmbedderConfig(
                get("pse_in_channels", int, 136), get("pse_num_channels", int, 256), get("pse_num_blocks", int, 4),
                get("pse_num_harmonics", int, 4) if harmonics else 0, inf_max, inf_in),
            inference_generator=InferenceGeneratorConfig(size, inf_c, inf_max, inf_in,
                                                         flag("inf_pred_segmentation", True), emb_c, emb_max, eps),
            texture_enhancer=TextureEnhancerConfig(
                size, get("enh_num_channels", int, 64), get("enh_max_channels", int, 128),
                get("enh_bottleneck_tensor_size", int, 128), get("enh_num_blocks", int, 8),
                get("enh_unrolling_depth", int, 4), args.get("enh_guiding_rgb_loss_type", "sse").strip())
            if enhancer else None,
            image_size=size, stickman_thickness=get("stickmen_thickness", int, 2),
            mask_source=flag("emb_apply_masks", True))


def parse_args_text(text: str) -> dict[str, str]:
    """args.txt ("key: value" per line, values may contain ": ") -> key -> value text."""
    out = {}
    for line in text.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k.strip()] = v
    return out
