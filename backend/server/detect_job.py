"""The server's "detect" job: track a performance on footage the client sends (the add-on's
"Detect landmarks" on a movie clip), and send the landmark sequence back.

The footage arrives as a movie file's bytes (``video``; a long movie in parts, see protocol.py) or as
encoded frames (``image`` buffers with a
``frames`` array of their numbers). Tracking is the same as ``livingportrait track``.
"""
from __future__ import annotations

import itertools
import os
import tempfile
import threading
from typing import Callable

import numpy as np

from livingportrait_wire.codec import Message, array_buffer, encode
from livingportrait_wire.errors import BadInput, Cancelled, ProtocolError
from livingportrait_wire.protocol import ACCEPTED, DONE, PROGRESS, RESULT, ErrorCode, Limits

from ..landmarks.smoothing import SmoothingOptions
from ..landmarks.tracking import TrackOptions, open_frames, track_frames


def _images(msg: Message, limits: Limits):
    import cv2

    images = msg.buffers.get("image", [])
    numbers = msg.optional("frames")
    if numbers is None or numbers.shape != (len(images),):
        raise ProtocolError("a detect job with images needs a 'frames' array with one number per image")
    for number, data in zip(numbers.tolist(), images):
        try:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:  # OpenCV refuses a header that declares too many pixels before allocating
            raise BadInput(f"frame {number}: declares more pixels than allowed, or a damaged header",
                           ErrorCode.TOO_LARGE) from None
        if img is None:
            raise BadInput(f"frame {number}: not an image OpenCV can read")
        if img.shape[0] * img.shape[1] > limits.max_image_pixels:
            raise BadInput(f"frame {number}: exceeds the limit of {limits.max_image_pixels} pixels",
                           ErrorCode.TOO_LARGE)
        yield int(number), np.ascontiguousarray(img[:, :, ::-1])


def _store_footage(msg: Message, path: str, limits: Limits, send: Callable[[list], None],
                   next_part: Callable[[], Message] | None) -> None:
    """Write the job's movie to ``path``: its one ``video`` buffer, or part 0 and then each PART as it
    comes, acknowledging every stored part (PROGRESS "upload") so the client sends the next."""
    parts = msg.header.get("video_parts", 1)
    size = msg.header.get("video_bytes")
    if size is not None and size > limits.max_footage_bytes:
        raise BadInput(f"the footage is {size} bytes; this backend takes at most {limits.max_footage_bytes}",
                       ErrorCode.TOO_LARGE)
    if parts > 1 and next_part is None:
        raise ProtocolError("this job cannot receive footage parts")
    written = 0
    with open(path, "wb") as f:
        for index in range(parts):
            if index:
                part = next_part()
                if part.header["index"] != index:
                    raise ProtocolError(f"footage part {part.header['index']} came where part {index} was due")
            else:
                part = msg
            data = part.one("video")
            written += len(data)
            if size is not None and written > size:
                raise ProtocolError(f"the footage parts hold more than the {size} bytes announced")
            f.write(data)
            if parts > 1:
                send(encode(PROGRESS, msg.id, {"stage": "upload", "done": index + 1, "total": parts}))
    if size is not None and written != size:
        raise ProtocolError(f"the footage parts hold {written} bytes; {size} were announced")


def run_detect_job(msg: Message, limits: Limits, cancel: threading.Event, send: Callable[[list], None],
                   next_part: Callable[[], Message] | None = None) -> None:
    settings = msg.header.get("settings", {})
    face_index = settings.get("face_index", 0)
    if type(face_index) is not int or face_index < 0:
        raise BadInput("face_index must be a whole number, 0 for the largest face")
    smoothing = SmoothingOptions.parse(settings.get("smoothing", 1.0))
    options = TrackOptions(detector=msg.header.get("detector", "mediapipe"), face_index=face_index,
                           smoothing=smoothing)
    detector = options.make_detector()
    with tempfile.TemporaryDirectory(prefix="livingportrait-detect-") as tmp:
        if "video" in msg.buffers:
            path = os.path.join(tmp, "footage")
            _store_footage(msg, path, limits, send, next_part)
            try:
                frames, total = open_frames(path)
            except BadInput:
                raise BadInput("the footage sent is not a video OpenCV can decode; send mp4, mov or avi, "
                               "or the frames as images") from None
            wanted = msg.optional("frames")
            if wanted is not None and wanted.size:
                # Only the frames the client asked for (a clip's range), and no decoding past the last.
                keep = set(int(n) for n in wanted.reshape(-1))
                last = max(keep)
                frames = (f for f in itertools.takewhile(lambda f: f[0] <= last, frames) if f[0] in keep)
                total = len(keep)
        else:
            frames, total = _images(msg, limits), len(msg.buffers.get("image", []))
            if total == 0:
                raise ProtocolError("a detect job needs a 'video' buffer or 'image' buffers")
        send(encode(ACCEPTED, msg.id, {"frames": total}))

        def progress(done: int) -> None:
            if cancel.is_set():
                raise Cancelled("the job was cancelled")
            send(encode(PROGRESS, msg.id, {"stage": "detect", "done": done, "total": max(total, done)}))

        seq = track_frames(frames, detector, options.face_index, options.smoothing, progress, source="footage")
    buffers = [array_buffer("landmarks", seq.landmarks), array_buffer("frames", seq.frames)]
    if seq.confidence is not None:
        buffers.append(array_buffer("confidence", seq.confidence))
    buffers += [array_buffer(name, np.asarray(value)) for name, value in seq.extras.items()]
    send(encode(RESULT, msg.id, {"image_size": list(seq.image_size)}, buffers))
    send(encode(DONE, msg.id, {"frames": len(seq)}))
