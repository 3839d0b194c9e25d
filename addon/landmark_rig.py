"""The landmark rig: an image empty showing the portrait with 68 point empties the artist keyframes.

The parent empty displays the portrait; each child empty (named like its clip track, ``jaw.00`` ...)
sits on the portrait's plane where that landmark is. Keyframing their X/Y locations (in the Graph
Editor or the viewport) is the performance; Z is ignored. The portrait's own landmarks are kept on the
rig (``lp_landmarks``) so Animate need not detect them again.
"""
import bpy
import numpy as np

from .rig_space import local_to_pixels, pixels_to_local
from .track_arrays import TRACK_NAMES
from .wire.errors import BadInput
from .wire.landmarks import LandmarkSequence

RIG_MARKER = "lp_landmark_rig"  # custom property saying "this object is a landmark rig"
POINT_SIZE = 0.008


GAZE_NAMES = ("gaze.right_eye", "gaze.left_eye")  # iris centres of the eye of points 36-41, then 42-47
GAZE_SIZE = 0.012


def _point(name: str, parent, collection, xy, size: float, frame: int):
    """A keyed point empty of the rig at local ``xy`` (X/Y keyed at ``frame``; Z locked)."""
    point = bpy.data.objects.new(name, None)
    point.empty_display_type = "SPHERE"
    point.empty_display_size = size
    point.parent = parent
    point.location = (float(xy[0]), float(xy[1]), 0.0)
    point.lock_location[2] = True
    collection.objects.link(point)
    point.keyframe_insert("location", index=0, frame=frame)
    point.keyframe_insert("location", index=1, frame=frame)
    return point


def create_rig(context, image, landmarks: np.ndarray, name: str = "Landmark Rig", gaze=None):
    """Build the rig for ``image`` from its (68, 2) pixel landmarks and key them at the scene start.

    ``gaze``: optional (2, 2) iris centres in pixels (two more, keyable points). Returns the parent
    object. The rig's objects get a collection of their own under the scene's
    (never the active object's collection, where they would bury the artist's own objects).
    """
    size = (int(image.size[0]), int(image.size[1]))
    collection = bpy.data.collections.new(name)
    context.scene.collection.children.link(collection)
    parent = bpy.data.objects.new(name, None)
    parent.empty_display_type = "IMAGE"
    parent.empty_display_size = 1.0
    parent.data = image
    parent[RIG_MARKER] = True
    parent["lp_image_size"] = list(size)
    parent["lp_landmarks"] = [float(v) for v in np.asarray(landmarks, dtype=np.float64).reshape(-1)]
    collection.objects.link(parent)
    local = pixels_to_local(landmarks, size, parent.empty_display_size)
    frame = context.scene.frame_start
    for i, name_i in enumerate(TRACK_NAMES):
        # The neutral face on the first frame: relative motion measures from here.
        _point(f"{name}.{name_i}", parent, collection, local[i], POINT_SIZE, frame)["lp_index"] = i
    if gaze is not None and np.isfinite(gaze).all():
        # Keyable gaze: the irises, which the warp engine turns the portrait's eyes to follow.
        eyes = pixels_to_local(np.asarray(gaze, np.float64), size, parent.empty_display_size)
        for e, name_e in enumerate(GAZE_NAMES):
            _point(f"{name}.{name_e}", parent, collection, eyes[e], GAZE_SIZE, frame)["lp_gaze"] = e
    return parent


def rig_points(rig) -> list:
    """The rig's 68 point objects in iBUG order; BadInput when the object is not a complete rig."""
    if rig is None or not rig.get(RIG_MARKER):
        raise BadInput("choose a landmark rig made by Create Landmark Rig as the performance")
    points = {int(c["lp_index"]): c for c in rig.children if "lp_index" in c}
    missing = [TRACK_NAMES[i] for i in range(len(TRACK_NAMES)) if i not in points]
    if missing:
        raise BadInput(f"wrong track count: rig {rig.name!r} lacks {len(missing)} of its 68 points "
                       f"({', '.join(missing[:4])}...); create the rig again")
    return [points[i] for i in range(len(TRACK_NAMES))]


def rig_gaze_points(rig) -> list:
    """The rig's two gaze points (right eye, left eye), or [] for a rig without them."""
    eyes = {int(c["lp_gaze"]): c for c in rig.children if "lp_gaze" in c}
    return [eyes[0], eyes[1]] if len(eyes) == 2 else []


def rig_image_size(rig) -> tuple[int, int]:
    w, h = rig["lp_image_size"]
    return int(w), int(h)


def rig_portrait_landmarks(rig) -> np.ndarray:
    """The portrait's own (68, 2) pixel landmarks the rig was built from."""
    return np.asarray(rig["lp_landmarks"], dtype=np.float32).reshape(-1, 2)


def sample_rig(scene, rig, scene_frames: np.ndarray) -> LandmarkSequence:
    """The rig's performance over ``scene_frames``: points in portrait pixels (top-left origin)."""
    points = rig_points(rig)
    size = rig_image_size(rig)
    current = scene.frame_current
    xy = np.empty((len(scene_frames), len(points), 2))
    eyes = rig_gaze_points(rig)
    gaze = np.empty((len(scene_frames), 2, 2))
    try:
        for t, frame in enumerate(scene_frames):
            scene.frame_set(int(frame))  # evaluates the animation, whatever Blender's action layout
            for i, p in enumerate(points):
                xy[t, i] = p.location[0], p.location[1]
            for e, p in enumerate(eyes):
                gaze[t, e] = p.location[0], p.location[1]
    finally:
        scene.frame_set(current)
    pixels = local_to_pixels(xy, size, rig.empty_display_size)
    extras = {}
    if eyes:
        extras["gaze"] = local_to_pixels(gaze, size, rig.empty_display_size).astype(np.float32)
    return LandmarkSequence(pixels.astype(np.float32), np.asarray(scene_frames), size, extras=extras)
