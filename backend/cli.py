"""The ``livingportrait`` console command.

Each subcommand lives in its own module under ``commands/`` exposing ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Modules import heavy packages (torch, cv2, mediapipe) inside ``run`` so that
``--help`` and a warp-only ``serve`` start fast.
"""
from __future__ import annotations

import os
import sys

# Imports stay inside functions: a task of an OpenJD session with a warm worker runs this module only to
# hand its arguments to the worker (session_client), and numpy (under livingportrait_wire) costs ~80 ms.

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


def build_parser():
    import argparse
    import importlib

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


class Terminated(Exception):
    """SIGTERM arrived: how farms (OpenJD, Flamenco, OpenCue) stop a task they cancel or time out."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["render"] and os.environ.get("LIVINGPORTRAIT_SESSION_WORKER") and "--connect" not in argv:
        from .session_client import run_task  # the step environment's warm worker renders it

        return run_task(argv)
    if argv[:1] == ["session"]:  # the OpenJD step environment's start/stop (farm/openjd); light, no parser
        from .session_worker import session_command

        return session_command(argv[1:])
    return run_command(argv)


def run_command(argv: list[str]) -> int:
    """The command ``argv`` in this process, failures as one line (see ``guarded``)."""
    import signal
    import threading

    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return guarded(args.command, lambda: args._run(args))
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def guarded(command: str, run) -> int:
    """``run()``'s status, or a failure said in one line: what the command and a session worker share."""
    from livingportrait_wire.errors import LivingPortraitError

    try:
        return int(run() or 0)
    except LivingPortraitError as err:
        return fail(command, err.message, 2)
    except OSError as exc:  # a disk, a permission, a path: one line that names it, not a traceback
        path = getattr(exc, "filename2", None) or exc.filename  # a rename names its destination second
        where = f"{path}: " if path else ""
        return fail(command, f"{where}{exc.strerror or exc}; check that the path exists, can be written and "
                             "has free space, then run the same command again", 2)
    except KeyboardInterrupt:
        print(f"livingportrait {command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        # Every file written so far is whole (atomic writes); the same command resumes.
        return fail(command, "stopped by SIGTERM; the frames written are complete, run the same command "
                             "again to render the rest", 143)


def fail(command: str, message: str, status: int) -> int:
    """Say what went wrong in one line (and to the farm, inside an OpenJD session); returns ``status``."""
    from .farm_environment import under_openjd

    print(f"livingportrait {command}: error: {message}", file=sys.stderr, flush=True)
    if under_openjd():
        print(f"openjd_fail: {message}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
