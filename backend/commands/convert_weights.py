"""``livingportrait convert-weights``: published VGG19 / VGGFace weight files -> safetensors for training,
and the publisher's bi-layer runs -> the ``bilayer`` engine's converted folder (model/bilayer/convert.py).

Reads torch files only with ``torch.load(weights_only=True)`` (tensors and plain containers; a file
that needs arbitrary code to unpickle is refused) or safetensors, keeps the conv layers, and records
the input convention the weights were trained with in the output's metadata (see model/vgg.py).
"""
from __future__ import annotations

import argparse
import json
import os

HELP = ("Convert published weights into safetensors: VGG19 / VGGFace for training, or the bi-layer model's "
        "runs for the bilayer engine")

# Conv layer names in the order of the VGG stacks (the "conv{block}_{n}" naming of Caffe/MatConvNet ports).
_BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vggface": (2, 2, 3, 3, 3)}
_DEFAULT_CONVENTION = {"vgg19": None, "vggface": "vggface-dag"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", choices=("vgg19", "vggface", "bilayer"))
    parser.add_argument("source", nargs="+",
                        help="vgg19/vggface: the published weights, a torchvision-style state dict "
                             "(features.N.weight) or a conv1_1-style port such as vgg_face_dag.pth; bilayer: the "
                             "publisher's run folders (each with args.txt and checkpoints/<epoch>_<net>.pth), "
                             "e.g. runs/vc2-hq_adrianb_paper_main runs/vc2-hq_adrianb_paper_enhancer")
    parser.add_argument("--out", required=True,
                        help="vgg19/vggface: the safetensors file to write; bilayer: the folder to write")
    parser.add_argument("--convention", help="the input the weights expect: torchvision (RGB 0..1, ImageNet "
                                             "mean/std), caffe (BGR 0..255 minus the mean pixel), or "
                                             "vggface-dag (RGB 0..255 minus the mean; default for vggface)")


def _conv_indices(network: str) -> list[int]:
    """Indices of the conv layers inside a torchvision-layout ``features`` Sequential."""
    out, i = [], 0
    for n in _BLOCKS[network]:
        for _ in range(n):
            out.append(i)
            i += 2  # conv, ReLU
        i += 1  # max-pool
    return out


def _conv_names(network: str) -> list[str]:
    return [f"conv{b + 1}_{k + 1}" for b, n in enumerate(_BLOCKS[network]) for k in range(n)]


def _read(source: str) -> dict:
    import torch

    from livingportrait_wire.errors import BadInput

    if not os.path.isfile(source):
        raise BadInput(f"{source}: file not found")
    if source.endswith(".safetensors"):
        from safetensors.torch import load_file
        try:
            return load_file(source)
        except Exception as err:  # safetensors raises its own error types for corrupt headers
            raise BadInput(f"{source}: not a readable safetensors file ({err})") from None
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses code-carrying pickles with various error types
        raise BadInput(f"{source}: cannot be read safely as plain tensors ({str(err).splitlines()[0][:200]}); "
                       "only state dicts of tensors are accepted, never pickled code") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BadInput(f"{source}: holds a {type(obj).__name__}, expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items() if hasattr(v, "shape")}


def convert(network: str, source: str, out: str, convention: str | None) -> dict:
    """Write ``out`` and return the metadata written. Raises BadInput on unknown layouts or shapes."""
    import torch
    from safetensors.torch import save

    from livingportrait_backend.model.vgg import CONVENTIONS, LAYOUTS
    from livingportrait_wire.atomic_write import write_bytes_atomic
    from livingportrait_wire.errors import BadInput

    state = _read(source)
    indices, names = _conv_indices(network), _conv_names(network)
    tensors = {}
    if all(f"features.{i}.weight" in state for i in indices):
        pick = {i: f"features.{i}" for i in indices}
    elif all(f"{n}.weight" in state for n in names):
        pick = dict(zip(indices, names))
        convention = convention or _DEFAULT_CONVENTION[network]
    else:
        sample = ", ".join(list(state)[:6])
        raise BadInput(f"{source}: unrecognised layout for {network} (keys start {sample}); expected "
                       "features.N.weight (torchvision style) or conv1_1.weight (Caffe/MatConvNet ports)")
    if convention is None:
        raise BadInput(f"{source}: torchvision-layout {network} files exist with two input conventions; pass "
                       "--convention torchvision (torchvision's own weights) or --convention caffe (Caffe ports)")
    key = {"caffe": f"caffe-{network}"}.get(convention, convention)
    if key not in CONVENTIONS:
        raise BadInput(f"--convention {convention}: use torchvision, caffe or vggface-dag")
    widths = [v for v in LAYOUTS[network] if v != "M"]
    cin = 3
    for (idx, name), cout in zip(pick.items(), widths):
        if f"{name}.bias" not in state:
            raise BadInput(f"{source}: {name} has a weight but no bias; this is not a complete {network} file")
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise BadInput(f"{source}: {name} has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)}; "
                           f"this is not a {network} file")
        tensors[f"features.{idx}.weight"] = w.to(torch.float32).contiguous()
        tensors[f"features.{idx}.bias"] = b.to(torch.float32).contiguous()
        cin = cout
    conv = CONVENTIONS[key]
    meta = {"network": network, "convention": key, "channel_order": conv["channel_order"],
            "scale": str(conv["scale"]), "mean": json.dumps(conv["mean"]), "std": json.dumps(conv["std"]),
            "source": os.path.basename(source)}
    write_bytes_atomic(out, save(tensors, metadata=meta))
    return meta


def run(args) -> int:
    from livingportrait_wire.errors import BadInput

    if args.network == "bilayer":
        from livingportrait_backend.model.bilayer import convert_runs

        summary = convert_runs(args.source, args.out)
        total = sum(summary["parameters"].values())
        print(f"wrote {args.out}: bilayer.safetensors + bilayer.json, {total / 1e6:.1f} M parameters")
        for net, path in summary["sources"].items():
            print(f"  {net}: {summary['parameters'][net] / 1e6:.1f} M from {path}")
        return 0
    if len(args.source) != 1:
        raise BadInput(f"convert-weights {args.network}: give one source file, not {len(args.source)}")
    args.source = args.source[0]
    meta = convert(args.network, args.source, args.out, args.convention)
    print(f"wrote {args.out}: {args.network}, input {meta['channel_order'].upper()} x {meta['scale']}, "
          f"mean {meta['mean']}, std {meta['std']}")
    return 0
