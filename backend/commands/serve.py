"""`livingportrait serve`: run the backend server until Ctrl-C / SIGTERM."""
from __future__ import annotations

HELP = "Run the backend: a ZeroMQ server that renders jobs for the add-on and for `render --connect`."


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (POSIX; a zombie counts as gone)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): kill(pid, 0) said it exists


def _exit_with(pid: int, stop, interval_s: float = 0.5) -> None:
    """Set ``stop`` once process ``pid`` has gone (checked every ``interval_s``)."""
    import logging

    while not stop.wait(interval_s):
        if not _process_alive(pid):
            logging.getLogger("livingportrait.server").warning("process %d has gone: stopping", pid)
            stop.set()


def add_arguments(p) -> None:
    from dataclasses import fields

    from livingportrait_wire.protocol import Limits

    from ..server import CLIENT_TIMEOUT_S, DEFAULT_BIND, HEARTBEAT_S

    p.add_argument("--bind", default=DEFAULT_BIND,
                   help=f"ZeroMQ endpoint to listen on (default {DEFAULT_BIND}). Any non-loopback address "
                        "needs --server-key and --authorized-keys (CurveZMQ). Use port * to pick a free port.")
    p.add_argument("--workers", type=int, default=2, help="jobs rendered at the same time (default 2)")
    p.add_argument("--server-key", metavar="FILE",
                   help="CurveZMQ: this backend's secret key file (NAME.key_secret from `livingportrait keys "
                        "generate`); clients need the matching public NAME.key")
    p.add_argument("--authorized-keys", metavar="DIR",
                   help="CurveZMQ: folder of the public key files (*.key) of the clients allowed in")
    p.add_argument("--exit-with", type=int, metavar="PID",
                   help="stop when process PID has gone (the Blender add-on passes its own, so a local "
                        "backend never outlives a Blender that was killed and keeps the port)")
    p.add_argument("--heartbeat", type=float, default=HEARTBEAT_S, metavar="S",
                   help=f"seconds between heartbeats to clients with running jobs (default {HEARTBEAT_S:g})")
    p.add_argument("--client-timeout", type=float, default=CLIENT_TIMEOUT_S, metavar="S",
                   help="cancel the jobs of a client silent this long (default "
                        f"{CLIENT_TIMEOUT_S:g}; clients ping every second)")
    defaults = Limits()
    group = p.add_argument_group("limits (announced to clients in the handshake)")
    for f in fields(Limits):
        group.add_argument(_flag(f.name), type=int, default=getattr(defaults, f.name), metavar="N",
                           help=f"default {getattr(defaults, f.name)}")


def run(args) -> int:
    import logging
    import os
    import signal
    import sys
    import threading
    from dataclasses import fields

    import zmq

    from livingportrait_wire.errors import BadInput
    from livingportrait_wire.protocol import Limits

    from ..server.security import ServerCurve, check_bind_security
    from ..server import Server, limit_malloc_arenas

    if args.workers < 1:
        raise BadInput("--workers must be at least 1")
    if not 0 < args.heartbeat < args.client_timeout:
        raise BadInput("--heartbeat must be positive and shorter than --client-timeout")
    for f in fields(Limits):
        if getattr(args, f.name) < 1:
            raise BadInput(f"{_flag(f.name)} must be at least 1")
    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    # OpenCV reads this once, when it loads: an image bomb far past the pixel limit is refused by the
    # decoder before it allocates; up to 4x the limit still decodes, to be refused with a clear message.
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(4 * limits.max_image_pixels)
    if (args.server_key is None) != (args.authorized_keys is None):
        raise BadInput("CurveZMQ needs both --server-key and --authorized-keys")
    curve = ServerCurve.from_files(args.server_key, args.authorized_keys) if args.server_key else None
    check_bind_security(args.bind, curve)
    limit_malloc_arenas()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        server = Server(args.bind, limits, args.workers, curve, args.heartbeat, args.client_timeout)
    except zmq.ZMQError as exc:
        raise BadInput(f"--bind {args.bind}: cannot listen there ({exc}); is another backend running?") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with is not None:
        threading.Thread(target=_exit_with, args=(args.exit_with, stop), name="exit-with", daemon=True).start()
    # The first line is machine-readable: tools (and `demo`) read the endpoint from it.
    print(f"listening on {server.endpoint}", flush=True)
    print(f"engines: {', '.join(server.welcome['engines'])}; detectors: "
          f"{', '.join(server.welcome['detectors']) or 'none'}; "
          f"{'CurveZMQ, authorised keys in ' + curve.authorized_dir if curve else 'no encryption (loopback)'}",
          file=sys.stderr, flush=True)
    server.serve(stop)
    return 0
