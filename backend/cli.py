"""The ``livingportrait`` console command.

Each subcommand lives in its own module under ``commands/`` exposing ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Modules import heavy packages (torch, cv2, mediapipe) inside ``run`` so that
``--help`` and a warp-only ``serve`` start fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from livingportrait_wire.errors import LivingPortraitError

# Subcommand name -> module under livingportrait_backend.commands.
COMMANDS = {
    "serve": "serve",
    "render": "render",
    "demo": "demo",
    "train": "train",
    "prepare": "prepare",
    "convert-weights": "convert_weights",
    "evaluate": "evaluate",
    "keys": "keys",
    "track": "track",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livingportrait",
        description="Living Portrait: animate a portrait with a landmark performance and write EXR frames.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"livingportrait_backend.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except LivingPortraitError as err:
        print(f"livingportrait {args.command}: error: {err.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"livingportrait {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
