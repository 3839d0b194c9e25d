"""The server's "render" job: a SUBMIT's portraits and performance -> FRAME messages, one EXR each.

The same ``FrameRenderer`` as farm mode renders the frames; this module adds what the wire needs:
ACCEPTED with the frame count, PROGRESS per stage, each frame sent only once the client granted a
credit for it (``take_credit`` blocks, or raises Cancelled), and DONE.
"""
from __future__ import annotations

import threading
from typing import Callable

from livingportrait_wire.codec import Message, encode
from livingportrait_wire.protocol import ACCEPTED, DONE, FRAME, PROGRESS, Limits

from ..frame_renderer import FrameRenderer
from .job_requests import render_spec_from_message


def run_render_job(msg: Message, limits: Limits, cancel: threading.Event, take_credit: Callable[[], None],
                   send: Callable[[list], None]) -> None:
    def progress(stage: str, done: int, total: int) -> None:
        send(encode(PROGRESS, msg.id, {"stage": stage, "done": done, "total": total}))

    spec = render_spec_from_message(msg, limits)
    render = FrameRenderer(spec, progress, cancel)
    send(encode(ACCEPTED, msg.id, {"frames": len(render.frames)}))
    render.prepare()
    total = len(render.frames)
    for sent, (frame, data) in enumerate(render.encoded(render.frames), start=1):
        take_credit()
        send(encode(FRAME, msg.id, {"frame": frame, "filename": render.filename(frame)},
                    [({"name": "exr", "kind": "bytes", "encoding": "exr", "nbytes": len(data)}, data)]))
        progress("render", sent, total)
    send(encode(DONE, msg.id, {"frames": total}))
