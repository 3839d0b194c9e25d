"""Export Farm Job: the panel's Animate settings as an OpenJD job bundle for a render farm.

Writes into the chosen folder what ``deadline bundle submit FOLDER`` (AWS Deadline Cloud) and
``openjd run FOLDER/template.yaml -p file://FOLDER/openjd_parameters.json`` take:

- ``template.yaml``: the project's Living Portrait job template (shipped inside the extension);
- ``performance.npz``: the performance over the job's frames, numbered by scene frame, whatever its
  source (clip tracks, a landmark rig, a file);
- ``portrait_landmarks.npy`` when a landmark rig of the portrait holds them;
- ``parameter_values.yaml`` (Deadline Cloud's form) and ``openjd_parameters.json`` (``openjd run``'s):
  this job (the portrait by absolute path, the output folder, name, frames, motion settings, engine),
  every path absolute and checked here.

The farm's hosts run ``livingportrait render`` on chunks of the frames; the frames are the ones Animate
would stream (same settings, same job), so a farm render and an Animate resume each other.
"""
import json
import os
import shutil

import bpy
import numpy as np
from bpy.props import IntProperty, StringProperty

from . import job_inputs
from .wire.errors import BadInput
from .wire.landmarks import save_sequence
from .wire.naming import check_name, format_frames

TEMPLATE = os.path.join(os.path.dirname(__file__), "farm_job_template.yaml")
OPENJD_PARAMETERS = "openjd_parameters.json"  # openjd run template.yaml -p file://openjd_parameters.json
DEFAULT_CHUNK = 8


def portrait_path(folder: str, image) -> str:
    """The absolute path of the portrait's file, or where a packed image will be written in ``folder``.
    BadInput when an unpacked image has no file."""
    if image.packed_file is not None:
        name = os.path.basename(bpy.path.abspath(image.filepath)) or f"{bpy.path.clean_name(image.name)}.png"
        return os.path.join(folder, name)
    path = os.path.abspath(bpy.path.abspath(image.filepath, library=image.library))
    if not image.filepath or not os.path.isfile(path):
        raise BadInput(f"missing image: {image.name!r} has no file at {path or '(no path)'}; the farm needs the "
                       "portrait as a file: find or re-link it, or pack it (it is then written beside the job)")
    return path


def bundle_parameters(portrait: str, driver: str, landmarks: str, out_dir: str, name: str, frames: list[int],
                      chunk_size: int, settings) -> list[dict]:
    """The bundle's ``parameterValues`` for a job (``settings``: the job's RenderSettings)."""
    values = {
        "Portrait": portrait, "Driver": driver, "PortraitLandmarks": landmarks, "OutputDir": out_dir,
        "Name": name, "Frames": format_frames(frames), "ChunkSize": int(chunk_size),
        "Mode": settings.mode, "ExpressionScale": float(settings.expression_scale),
        "Regions": ",".join(settings.regions),
        "DriverSmoothing": "" if settings.smoothing is None else repr(float(settings.smoothing)),
        "Engine": settings.engine,
    }
    if settings.engine == "fewshot":
        values["Checkpoint"] = os.path.abspath(settings.fewshot.checkpoint)
        values["FinetuneSteps"] = int(settings.fewshot.finetune_steps)
    elif settings.engine == "bilayer" and settings.bilayer.checkpoint:
        values["Checkpoint"] = os.path.abspath(settings.bilayer.checkpoint)
    return [{"name": k, "value": v} for k, v in values.items()]


def export_bundle(context, folder: str, chunk_size: int = DEFAULT_CHUNK) -> str:
    """Write the job bundle for the scene's Living Portrait settings into ``folder`` (created; '//' is the
    .blend's folder). Returns the folder's absolute path. BadInput says what is missing."""
    settings = context.scene.living_portrait
    if not folder:
        raise BadInput("no folder: choose where to write the farm job")
    if folder.startswith("//") and not bpy.data.filepath:
        raise BadInput(f"farm job folder {folder!r} is relative to the .blend, which is not saved yet; save the "
                       "file or choose an absolute folder")
    folder = os.path.abspath(bpy.path.abspath(folder))
    check_name(settings.sequence_name)
    render_settings = job_inputs.engine_settings(settings)
    images = job_inputs.portrait_images(settings)
    seq = job_inputs.performance(context, settings)
    out_dir = job_inputs.output_folder(context, settings)  # absolute and proven writable
    points = job_inputs.portrait_landmarks(settings)
    portrait = portrait_path(folder, images[0])
    try:
        os.makedirs(folder, exist_ok=True)
        if images[0].packed_file is not None:
            with open(portrait, "wb") as f:
                f.write(job_inputs.image_file_bytes(images[0]))
        driver = os.path.join(folder, "performance.npz")
        save_sequence(seq, driver)
        landmarks = ""
        if points is not None:
            landmarks = os.path.join(folder, "portrait_landmarks.npy")
            np.save(landmarks, np.asarray(points, np.float32))
        values = bundle_parameters(portrait, driver, landmarks, out_dir, settings.sequence_name,
                                   [int(f) for f in seq.frames], chunk_size, render_settings)
        shutil.copyfile(TEMPLATE, os.path.join(folder, "template.yaml"))
        # JSON is YAML: no YAML library is needed inside Blender. Deadline Cloud reads the bundle's
        # parameter_values.yaml (a list); `openjd run` takes a {name: value} file.
        with open(os.path.join(folder, "parameter_values.yaml"), "w", encoding="utf-8") as f:
            f.write("# Written by Living Portrait's Export Farm Job for: deadline bundle submit THIS_FOLDER\n")
            f.write(json.dumps({"parameterValues": values}, indent=2) + "\n")
        with open(os.path.join(folder, OPENJD_PARAMETERS), "w", encoding="utf-8") as f:
            json.dump({v["name"]: v["value"] for v in values}, f, indent=2)
            f.write("\n")
    except OSError as exc:
        raise BadInput(f"{exc.filename or folder}: cannot write the farm job ({exc.strerror}); choose a folder "
                       "you can write to") from None
    return folder


class LIVINGPORTRAIT_OT_export_farm_job(bpy.types.Operator):
    """Write an OpenJD job bundle of the Animate settings, for `deadline bundle submit` or `openjd run`"""

    bl_idname = "living_portrait.export_farm_job"
    bl_label = "Export Farm Job"
    bl_options = {"REGISTER"}

    directory: StringProperty(name="Folder", subtype="DIR_PATH",
                              description="Folder the job bundle is written into")
    chunk_size: IntProperty(name="Frames per Task", default=DEFAULT_CHUNK, min=1, max=150,
                            description="Frames each farm task renders (Deadline Cloud allows up to 150)")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            folder = export_bundle(context, self.directory, self.chunk_size)
        except BadInput as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        self.report({"INFO"}, f"farm job written to {folder}: submit with `deadline bundle submit {folder}`")
        return {"FINISHED"}


def register():
    bpy.utils.register_class(LIVINGPORTRAIT_OT_export_farm_job)


def unregister():
    bpy.utils.unregister_class(LIVINGPORTRAIT_OT_export_farm_job)
