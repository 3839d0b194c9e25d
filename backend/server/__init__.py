"""The backend server (`livingportrait serve`): what runs jobs for clients over ZeroMQ.

- ``router``: the socket loop (one thread owns the ROUTER; jobs on a worker pool; credits, liveness);
- ``job_requests``: a SUBMIT's fields checked and turned into a render spec;
- ``render_job`` / ``detect_job``: what each kind of job sends back, message by message;
- ``security``: who may connect (loopback, or CurveZMQ keys the operator authorised).

Rendering itself is ``frame_renderer.FrameRenderer``, the same in farm mode.
Public door: ``Server``, ``limit_malloc_arenas`` and the defaults below.
"""
from .router import CLIENT_TIMEOUT_S, DEFAULT_BIND, HEARTBEAT_S, Server, limit_malloc_arenas

__all__ = ["CLIENT_TIMEOUT_S", "DEFAULT_BIND", "HEARTBEAT_S", "Server", "limit_malloc_arenas"]
