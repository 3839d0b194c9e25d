"""Landmark tracks on a movie clip: write a detected performance as tracks, read tracks back.

Tracks live in a tracking object of the clip (``Face`` by default, created when missing) so they stay
apart from camera and plane tracks. Marker frames are clip frames; the performance's are scene frames.
"""
import numpy as np

from . import frame_mapping
from .track_arrays import TRACK_NAMES, landmark_track_order, markers_from_sequence, sequence_from_markers
from .wire.errors import BadInput

DEFAULT_OBJECT = "Face"


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


def write_tracks(clip, seq, object_name: str = DEFAULT_OBJECT) -> None:
    """Put ``seq`` (scene frames, pixels in the clip's frame) on the clip as 68 named tracks.

    Existing landmark tracks of the same names are reused and their markers replaced, so Detect can be
    run again; frames the sequence lacks stay without markers.
    """
    obj = tracking_object(clip, object_name, create=True)
    co = markers_from_sequence(seq)
    clip_frames = frame_mapping.scene_to_clip(seq.frames.astype(np.int64), clip.frame_start)
    existing = {t.name: t for t in obj.tracks}
    for i, name in enumerate(TRACK_NAMES):
        track = existing.get(name)
        if track is None:
            track = obj.tracks.new(name=name, frame=int(clip_frames[0]))
            track.name = name  # new() may add a suffix when the name was used before
        for marker in list(track.markers):
            if marker.frame not in clip_frames:
                track.markers.delete_frame(marker.frame)
        for t, frame in enumerate(clip_frames):
            marker = track.markers.insert_frame(int(frame), co=(float(co[i, t, 0]), float(co[i, t, 1])))
            marker.mute = False


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
    return sequence_from_markers(co, np.asarray(scene_frames), clip_size(clip), names)
