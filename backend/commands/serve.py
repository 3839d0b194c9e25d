"""`livingportrait serve`: run the backend server until Ctrl-C / SIGTERM."""
from __future__ import annotations

HELP = "Run the backend: a ZeroMQ server that renders jobs for the add-on and for `render --connect`."


def add_arguments(p) -> None:
    from ..server import DEFAULT_BIND

    p.add_argument("--bind", default=DEFAULT_BIND,
                   help=f"ZeroMQ endpoint to listen on (default {DEFAULT_BIND}; loopback only unless "
                        "CurveZMQ keys are given). Use port * to pick a free port.")
    p.add_argument("--workers", type=int, default=2, help="jobs rendered at the same time (default 2)")


def run(args) -> int:
    import signal
    import sys
    import threading

    import zmq

    from livingportrait_wire.errors import BadInput

    from ..server import Server, is_loopback_bind

    if args.workers < 1:
        raise BadInput("--workers must be at least 1")
    if not is_loopback_bind(args.bind):
        raise BadInput(f"--bind {args.bind}: only loopback addresses are allowed without CurveZMQ keys; "
                       "bind tcp://127.0.0.1:PORT, or give server keys and authorised client keys")
    try:
        server = Server(args.bind, workers=args.workers)
    except zmq.ZMQError as exc:
        raise BadInput(f"--bind {args.bind}: cannot listen there ({exc}); is another backend running?") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # The first line is machine-readable: tools (and `demo`) read the endpoint from it.
    print(f"listening on {server.endpoint}", flush=True)
    print(f"engines: {', '.join(server.welcome['engines'])}; detectors: "
          f"{', '.join(server.welcome['detectors']) or 'none'}", file=sys.stderr, flush=True)
    server.serve(stop)
    return 0
