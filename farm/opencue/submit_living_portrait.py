#!/usr/bin/env python
"""Submit a Living Portrait render to OpenCue: one layer, one chunk of frames per task.

    python farm/opencue/submit_living_portrait.py --portrait P.png --driver PERF.npz --out DIR \
        --name astronaut --frames 1-96 --chunk 8 [--service livingportrait] [--gpus 1 --engine fewshot \
        --render-arg=--checkpoint --render-arg=/models/paper] [--dry-run]

Needs `pip install opencue-pyoutline opencue-rqd packaging` and living-portrait in the same environment,
and a Cuebot to launch to (CUEBOT_HOSTS, or opencue's config). --dry-run writes the outline into its
session folder and prints the job specification Cuebot would receive, without launching. See docs/farm.md.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--portrait", required=True, help="portrait image, as the render hosts see it")
    p.add_argument("--driver", required=True, help="performance (.npz) or video, as the render hosts see it")
    p.add_argument("--out", required=True, help="output folder, as the render hosts see it")
    p.add_argument("--name", default="portrait", help="sequence name (frames are NAME.####.exr)")
    p.add_argument("--frames", required=True, help="OpenCue frame set, e.g. 1-96")
    p.add_argument("--chunk", type=int, default=8, help="frames per task (default 8)")
    p.add_argument("--engine", default="warp")
    p.add_argument("--portrait-landmarks", default="", help="the portrait's 68 landmarks (.npz/.npy), optional")
    p.add_argument("--render-arg", action="append", default=[], metavar="ARG",
                   help="a further `livingportrait render` argument (repeat; write --render-arg=--flag)")
    p.add_argument("--executable", default="livingportrait", help="the command on the hosts (default: on PATH)")
    p.add_argument("--service", help="Cuebot service whose hosts have livingportrait")
    p.add_argument("--show", help="OpenCue show (default: outline's default_show)")
    p.add_argument("--shot", help="OpenCue shot")
    p.add_argument("--gpus", type=int, default=0, help="GPUs to book per task (neural engines)")
    p.add_argument("--dry-run", action="store_true", help="print the job specification instead of launching")
    args = p.parse_args(argv)

    import outline.cuerun

    from livingportrait_backend.opencue_layer import build_outline, submit

    absolute = {k: os.path.abspath(getattr(args, k)) for k in ("portrait", "driver", "out")}
    ol = build_outline(args.name, frames=args.frames, chunk=args.chunk, engine=args.engine,
                       portrait_landmarks=os.path.abspath(args.portrait_landmarks) if args.portrait_landmarks else "",
                       render_args=args.render_arg, executable=args.executable, service=args.service,
                       show=args.show, shot=args.shot, gpus=args.gpus, **absolute)
    if args.dry_run:
        launcher = outline.cuerun.OutlineLauncher(ol)
        launcher.setup()
        print(f"outline: {ol.get_path()}", file=sys.stderr)
        print(launcher.serialize())
        return 0
    for job in submit(ol):
        print(f"launched {job.name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
