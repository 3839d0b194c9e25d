"""``livingportrait evaluate``: the paper's self-reenactment protocol on held-out videos -> Table 1."""
from __future__ import annotations

import argparse

HELP = ("Evaluate a checkpoint as the paper does (T shots per held-out video, self-reenactment of held-out "
        "frames): SSIM, PSNR, L1; FID and CSIM with user-supplied weights. Writes Markdown + CSV.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="model checkpoint folder (or its model.safetensors) written by `livingportrait train`")
    p.add_argument("--data", required=True,
                   help="test videos: a folder from `livingportrait prepare`, or synthetic:N for N synthetic "
                        "identities never used in training")
    p.add_argument("--out", required=True, metavar="STEM",
                   help="output path without suffix: writes STEM.md and STEM.csv")
    p.add_argument("--shots", default="1,8,32", help="comma list of T values (default 1,8,32)")
    p.add_argument("--finetune-steps", type=int, default=0, metavar="N",
                   help="also evaluate the model fine-tuned for N steps on the shots (default 0: feed-forward only)")
    p.add_argument("--finetune-batch", type=int, default=4, metavar="B", help="shots per fine-tuning step (default 4)")
    p.add_argument("--videos", type=int, default=8, metavar="N", help="evaluate the first N videos (default 8)")
    p.add_argument("--frames", type=int, default=16, metavar="N", help="held-out frames per video (default 16)")
    p.add_argument("--warp", action="store_true", help="add the warp engine (which warps the first shot) as a baseline row")
    p.add_argument("--seed", type=int, default=0, help="seed of the shot/held-out split and fine-tuning")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--inception", metavar="FILE",
                   help="Inception-v3 weights (safetensors, torchvision names) to compute FID")
    p.add_argument("--vggface", metavar="FILE",
                   help="VGGFace weights (safetensors from `livingportrait convert-weights`) to compute CSIM")


def _parse_shots(text: str) -> list[int]:
    from livingportrait_wire.errors import BadInput

    try:
        shots = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        shots = []
    if not shots or shots[0] < 1 or shots[-1] > 32:
        raise BadInput(f"--shots {text}: give a comma list of shot counts from 1 to 32, e.g. 1,8,32")
    return shots


def run(args) -> int:
    import os
    import sys

    from livingportrait_wire.atomic_write import write_bytes_atomic
    from livingportrait_wire.errors import BadInput

    from ..data.source import SYNTHETIC, held_out, open_dataset
    from ..engines.fewshot import pick_device
    from ..engines.fewshot_settings import resolve_model_file
    from ..evaluation import table
    from ..evaluation.protocol import FewShotModel, Method, evaluate
    from ..progress import Progress

    shots = _parse_shots(args.shots)
    if args.videos < 1 or args.frames < 1 or args.finetune_steps < 0 or args.finetune_batch < 1:
        raise BadInput("--videos, --frames and --finetune-batch must be at least 1, --finetune-steps at least 0")
    if args.out.endswith((".md", ".csv")):
        raise BadInput(f"--out {args.out}: give the path without a suffix; .md and .csv are added")
    model = FewShotModel(resolve_model_file(args.checkpoint, "checkpoint"), pick_device(args.device))
    s = model.resolution
    dataset = open_dataset(args.data, s)
    if args.data.startswith(SYNTHETIC):  # test identities come from the held-out seed, never training's
        dataset = held_out(args.data, s, videos=args.videos)
    videos = list(range(min(args.videos, len(dataset))))
    fid = csim = None
    if args.inception:
        from ..evaluation.feature_metrics import Fid
        fid = Fid(args.inception)
    else:
        print("evaluate: FID not computed: pass --inception FILE (Inception-v3 weights as safetensors)", file=sys.stderr)
    if args.vggface:
        from ..evaluation.feature_metrics import Csim
        csim = Csim(args.vggface)
    else:
        print("evaluate: CSIM not computed: pass --vggface FILE (from `livingportrait convert-weights vggface`)",
              file=sys.stderr)
    # The warp engine uses one shot whatever T is; the held-out frames are the same for every T.
    methods = [Method("warp", 1)] if args.warp else []
    for t in shots:
        methods.append(Method("fewshot", t))
        if args.finetune_steps:
            methods.append(Method("fewshot", t, args.finetune_steps))
    bar = Progress(len(videos) * len(methods), "evaluate")
    result = evaluate(dataset, videos, methods, model, args.frames, args.seed, args.finetune_batch, fid, csim,
                      lambda stage, done, total: stage == "evaluate" and bar.update(done))
    bar.close()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    md = table.markdown(result.rows)
    write_bytes_atomic(args.out + ".md", md.encode())
    write_bytes_atomic(args.out + ".csv", table.csv_text(result.rows).encode())
    print(md, end="")
    print(f"wrote {args.out}.md and {args.out}.csv ({len(videos)} videos x {args.frames} held-out frames)")
    return 0
