"""Turning a decoded SUBMIT message into a job the backend can run, with every field checked.

Cheap structural checks happen here, on the socket thread; decoding images happens later on a worker.
Everything wrong raises a LivingPortraitError whose code goes back to the client in an ERROR message.
"""
from __future__ import annotations


from livingportrait_wire.codec import Message
from livingportrait_wire.errors import ProtocolError
from livingportrait_wire.landmarks import LandmarkSequence, check_points
from livingportrait_wire.naming import check_name
from livingportrait_wire.protocol import ErrorCode, Limits
from livingportrait_wire.render_settings import RenderSettings

from ..frame_renderer import RenderSpec
from ..images import decode_portrait

DEFAULT_WINDOW = 4


def _int_pair(value, field: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(type(v) is int for v in value)):
        raise ProtocolError(f"submit field '{field}' must be a list of two integers")
    return value[0], value[1]


def credit_window(msg: Message, limits: Limits) -> int:
    window = msg.header.get("window", DEFAULT_WINDOW)
    if not 1 <= window <= limits.max_credit_window:
        raise ProtocolError(f"submit field 'window' must be within 1-{limits.max_credit_window}")
    return window


def driver_from_message(msg: Message, limits: Limits) -> LandmarkSequence:
    """The performance carried by a SUBMIT (buffers landmarks, frames, optional confidence)."""
    landmarks, frames = msg.one("landmarks"), msg.one("frames")
    # A wrong shape is LandmarkSequence's to explain; here only the count limit.
    if landmarks.ndim == 3 and landmarks.shape[0] > limits.max_frames_per_job:
        raise ProtocolError(f"a job may hold at most {limits.max_frames_per_job} frames", ErrorCode.LIMIT)
    size = _int_pair(msg.header.get("image_size"), "image_size")
    extras = {k: msg.optional(k) for k in ("gaze", "mouth", "mouth_lips")}
    return LandmarkSequence(landmarks, frames, size, msg.optional("confidence"),
                            {k: v for k, v in extras.items() if v is not None})


def settings_from_header(header: dict) -> RenderSettings:
    """The job's RenderSettings, checked once here, at the door: BadInput naming every bad field.
    Old clients sent a flat dict with the engine (and no detector) beside it in the header."""
    raw = header.get("settings", {})
    if isinstance(raw, dict) and "detector" in header and "detector" not in raw:
        raw = {**raw, "detector": header["detector"]}
    return RenderSettings.from_dict(raw, engine=header.get("engine"))


def render_spec_from_message(msg: Message, limits: Limits) -> RenderSpec:
    """Validate a render SUBMIT and decode its portraits. BadInput / ProtocolError on any problem."""
    h = msg.header
    settings = settings_from_header(h)
    portraits = msg.buffers.get("portrait", [])
    if not 1 <= len(portraits) <= limits.max_portraits:
        raise ProtocolError(f"a render job needs 1-{limits.max_portraits} 'portrait' buffers, got {len(portraits)}")
    if any(not isinstance(p, memoryview) for p in portraits):  # bytes buffers decode as views
        raise ProtocolError("'portrait' buffers must be encoded image bytes")
    driver = driver_from_message(msg, limits)
    frame_range = _int_pair(h["frame_range"], "frame_range") if h.get("frame_range") is not None else None
    points = msg.optional("portrait_landmarks")
    if points is not None:
        points = check_points(points, "portrait_landmarks")
    name = check_name(h.get("name", "portrait"))
    names = h.get("portrait_names")
    labels = names if isinstance(names, list) and len(names) == len(portraits) else [
        f"portrait {i + 1}" for i in range(len(portraits))]
    decoded = [decode_portrait(data, str(label), limits) for data, label in zip(portraits, labels)]
    return RenderSpec(portraits=decoded, driver=driver, name=name, settings=settings, frame_range=frame_range,
                      portrait_landmarks=points)
