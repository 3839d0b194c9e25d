"""Landmark tracks on a movie clip: write a detected performance as tracks, read tracks back.

Tracks live in a tracking object of the clip (``Face`` by default, created when missing) so they stay
apart from camera and plane tracks. Marker frames are clip frames; the performance's are scene frames.
"""
import numpy as np

from . import frame_mapping
from .track_arrays import (TRACK_NAMES, landmark_track_order, markers_from_sequence, normalized_to_pixels,
                           pixels_to_normalized, sequence_from_markers)
from .wire.errors import BadInput

DEFAULT_OBJECT = "Face"
# The detector's iris centres (when it sees them), as two more tracks: eye of points 36-41, then 42-47.
GAZE_TRACKS = ("gaze.right_eye", "gaze.left_eye")


def tracking_object(clip, name: str, create: bool):
    """The clip's tracking object ``name`` (the camera object when ``name`` is empty)."""
    tracking = clip.tracking
    if not name:
        return next(o for o in tracking.objects if o.is_camera)
    obj = tracking.objects.get(name)
    if obj is None:
        if not create:
            raise BadInput(f"clip {clip.name!r} has no tracking object {name!r}; run Detect Landmarks or "
                           "choose the object that holds the 68 landmark tracks")
        obj = tracking.objects.new(name)
    return obj


def clip_size(clip) -> tuple[int, int]:
    w, h = int(clip.size[0]), int(clip.size[1])
    if w <= 0 or h <= 0:
        raise BadInput(f"clip {clip.name!r}: its footage could not be read ({clip.filepath}); check the file path")
    return w, h


def faceless_message(scene_frames, clip_spans: str) -> str:
    """What Detect says about frames where no face was found."""
    return (f"no face found on {len(scene_frames)} frame(s): scene frames "
            f"{frame_mapping.format_spans(scene_frames)} (clip frames {clip_spans}); their markers are "
            "disabled at in-between positions: place them (or enable them to keep those positions), "
            "or narrow the frame range")


# Pattern and search boxes follow the face: the pattern a fraction of the face's width (so boxes of
# neighbouring points overlap little even on a small face), the search area a few patterns across
# (room for the motion between two frames). Pixels.
PATTERN_OF_FACE = 0.07
PATTERN_MIN_PX, PATTERN_MAX_PX = 7, 61
SEARCH_OF_PATTERN = 3.0


def box_sizes(seq) -> tuple[float, float]:
    """The (pattern, search) side lengths in pixels for tracks of ``seq``'s face (its median width)."""
    width = float(np.median(np.ptp(seq.landmarks[:, :, 0], axis=1))) if len(seq) else 0.0
    pattern = float(np.clip(round(width * PATTERN_OF_FACE) | 1, PATTERN_MIN_PX, PATTERN_MAX_PX))
    return pattern, pattern * SEARCH_OF_PATTERN


def _set_boxes(marker, pattern: tuple[float, float], search: tuple[float, float]) -> None:
    """A marker's pattern (corners) and search area, in clip-normalised units around its position."""
    px, py = pattern[0] / 2, pattern[1] / 2
    marker.pattern_corners = ((-px, -py), (px, -py), (px, py), (-px, py))
    marker.search_min = (-search[0] / 2, -search[1] / 2)
    marker.search_max = (search[0] / 2, search[1] / 2)


def write_tracks(clip, seq, object_name: str = DEFAULT_OBJECT) -> np.ndarray:
    """Put ``seq`` (scene frames, pixels in the clip's frame) on the clip as 68 named tracks.

    Tracks are ordinary tracks Blender's tracker can refine: pattern and search boxes sized from the
    face. The iris centres, when the detector saw them (``extras['gaze']``), become two more tracks
    (GAZE_TRACKS). Existing landmark tracks of the same names are reused: their markers inside the sequence's
    span of frames are replaced, markers outside it (earlier detections, hand fixes) are kept. Frames
    where the detector found no face (confidence 0) get disabled markers. Returns those scene frames.
    """
    obj = tracking_object(clip, object_name, create=True)
    co = markers_from_sequence(seq)
    clip_frames = frame_mapping.scene_to_clip(seq.frames.astype(np.int64), clip.frame_start)
    first, last = int(clip_frames.min()), int(clip_frames.max())
    wanted = set(int(f) for f in clip_frames)
    faceless = np.zeros(len(seq), bool)
    if seq.confidence is not None:
        faceless = ~(np.asarray(seq.confidence).reshape(len(seq), -1) > 0).any(axis=1)
    w, h = seq.image_size
    pattern_px, search_px = box_sizes(seq)
    pattern, search = (pattern_px / w, pattern_px / h), (search_px / w, search_px / h)
    existing = {t.name: t for t in obj.tracks}
    names, points = list(TRACK_NAMES), co
    gaze = seq.extras.get("gaze")
    if gaze is not None and np.isfinite(gaze).all():
        names += list(GAZE_TRACKS)
        points = np.concatenate([co, pixels_to_normalized(gaze, seq.image_size).transpose(1, 0, 2)])
    for i, name in enumerate(names):
        track = existing.get(name)
        if track is None:
            track = obj.tracks.new(name=name, frame=int(clip_frames[0]))
            track.name = name  # new() may add a suffix when the name was used before
        # Frame numbers first, then deletes: a marker reference is not used after any removal.
        stale = [m.frame for m in track.markers]
        for frame in stale:
            if first <= frame <= last and frame not in wanted:
                track.markers.delete_frame(frame)
        for t, frame in enumerate(clip_frames):
            marker = track.markers.insert_frame(int(frame), co=(float(points[i, t, 0]), float(points[i, t, 1])))
            marker.mute = bool(faceless[t])
            _set_boxes(marker, pattern, search)
    return np.asarray(seq.frames)[faceless]


def read_tracks(clip, object_name: str, scene_frames: np.ndarray):
    """The landmark performance over ``scene_frames`` from the clip's tracks, in the clip's pixels.

    Raises BadInput for a wrong track count or for gaps (no enabled marker at a frame).
    """
    obj = tracking_object(clip, object_name, create=False)
    tracks = list(obj.tracks)
    order = landmark_track_order([t.name for t in tracks])
    clip_frames = frame_mapping.scene_to_clip(np.asarray(scene_frames, dtype=np.int64), clip.frame_start)
    co = np.full((len(order), len(clip_frames), 2), np.nan)
    for i, pos in enumerate(order):
        track = tracks[pos]
        for t, frame in enumerate(clip_frames):
            marker = track.markers.find_frame(int(frame), exact=True)
            if marker is not None and not marker.mute:
                co[i, t] = marker.co
    names = tuple(tracks[pos].name for pos in order)
    seq = sequence_from_markers(co, np.asarray(scene_frames), clip_size(clip), names)
    gaze = _read_gaze(obj, clip_frames, clip_size(clip))
    if gaze is not None:
        seq.extras["gaze"] = gaze
    return seq


def _read_gaze(obj, clip_frames, size):
    """The two gaze tracks as iris centres float32 [T, 2, 2] pixels, when both have an enabled marker on
    every frame (gaze is optional: the engine keeps the portrait's own eyes without it)."""
    found = [obj.tracks.get(name) for name in GAZE_TRACKS]
    if any(t is None for t in found):
        return None
    co = np.full((2, len(clip_frames), 2), np.nan)
    for e, track in enumerate(found):
        for t, frame in enumerate(clip_frames):
            marker = track.markers.find_frame(int(frame), exact=True)
            if marker is None or marker.mute:
                return None
            co[e, t] = marker.co
    return normalized_to_pixels(co, size).transpose(1, 0, 2).astype(np.float32)
