"""Operators besides Animate: detect landmarks on a clip, create a landmark rig, cancel, the local
backend, pinning to a plane track, and the portrait list."""
import atexit
import os
import threading

import bpy
import numpy as np

from . import (clip_tracks, compositor, connection, frame_mapping, job_inputs, landmark_rig, local_backend,
               preferences, validation)
from .job_runner import TIMER_INTERVAL_S, JobDriver, StreamOperatorMixin, job_driver, job_state, redraw_ui
from .ui_text import for_artist
from .wire.client import DetectJob
from .wire.errors import BadInput, LivingPortraitError
from .wire.landmarks import LandmarkSequence
from .wire.protocol import Limits


class _ResultHandler:
    """Keeps the jobs' results; ``apply(results)`` runs once they are all done."""

    def __init__(self, apply):
        self.apply = apply

    def on_events(self, events) -> None:
        pass  # progress is mirrored by the driver; only the final result matters here

    def on_done(self, results) -> None:
        self.apply(results)


def _reader(path: str, clip):
    """A bpy-free reader for one footage file, run on the job's worker thread (never Blender's main
    thread): a long movie takes seconds to read."""
    def read() -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise BadInput(f"clip {clip_name!r}: cannot read {path} ({exc.strerror or exc})") from None
    clip_name = clip.name
    return read


def _chunks(sizes: list[int], limits: Limits) -> list[slice]:
    """Consecutive slices of the files whose sizes are ``sizes``, each within one message's limits: at
    most ``max_buffers - 1`` images (the frame numbers take a buffer) and ``max_message_bytes`` in all,
    with room for the header."""
    per_message = limits.max_buffers - 1
    budget = limits.max_message_bytes - limits.max_header_bytes - 1024 * 1024
    spans, start, used = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= per_message or used + size > budget):
            spans.append(slice(start, i))
            start, used = i, 0
        used += size
    spans.append(slice(start, len(sizes)))
    return spans


def detect_jobs(clip, clip_frames, settings, limits: Limits = Limits()):
    """The detect jobs for ``clip_frames`` (as callables that read the footage off the main thread), the
    frames each answers for, and the footage frame numbers they answer with.

    An image sequence sends only the files of those frames, in as many jobs as the wire's limits need
    (one message holds at most ``max_buffers - 1`` images); a movie goes as one job with the frame
    numbers to track (counted from 1), its file sent in parts within the wire's buffer limit. Smoothing is left to Animate (which smooths the performance it
    reads from the tracks), so the tracks are the detector's own points, the same whether the range
    took one job or ten, and an artist refines what was seen rather than a filtered curve.
    """
    options = dict(detector=settings.detector, face_index=settings.face_index, settings={"smoothing": "off"})
    path = bpy.path.abspath(clip.filepath, library=clip.library)
    if clip.source == "MOVIE":
        if not os.path.isfile(path):
            raise BadInput(f"clip {clip.name!r}: no footage file at {path}; re-link the clip's footage")
        footage = frame_mapping.clip_to_footage_frame(clip_frames, clip.frame_offset)
        frames = [int(f) for f in footage]
        # The movie goes from its file in parts, read on the job's thread: any size, little memory.
        return [DetectJob(video_path=path, frames=frames, **options)], [len(frames)], footage
    files = [frame_mapping.sequence_file(path, c, clip.frame_offset) for c in clip_frames]
    missing = [number for number, p in files if not os.path.isfile(p)]
    if missing:
        raise BadInput(f"clip {clip.name!r}: no footage file for frame(s) {frame_mapping.format_spans(missing)} "
                       f"(looked for {files[0][1]} and on); re-link the clip's footage or narrow the frame range")
    footage = np.array([number for number, _ in files])
    jobs, counts = [], []
    for span in _chunks([os.path.getsize(p) for _, p in files], limits):
        readers = [_reader(p, clip) for _, p in files[span]]
        numbers = footage[span].tolist()
        jobs.append(lambda readers=readers, numbers=numbers: DetectJob(
            images=[read() for read in readers], frames=numbers, **options))
        counts.append(len(numbers))
    return jobs, counts, footage


def _merge(results) -> LandmarkSequence:
    """One sequence from the chunks' results (in footage order)."""
    if len(results) == 1:
        return results[0]
    confidence = None if any(r.confidence is None for r in results) else np.concatenate(
        [r.confidence for r in results])
    extras = {}
    if all("gaze" in r.extras for r in results):
        extras["gaze"] = np.concatenate([r.extras["gaze"] for r in results])
    return LandmarkSequence(np.concatenate([r.landmarks for r in results]),
                            np.concatenate([r.frames for r in results]), results[0].image_size, confidence,
                            extras)


def start_detect(context) -> JobDriver:
    """Send the clip's frames over the job's frame range to the backend's detector; the 68 points
    come back as tracks on the clip (scene frames mapped to clip and footage frames)."""
    scene = context.scene
    settings = scene.living_portrait
    clip = settings.clip
    if clip is None:
        raise BadInput("no clip: choose the movie clip of the actor first")
    first, last = job_inputs.frame_range(scene, settings)
    scene_frames = np.arange(first, last + 1)
    clip_frames = frame_mapping.scene_to_clip(scene_frames, clip.frame_start)
    # Only frames the clip has footage for.
    keep = (clip_frames >= 1) & (clip_frames <= clip.frame_duration)
    if not keep.any():
        raise BadInput(f"clip {clip.name!r} shows no footage in scene frames {first}-{last} (it covers scene "
                       f"frames {clip.frame_start}-{clip.frame_start + clip.frame_duration - 1}); move the "
                       "clip or change the frame range")
    all_frames = keep
    scene_frames, clip_frames = scene_frames[keep], clip_frames[keep]
    jobs, counts, footage = detect_jobs(clip, clip_frames, settings)
    to_scene = dict(zip(footage.tolist(), scene_frames.tolist()))
    object_name = settings.tracking_object or clip_tracks.DEFAULT_OBJECT
    driver = None

    def apply(results):
        seq = _merge(results)
        # The backend may track more of the footage than asked for; keep the job's frames.
        keep = np.isin(seq.frames, footage)
        missing = sorted(set(footage.tolist()) - set(seq.frames[keep].tolist()))
        if missing:
            raise BadInput(f"clip {clip.name!r}: the backend found no footage frame(s) "
                           f"{frame_mapping.format_spans(missing)} in its footage; check the clip's length "
                           "and frame offset")
        extras = {"gaze": np.asarray(seq.extras["gaze"])[keep]} if "gaze" in seq.extras else {}
        scene_seq = LandmarkSequence(seq.landmarks[keep], [to_scene[int(f)] for f in seq.frames[keep]],
                                     seq.image_size, None if seq.confidence is None else seq.confidence[keep],
                                     extras)
        faceless = clip_tracks.write_tracks(clip, scene_seq, object_name)
        settings.tracking_object = object_name
        settings.source = "CLIP"
        if faceless.size:
            clip_spans = frame_mapping.format_spans(frame_mapping.scene_to_clip(faceless, clip.frame_start))
            driver.reports.append(("WARNING", clip_tracks.faceless_message(faceless, clip_spans)))

    driver = job_driver(context, jobs, _ResultHandler(apply), "Detect", counts=counts)
    if not all_frames.all():
        start, end = job_inputs.clip_scene_span(clip)
        driver.reports.append(("WARNING", f"clip {clip.name!r} covers scene frames {start}-{end} only; "
                               f"detected there, not on the rest of {first}-{last} (Set Range to Clip "
                               "makes the range match)"))
    return driver


class LIVINGPORTRAIT_OT_detect_landmarks(StreamOperatorMixin, bpy.types.Operator):
    """Detect the actor's 68 face landmarks on the clip; they come back as tracks you can fix"""

    bl_idname = "living_portrait.detect_landmarks"
    bl_label = "Detect Landmarks"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return not job_state(context).running and validation.poll_job(cls, context, "detect")

    def start_job(self, context):
        return start_detect(context)


def start_create_rig(context) -> JobDriver:
    """Detect the first portrait's landmarks on the backend, then build the rig from them."""
    settings = context.scene.living_portrait
    image = job_inputs.portrait_images(settings)[0]
    job = DetectJob(images=[job_inputs.image_file_bytes(image)], frames=[0], detector=settings.detector,
                    face_index=settings.face_index)

    def apply(results):
        # Runs when the job ends, maybe ticks later: the context of the click is gone by then. The
        # performance source stays what the artist chose: the rig is one to pick when keyed.
        gaze = results[0].extras.get("gaze")
        rig = landmark_rig.create_rig(bpy.context, image, results[0].landmarks[0], name=f"{image.name} Rig",
                                      gaze=None if gaze is None else gaze[0])
        settings.rig = rig

    return job_driver(context, job, _ResultHandler(apply), "Create Rig")


class LIVINGPORTRAIT_OT_create_rig(StreamOperatorMixin, bpy.types.Operator):
    """Build a landmark rig on the portrait: 68 points to keyframe by hand"""

    bl_idname = "living_portrait.create_rig"
    bl_label = "Create Landmark Rig"
    bl_options = {"REGISTER", "UNDO"}

    def start_job(self, context):
        return start_create_rig(context)


class LIVINGPORTRAIT_OT_range_to_clip(bpy.types.Operator):
    """Set the frame range (the scene's, or the panel's own) to the scene frames the clip covers"""

    bl_idname = "living_portrait.range_to_clip"
    bl_label = "Set Range to Clip"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene.living_portrait.clip is not None

    def execute(self, context):
        scene, settings = context.scene, context.scene.living_portrait
        start, end = job_inputs.clip_scene_span(settings.clip)
        if settings.use_scene_range:
            scene.frame_start, scene.frame_end = max(start, 0), max(end, 0)
        else:
            settings.frame_start, settings.frame_end = max(start, 0), max(end, 0)
        self.report({"INFO"}, f"frame range set to {start}-{end}, the frames clip {settings.clip.name!r} covers")
        return {"FINISHED"}


class LIVINGPORTRAIT_OT_cancel(bpy.types.Operator):
    """Cancel the running Living Portrait job (frames already written stay)"""

    bl_idname = "living_portrait.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return job_state(context).running

    def execute(self, context):
        job_state(context).cancel_requested = True
        return {"FINISHED"}


class LIVINGPORTRAIT_OT_backend_start(bpy.types.Operator):
    """Start a local backend with the command from the preferences"""

    bl_idname = "living_portrait.backend_start"
    bl_label = "Start Local Backend"

    def execute(self, context):
        prefs = preferences.get(context)
        try:
            local_backend.LOCAL.start(prefs.local_command, prefs.address, connection.log_path())
        except LivingPortraitError as err:
            self.report({"ERROR"}, for_artist(err.message))
            return {"CANCELLED"}
        job_state(context).backend_status = local_backend.LOCAL.describe()
        return {"FINISHED"}


class LIVINGPORTRAIT_OT_backend_stop(bpy.types.Operator):
    """Stop the local backend this Blender session started"""

    bl_idname = "living_portrait.backend_stop"
    bl_label = "Stop Local Backend"

    @classmethod
    def poll(cls, context):
        return local_backend.LOCAL.running

    def execute(self, context):
        local_backend.LOCAL.stop()
        job_state(context).backend_status = "Local backend stopped"
        return {"FINISHED"}


class BackendCheck:
    """Check Backend without holding Blender: the handshake runs on a thread; ``step()`` (the modal
    operator's timer, or a script's loop) applies its outcome to the panel's status once it is there.
    ``run()`` does the same inline (background mode, scripts)."""

    def __init__(self, context):
        prefs = preferences.get(context)
        self.address = prefs.address
        self.make = lambda: connection.make_client(context)
        self.client = self.make()  # reads the preferences (and key files) here, on the main thread
        self.outcome = None
        self.level, self.text = "INFO", ""
        job_state(context).backend_status = f"Checking {self.address}..."

    def _handshake(self) -> None:
        try:
            try:
                info = self.client.handshake()
            finally:
                self.client.close()
            self.outcome = ("ok", info)
        except LivingPortraitError as err:
            self.outcome = ("failed", err)

    def start(self) -> None:
        threading.Thread(target=self._handshake, name="Living Portrait check", daemon=True).start()

    def run(self) -> None:
        self._handshake()
        self.step()

    def step(self) -> bool:
        """True once the check has ended (the status and ``level``/``text`` for a report are set)."""
        if self.outcome is None:
            return False
        state = job_state()
        kind, value = self.outcome
        if kind == "failed":
            self.level, self.text = "ERROR", for_artist(value.message)
            state.backend_status = f"Unreachable: {self.text}"
            return True
        local = local_backend.LOCAL
        ours = local.running and local.address == self.address
        orphan = not ours and local_backend.check_loopback_quiet(self.address)
        state.offered_engines = ",".join(value.get("engines", []))
        state.backend_status = (f"Connected: protocol {value['protocol']}, engines "
                                f"{', '.join(value.get('engines', []))}"
                                + ("; a backend this Blender did not start (e.g. left from an earlier "
                                   "session)" if orphan else ""))
        self.level, self.text = "INFO", state.backend_status
        redraw_ui()
        return True


class LIVINGPORTRAIT_OT_backend_check(bpy.types.Operator):
    """Ask the backend for its handshake (in the background: Blender stays responsive)"""

    bl_idname = "living_portrait.backend_check"
    bl_label = "Check Backend"

    _check = None
    _timer = None

    def _finish(self):
        self.report({self._check.level}, self._check.text)
        return {"CANCELLED"} if self._check.level == "ERROR" else {"FINISHED"}

    def execute(self, context):
        try:
            self._check = BackendCheck(context)
        except LivingPortraitError as err:
            job_state(context).backend_status = f"Unreachable: {for_artist(err.message)}"
            self.report({"ERROR"}, for_artist(err.message))
            return {"CANCELLED"}
        self._check.run()
        return self._finish()

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._check = BackendCheck(context)
        except LivingPortraitError as err:
            job_state(context).backend_status = f"Unreachable: {for_artist(err.message)}"
            self.report({"ERROR"}, for_artist(err.message))
            return {"CANCELLED"}
        self._check.start()
        self._timer = context.window_manager.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER" or not self._check.step():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        redraw_ui(context)
        return self._finish()


class LIVINGPORTRAIT_OT_pin_to_plane(bpy.types.Operator):
    """Pin the animated sequence onto the clip's plane track over the plate (Plane Track Deform)"""

    bl_idname = "living_portrait.pin_to_plane"
    bl_label = "Pin to Plane Track"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.living_portrait
        clip = settings.plate or settings.clip
        try:
            if clip is None:
                raise BadInput("no plate: choose the plate's movie clip, which holds the plane track")
            camera = clip_tracks.tracking_object(clip, "", create=False)
            names = [p.name for p in camera.plane_tracks]
            if settings.plane_track not in names:
                raise BadInput(f"clip {clip.name!r} has no plane track {settings.plane_track!r} (it has: "
                               f"{', '.join(names) or 'none'}); track a plane in the Movie Clip Editor first")
            compositor.pin_to_plane(context.scene, clip, camera.name, settings.plane_track)
        except LivingPortraitError as err:
            self.report({"ERROR"}, for_artist(err.message))
            return {"CANCELLED"}
        return {"FINISHED"}


class LIVINGPORTRAIT_OT_portrait_add(bpy.types.Operator):
    """Add an image of the face to the portrait list"""

    bl_idname = "living_portrait.portrait_add"
    bl_label = "Add Portrait Image"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN"})

    def execute(self, context):
        settings = context.scene.living_portrait
        if len(settings.portraits) >= job_inputs.MAX_PORTRAITS:
            self.report({"ERROR"}, f"at most {job_inputs.MAX_PORTRAITS} portrait images")
            return {"CANCELLED"}
        refusal = f"{self.filepath}: not an image Blender can read; choose a PNG, JPEG or EXR"
        if os.path.splitext(self.filepath)[1].lower() not in bpy.path.extensions_image:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        try:
            image = bpy.data.images.load(self.filepath, check_existing=True)
        except RuntimeError:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        if image.size[0] == 0 or image.size[1] == 0:  # loading is lazy: this reads the file
            if image.users == 0:
                bpy.data.images.remove(image)
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        settings.portraits.add().image = image
        settings.portrait_index = len(settings.portraits) - 1
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class LIVINGPORTRAIT_OT_portrait_remove(bpy.types.Operator):
    """Remove the selected image from the portrait list"""

    bl_idname = "living_portrait.portrait_remove"
    bl_label = "Remove Portrait Image"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.living_portrait.portraits) > 0

    def execute(self, context):
        settings = context.scene.living_portrait
        settings.portraits.remove(settings.portrait_index)
        settings.portrait_index = max(0, min(settings.portrait_index, len(settings.portraits) - 1))
        return {"FINISHED"}


_classes = (LIVINGPORTRAIT_OT_detect_landmarks, LIVINGPORTRAIT_OT_create_rig, LIVINGPORTRAIT_OT_range_to_clip,
            LIVINGPORTRAIT_OT_cancel,
            LIVINGPORTRAIT_OT_backend_start, LIVINGPORTRAIT_OT_backend_stop, LIVINGPORTRAIT_OT_backend_check,
            LIVINGPORTRAIT_OT_pin_to_plane, LIVINGPORTRAIT_OT_portrait_add, LIVINGPORTRAIT_OT_portrait_remove)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    # A backend started for the artist goes away with Blender, not left running behind it.
    atexit.register(local_backend.LOCAL.stop)


def unregister():
    atexit.unregister(local_backend.LOCAL.stop)
    local_backend.LOCAL.stop()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
