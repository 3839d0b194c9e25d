"""The client side of the wire, used by the CLI (``render --connect``) and by the Blender add-on.

It lives in four parts, each with a small public face; this module names them all in one place:

- ``jobs``: ``RenderJob`` and ``DetectJob``, what a client asks for (each encodes its SUBMIT);
- ``connection``: ``BackendClient`` (socket, handshake, heartbeats, reconnect) and ``CurveKeys``;
- ``job_stream``: ``JobStream``, one running job (messages in, frames written, credits back, resume);
- ``events``: what a stream reports (``FrameWritten``, ``ProgressEvent``, ``Finished``,
  ``ConnectionLost``, ``Resumed``).

``frame_writer`` (the output-folder check and the atomic frame writer) is shared with farm mode.
"""
from .connection import (DEFAULT_ADDRESS, HANDSHAKE_S, HEARTBEAT_S, LIVENESS_S, RECONNECT_S, REFUSED, TIMEOUT_S,
                         BackendClient, CurveKeys)
from .events import ConnectionLost, Finished, FrameWritten, ProgressEvent, Resumed
from .job_stream import JobStream
from .jobs import DetectJob, RenderJob

__all__ = ["DEFAULT_ADDRESS", "HANDSHAKE_S", "HEARTBEAT_S", "LIVENESS_S", "RECONNECT_S", "REFUSED", "TIMEOUT_S",
           "BackendClient", "CurveKeys", "ConnectionLost", "Finished", "FrameWritten", "ProgressEvent", "Resumed",
           "JobStream", "DetectJob", "RenderJob"]
