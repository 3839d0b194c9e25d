"""The panel's settings (saved with the .blend, per scene) and a running job's state (per session)."""
import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

SOURCES = (
    ("CLIP", "Clip Tracks", "The 68 landmark tracks on a movie clip (detected on an actor, or your own)"),
    ("RIG", "Landmark Rig", "A landmark rig object whose 68 points you keyframe by hand"),
    ("FILE", "Performance File", "A .npz landmark performance file"),
)
ENGINES = (
    ("warp", "Warp", "Classical landmark-driven warp: no weights needed, fast on any machine"),
    ("fewshot", "Few-Shot", "The neural talking-head model (needs its weights on the backend)"),
    ("bilayer", "Bi-layer", "The lab's one-shot bi-layer model (needs its converted public weights on the backend)"),
)
# Stable numbers, so a saved scene keeps its choice while the list shown changes with the backend.
ENGINE_NUMBERS = {"warp": 0, "fewshot": 1, "bilayer": 2}
# Engines listed only when the backend's handshake offers them (Bi-layer needs converted weights there).
OFFERED_ONLY = {"bilayer"}
_engine_items_shown = []  # Blender keeps no reference to a dynamic enum's strings: this list does


def engine_items(settings, context):
    """The Engine choices: Warp and Few-Shot always; Bi-layer when the last handshake offered it, or
    when the scene already holds it (the problems list then says the backend does not offer it)."""
    offered = set()
    wm = getattr(context, "window_manager", None) if context is not None else None
    if wm is not None and hasattr(wm, "living_portrait_job"):
        offered = set(filter(None, wm.living_portrait_job.offered_engines.split(",")))
    held = settings.get("engine") if settings is not None else None
    _engine_items_shown[:] = [
        (ident, name, desc, "", ENGINE_NUMBERS[ident]) for ident, name, desc in ENGINES
        if ident not in OFFERED_ONLY or ident in offered or held == ENGINE_NUMBERS[ident]]
    return _engine_items_shown


MOTION_MODES = (
    ("relative", "Relative", "Transfer the performance's motion, keep the portrait's face shape"),
    ("absolute", "Absolute", "Use the performance's face shape, aligned to the portrait"),
)
REGIONS = (
    ("pose", "Pose", "Head position, rotation and scale"),
    ("expression", "Expression", "All non-rigid face motion"),
    ("eyes", "Eyes", "Blinks and eye motion"),
    ("brows", "Brows", "Eyebrow motion"),
    ("mouth", "Mouth", "Lips"),
    ("jaw", "Jaw", "Jaw line"),
)
DETECTORS = (
    ("mediapipe", "MediaPipe", "Offline detector bundled with the backend"),
    ("fan", "FAN", "face-alignment, the paper's detector (needs its weights on the backend)"),
)


class LIVINGPORTRAIT_PG_portrait(bpy.types.PropertyGroup):
    image: PointerProperty(name="Image", type=bpy.types.Image,
                           description="A photo or painting of the face to animate")


class LIVINGPORTRAIT_PG_settings(bpy.types.PropertyGroup):
    portraits: CollectionProperty(type=LIVINGPORTRAIT_PG_portrait,
                                  description="1 to 32 images of the same face; the first is animated")
    portrait_index: IntProperty(default=0)
    source: EnumProperty(name="Performance", items=SOURCES, default="CLIP")
    clip: PointerProperty(name="Clip", type=bpy.types.MovieClip,
                          description="Movie clip of the actor, holding (or receiving) the landmark tracks")
    tracking_object: StringProperty(name="Tracking Object", default="Face",
                                    description="Tracking object of the clip that holds the 68 landmark "
                                                "tracks (empty: the camera's tracks)")
    rig: PointerProperty(name="Rig", type=bpy.types.Object,
                         description="Landmark rig made by Create Landmark Rig")
    performance_file: StringProperty(name="File", subtype="FILE_PATH",
                                     description="A .npz landmark performance (landmarks [T,68,2], frames [T])")
    file_start_frame: IntProperty(name="Starts at", default=1,
                                  description="Scene frame on which the file's first sample lands")
    detector: EnumProperty(name="Detector", items=DETECTORS, default="mediapipe")
    face_index: IntProperty(name="Face", default=0, min=0, max=31,
                            description="Which face when several are in frame (0 = the largest)")
    engine: EnumProperty(name="Engine", items=engine_items, default=ENGINE_NUMBERS["warp"])
    motion_mode: EnumProperty(name="Motion", items=MOTION_MODES, default="relative")
    smoothing: FloatProperty(name="Smoothing", default=1.0, min=0.0, max=100.0, soft_max=4.0,
                             description="Temporal smoothing of landmarks, when detecting and animating "
                                         "(0 = off, 1 = default, higher = steadier)")
    expression_scale: FloatProperty(name="Expression Strength", default=1.0, min=0.0, max=10.0,
                                    description="Multiplies the expression motion (0 freezes the face)")
    regions: EnumProperty(name="Regions", items=REGIONS, options={"ENUM_FLAG"},
                          default={"pose", "expression"}, description="Which parts of the motion transfer")
    finetune_steps: IntProperty(name="Fine-Tune Steps", default=0, min=0, max=10000,
                                description="Few-shot fine-tuning steps on the portraits (Few-Shot engine)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH",
                               description="The Few-Shot model (a folder of trained weights) or the Bi-layer "
                                           "converted weights (empty: the backend's own), as the backend's "
                                           "machine sees it")
    def engine_name(self) -> str:
        """The chosen engine as the panel names it (e.g. "Bi-layer")."""
        return next((name for ident, name, _ in ENGINES if ident == self.engine), self.engine)

    use_scene_range: BoolProperty(name="Scene Frame Range", default=True,
                                  description="Animate the scene's frame range")
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=48, min=0)
    output_dir: StringProperty(name="Output", subtype="DIR_PATH", default="",
                               description="Folder for the EXR frames (empty: the preferences' default)")
    sequence_name: StringProperty(name="Name", default="portrait",
                                  description="File name stem: NAME.####.exr")
    plate: PointerProperty(name="Plate", type=bpy.types.MovieClip,
                           description="The plate's movie clip, holding the plane track (empty: the actor's "
                                       "clip above)")
    plane_track: StringProperty(name="Plane Track", default="",
                                description="Plane track of the plate (camera tracks) to pin the animation onto")


class LIVINGPORTRAIT_PG_job(bpy.types.PropertyGroup):
    """A running job as the panel and status bar draw it (not saved with the file)."""

    running: BoolProperty(default=False)
    kind: StringProperty(default="")
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    message: StringProperty(default="")
    cancel_requested: BoolProperty(default=False)
    backend_status: StringProperty(default="Not checked")
    # The engines the last handshake offered, comma-separated ("" = not asked yet): the Engine list.
    offered_engines: StringProperty(default="")


_classes = (LIVINGPORTRAIT_PG_portrait, LIVINGPORTRAIT_PG_settings, LIVINGPORTRAIT_PG_job)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.living_portrait = PointerProperty(type=LIVINGPORTRAIT_PG_settings)
    bpy.types.WindowManager.living_portrait_job = PointerProperty(type=LIVINGPORTRAIT_PG_job)


def unregister():
    del bpy.types.WindowManager.living_portrait_job
    del bpy.types.Scene.living_portrait
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
