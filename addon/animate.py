"""Animate: send the portrait and the performance to the backend; frames stream into the compositor."""
import time

import bpy

from . import compositor, frame_mapping, job_inputs, validation
from .job_runner import JobDriver, StreamOperatorMixin, job_driver, job_state
from .wire.client import FrameWritten, RenderJob

REFRESH_INTERVAL_S = 0.5  # re-evaluating the compositor on every frame would thrash it


class AnimateHandler:
    """Wires the sequence into the compositor when its first frame lands, then refreshes it as frames
    land (at most every REFRESH_INTERVAL_S, and once at the end)."""

    def __init__(self, scene, first_file: str, timing: frame_mapping.SequenceTiming):
        self.scene, self.first_file, self.timing = scene, first_file, timing
        self.node = None
        self.last_refresh = 0.0

    def on_events(self, events) -> None:
        landed = [e for e in events if isinstance(e, FrameWritten)]
        if not landed:
            return
        if self.node is None:
            # Blender swaps the frame number into whichever file of the sequence it is given.
            self.node = compositor.show_sequence(self.scene, landed[0].path, self.timing)
            self.last_refresh = time.monotonic()
        elif time.monotonic() - self.last_refresh > REFRESH_INTERVAL_S:
            compositor.refresh_sequence(self.scene)
            self.last_refresh = time.monotonic()

    def on_done(self, results) -> None:
        if self.node is None:
            self.node = compositor.show_sequence(self.scene, self.first_file, self.timing)
        compositor.refresh_sequence(self.scene)


def start_animate(context) -> JobDriver:
    """The render job built from the panel's settings, in a driver (``start()`` runs it on a worker
    thread, ``run_blocking()`` here)."""
    scene = context.scene
    settings = scene.living_portrait
    first, last = job_inputs.frame_range(scene, settings)
    driver_seq = job_inputs.performance(context, settings)
    job = RenderJob(portraits=job_inputs.portrait_files(settings), driver=driver_seq,
                    out_dir=job_inputs.output_folder(context, settings), name=settings.sequence_name,
                    engine=settings.engine, settings=job_inputs.engine_settings(settings),
                    frame_range=(first, last), portrait_landmarks=job_inputs.portrait_landmarks(settings),
                    portrait_names=[image.name for image in job_inputs.portrait_images(settings)])
    files = (int(driver_seq.frames[0]), int(driver_seq.frames[-1]))
    timing = frame_mapping.sequence_timing(files[0], files[1], first_scene_frame=files[0])
    handler = AnimateHandler(scene, compositor.first_file_path(job.out_dir, job.name, files[0]), timing)
    return job_driver(context, job, handler, "Animate")


class LIVINGPORTRAIT_OT_animate(StreamOperatorMixin, bpy.types.Operator):
    """Animate the portrait with the performance; EXR frames stream into the compositor"""

    bl_idname = "living_portrait.animate"
    bl_label = "Animate"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        # Greyed out while a problem the panel lists stands (its text is the button's tooltip).
        return not job_state(context).running and validation.poll_job(cls, context, "animate")

    def start_job(self, context):
        return start_animate(context)


def register():
    bpy.utils.register_class(LIVINGPORTRAIT_OT_animate)


def unregister():
    bpy.utils.unregister_class(LIVINGPORTRAIT_OT_animate)
