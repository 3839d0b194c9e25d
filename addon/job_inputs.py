"""What a job needs, gathered from the scene: portrait files, the performance, settings, output folder.

Every problem becomes a BadInput the operator reports: a missing image, an unsaved .blend with a
relative output folder, a performance with gaps or the wrong number of points.
"""
import os

import bpy
import numpy as np

from . import clip_tracks, frame_mapping, landmark_rig, preferences, properties
from .wire.errors import BadInput
from .wire.frame_writer import ensure_output_folder
from .wire.landmarks import load_sequence
from .wire.protocol import Limits
from .wire.render_settings import BilayerOptions, FewShotOptions, RenderSettings

MAX_PORTRAITS = Limits().max_portraits


def frame_range(scene, settings) -> tuple[int, int]:
    return frame_mapping.job_frame_range(settings.use_scene_range, (scene.frame_start, scene.frame_end),
                                         (settings.frame_start, settings.frame_end))


def clip_scene_span(clip) -> tuple[int, int]:
    """The scene frames a clip shows footage on (first, last)."""
    return int(clip.frame_start), int(clip.frame_start + clip.frame_duration - 1)


def check_range_in_clip(scene, settings, clip) -> None:
    """BadInput when the job's frame range runs past the clip's footage: the first mistake a new user
    meets (the scene's 1-250 against a short clip), said plainly, with the button that fixes it."""
    first, last = frame_range(scene, settings)
    start, end = clip_scene_span(clip)
    if first < start or last > end:
        where = f"ends at scene frame {end}" if last > end else f"starts at scene frame {start}"
        raise BadInput(f"clip {clip.name!r} {where} (it covers scene frames {start}-{end}) but the frame "
                       f"range is {first}-{last}; click Set Range to Clip, or move the clip")


def image_file_bytes(image) -> bytes:
    """The encoded file (PNG, JPEG, EXR, ...) behind a Blender image: packed data or the file on disk."""
    if image.packed_file is not None:
        return bytes(image.packed_file.data)
    path = bpy.path.abspath(image.filepath, library=image.library)
    if not image.filepath or not os.path.isfile(path):
        raise BadInput(f"missing image: {image.name!r} has no file at {path or '(no path)'}; "
                       "find or re-link the file (File > External Data > Find Missing Files) or pack it")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise BadInput(f"image {image.name!r}: cannot read {path} ({exc.strerror}); check the file's "
                       "permissions or pack the image") from None


def portrait_images(settings) -> list:
    images = [item.image for item in settings.portraits if item.image is not None]
    if not images:
        raise BadInput("no portrait: add at least one image of the face to animate in the Portrait list")
    if len(images) > MAX_PORTRAITS:
        raise BadInput(f"{len(images)} portraits given; use at most {MAX_PORTRAITS} images of the same face")
    return images


def portrait_files(settings) -> list[bytes]:
    return [image_file_bytes(image) for image in portrait_images(settings)]


def performance(context, settings):
    """The driver landmark sequence over the job's frame range, frames numbered by scene frame."""
    scene = context.scene
    first, last = frame_range(scene, settings)
    frames = np.arange(first, last + 1)
    if settings.source == "CLIP":
        if settings.clip is None:
            raise BadInput("no clip: choose the movie clip that holds the landmark tracks")
        check_range_in_clip(scene, settings, settings.clip)
        return clip_tracks.read_tracks(settings.clip, settings.tracking_object, frames)
    if settings.source == "RIG":
        return landmark_rig.sample_rig(scene, settings.rig, frames)
    if not settings.performance_file:
        raise BadInput("no performance file: choose a .npz landmark performance")
    seq = load_sequence(bpy.path.abspath(settings.performance_file))
    seq.frames = frame_mapping.shift_frames(seq.frames, settings.file_start_frame)
    return seq.select(first, last)


def portrait_landmarks(settings):
    """The portrait's own landmarks when a landmark rig of the same image already holds them."""
    rig = settings.rig
    if settings.source == "RIG" and rig is not None and rig.get(landmark_rig.RIG_MARKER):
        if rig.data is portrait_images(settings)[0]:
            return landmark_rig.rig_portrait_landmarks(rig)
    return None


def engine_settings(settings) -> RenderSettings:
    """The job's RenderSettings, from the panel (BadInput naming what is wrong)."""
    regions = [item[0] for item in properties.REGIONS if item[0] in settings.regions]
    if not regions:
        raise BadInput("no regions: tick at least one of Pose, Expression, Eyes, Brows, Mouth, Jaw")
    fewshot = FewShotOptions()
    if settings.engine == "fewshot":
        if not settings.checkpoint.strip():
            raise BadInput("the Few-Shot engine needs its model: set Checkpoint to a folder of "
                           "trained weights (as the backend's machine sees it), or choose the Warp engine")
        # A '//' path is this .blend's folder: only meaningful to a backend on this machine.
        path = settings.checkpoint
        fewshot = FewShotOptions(checkpoint=bpy.path.abspath(path) if path.startswith("//") else path,
                                 finetune_steps=int(settings.finetune_steps))
    bilayer = BilayerOptions()
    if settings.engine == "bilayer" and settings.checkpoint.strip():  # else the backend's own MODELS/bilayer
        path = settings.checkpoint
        bilayer = BilayerOptions(checkpoint=bpy.path.abspath(path) if path.startswith("//") else path)
    return RenderSettings(engine=settings.engine, mode=settings.motion_mode,
                          expression_scale=float(settings.expression_scale), regions=tuple(regions),
                          smoothing=float(settings.smoothing), fewshot=fewshot, bilayer=bilayer)


def output_folder(context, settings) -> str:
    """Absolute output folder; a '//' path needs the .blend saved first."""
    raw = settings.output_dir or preferences.get(context).default_output
    if raw.startswith("//") and not bpy.data.filepath:
        raise BadInput(f"output folder {raw!r} is relative to the .blend, which is not saved yet; save the "
                       "file or choose an absolute output folder")
    path = os.path.abspath(bpy.path.abspath(raw))
    ensure_output_folder(path)
    return path
