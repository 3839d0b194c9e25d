"""Runs inside a real Blender (the ``bpy`` wheel's Python): installs the built extension zip, drives it
the way an artist's script would, and writes what it observed to a JSON file for pytest to judge.

    .venv-bpy50/bin/python tests/blender/scenarios.py CONFIG.json RESULTS.json

The pytest side (tests/test_addon_blender.py) makes the inputs, runs the backend, and asserts on the
observations; this script decides nothing. Each scenario's exception is recorded, not raised, so one
failure does not hide the others. Blender's user folders must point into a temporary folder
(BLENDER_USER_RESOURCES), so nothing touches the real user's Blender.
"""
import json
import os
import sys
import time
import traceback

import bpy
import numpy as np


def record(results, name):
    """Decorator: run the scenario now, store its observations (or its failure) under ``name``."""
    def run(fn):
        started = time.monotonic()
        try:
            results[name] = fn()
        except Exception as exc:  # recorded for pytest to report
            results[name] = {"failed": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        results[name]["seconds"] = round(time.monotonic() - started, 3)
        return fn
    return run


def timer_tick(interval_s: float | None = None):
    """The wait between two ticks of the modal operator's window timer (Blender's event loop runs
    there; the job's worker thread runs meanwhile). ``interval_s`` overrides the add-on's interval."""
    from bl_ext.user_default.living_portrait import job_runner
    time.sleep(job_runner.TIMER_INTERVAL_S if interval_s is None else interval_s)


def operator_registered(idname: str) -> bool:
    """Whether an operator class is registered (``hasattr(bpy.ops.x, name)`` is always true)."""
    module, name = idname.split(".")
    return hasattr(bpy.types, f"{module.upper()}_OT_{name}")


def op_error(call) -> str | None:
    """Run an operator call; the error it reported, or None when it finished."""
    try:
        result = call()
    except RuntimeError as exc:
        return str(exc)
    return None if "FINISHED" in result else f"operator returned {result}"


def landmark_tracks(obj) -> list:
    """A tracking object's landmark tracks (the gaze tracks aside)."""
    return [t for t in obj.tracks if not t.name.startswith("gaze.")] if obj else []


def files_in(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def animate_into(settings, folder, name=None) -> dict:
    """Run Animate (blocking, as a script does) into ``folder``: its error and the files it left."""
    settings.output_dir = folder
    if name:
        settings.sequence_name = name
    return {"error": op_error(lambda: bpy.ops.living_portrait.animate()), "files": files_in(folder)}


def lp_compositor():
    from bl_ext.user_default.living_portrait import compositor
    return compositor


def render_compositor(scene, frames, folder, size, tag):
    """Render the compositor at each scene frame to a float EXR; returns {frame: path}."""
    # Only the compositor is under test: a Render Layers node (4.x puts one in every new tree) would
    # make Cycles render the empty scene too, loading its kernels each time (~7 s in 4.2).
    tree = lp_compositor().compositor_tree(scene)
    for node in [n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers"]:
        tree.nodes.remove(node)
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.use_compositing = True
    settings = scene.render.image_settings
    settings.file_format = "OPEN_EXR"
    settings.color_depth = "32"
    settings.color_mode = "RGBA"
    out = {}
    for frame in frames:
        scene.frame_set(frame)
        scene.render.filepath = os.path.join(folder, f"{tag}_comp_{frame:04d}.exr")
        bpy.ops.render.render(write_still=True, scene=scene.name)
        out[str(frame)] = scene.render.filepath
    return out


def make_plane_track(clip, corners):
    """Four corner tracks held still over the clip, and a plane track made from them by Blender's own
    operator in a Movie Clip Editor (the way an artist makes one)."""
    for i, (x, y) in enumerate(corners):
        track = clip.tracking.tracks.new(name=f"corner.{i}", frame=1)
        for frame in range(1, clip.frame_duration + 1):
            track.markers.insert_frame(frame, co=(x, y))
        track.select = True
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.type = "CLIP_EDITOR"
    area.spaces.active.clip = clip
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.clip.create_plane_track()


class LayoutRecorder:
    """Stands in for Blender's UILayout (which only exists while a window draws) and records what a
    panel's draw function asks for: each property by its RNA path and each operator by id."""

    def __init__(self, log):
        self.log = log

    def _sub(self, *args, **kwargs):
        return LayoutRecorder(self.log)

    row = column = box = split = _sub

    def prop(self, data, name, **kwargs):
        self.log.append(("prop", data.bl_rna.identifier, name, name in data.bl_rna.properties))

    def operator(self, idname, **kwargs):
        self.log.append(("operator", idname, operator_registered(idname)))
        return type("OperatorProperties", (), {})()

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kwargs):
        self.log.append(("prop", data.bl_rna.identifier, prop, prop in data.bl_rna.properties))
        self.log.append(("uilist", list_type, hasattr(bpy.types, list_type)))

    def prop_search(self, data, prop, search_data, search_prop, **kwargs):
        self.log.append(("prop_search", data.bl_rna.identifier, prop, prop in data.bl_rna.properties,
                         search_data.bl_rna.identifier, search_prop))

    def template_ID(self, data, prop, **kwargs):
        self.log.append(("prop", data.bl_rna.identifier, prop, prop in data.bl_rna.properties))

    def label(self, **kwargs):
        self.log.append(("label", kwargs.get("text", "")))

    def progress(self, **kwargs):
        self.log.append(("progress", kwargs.get("text", "")))


def main(config_path, results_path):
    with open(config_path) as f:
        cfg = json.load(f)
    results = {"blender": bpy.app.version_string}
    work = cfg["work"]
    bpy.ops.wm.read_factory_settings(use_empty=True)

    @record(results, "install")
    def _():
        repo = "user_default"
        bpy.ops.extensions.package_install_files(filepath=cfg["zip"], repo=repo, enable_on_install=True)
        import zmq
        return {"enabled": f"bl_ext.{repo}.living_portrait" in bpy.context.preferences.addons,
                "has_operators": [operator_registered(f"living_portrait.{n}") for n in
                                  ("animate", "detect_landmarks", "create_rig", "cancel", "pin_to_plane",
                                   "backend_start", "backend_stop", "backend_check", "portrait_add",
                                   "portrait_remove")],
                "zmq_file": zmq.__file__,
                "user_folder": bpy.utils.extension_path_user("bl_ext.user_default.living_portrait")}

    import bl_ext.user_default.living_portrait as lp
    from bl_ext.user_default.living_portrait import animate, landmark_rig

    prefs = bpy.context.preferences.addons["bl_ext.user_default.living_portrait"].preferences
    prefs.address = cfg["address"]
    prefs.connect_timeout = 10.0
    prefs.silence_timeout = 60.0
    scene = bpy.context.scene
    scene.camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(scene.camera)
    scene.frame_start, scene.frame_end = cfg["frame_start"], cfg["frame_end"]
    settings = scene.living_portrait
    portrait = bpy.data.images.load(cfg["portrait"])
    settings.portraits.add().image = portrait
    settings.output_dir = os.path.join(work, "frames_file")
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(work, "scene.blend"))

    @record(results, "animate_file")
    def _():
        settings.source = "FILE"
        settings.performance_file = cfg["performance"]
        settings.file_start_frame = cfg["frame_start"]
        settings.sequence_name = "fromfile"
        started = time.monotonic()
        error = op_error(lambda: bpy.ops.living_portrait.animate())
        elapsed = time.monotonic() - started
        tree = lp.compositor.compositor_tree(scene)
        node = tree.nodes.get(lp.compositor.NODE_SEQUENCE)
        matte = tree.nodes.get(lp.compositor.NODE_MATTE)
        first, last = cfg["frame_start"], cfg["frame_end"]
        renders = render_compositor(scene, [first, first + 2, last], work, tuple(portrait.size), "sequence")
        return {"error": error, "elapsed": elapsed, "files": files_in(settings.output_dir),
                "node": None if node is None else {
                    "image": bpy.path.abspath(node.image.filepath), "source": node.image.source,
                    "frame_start": node.frame_start, "frame_offset": node.frame_offset,
                    "frame_duration": node.frame_duration, "outputs": [s.name for s in node.outputs]},
                "matte_linked": matte is not None and matte.inputs["Alpha"].is_linked
                and matte.inputs["Alpha"].links[0].from_socket.name == "matte",
                "renders": renders, "job_message": bpy.context.window_manager.living_portrait_job.message,
                "render_layers_nodes": sum(n.bl_idname == "CompositorNodeRLayers" for n in tree.nodes)}

    @record(results, "pin_to_plane")
    def _():
        plate = bpy.data.movieclips.load(cfg["driver_video"])
        plate.name = "plate"
        plate.frame_start = cfg["clip_frame_start"]
        make_plane_track(plate, cfg["plane_corners"])
        settings.clip = plate
        settings.plane_track = "No Such Plane"
        missing_error = op_error(lambda: bpy.ops.living_portrait.pin_to_plane())
        settings.plane_track = "Plane Track"
        error = op_error(lambda: bpy.ops.living_portrait.pin_to_plane())
        frame = cfg["frame_start"] + 2
        renders = render_compositor(scene, [frame], work, tuple(plate.size), "pin")
        return {"error": error, "missing_error": missing_error, "renders": renders,
                "clip_frame": frame - plate.frame_start + 1}

    @record(results, "detect_tracks")
    def _():
        clip = bpy.data.movieclips.load(cfg["driver_video"])
        clip.frame_start = cfg["clip_frame_start"]
        settings.clip = clip
        settings.source = "CLIP"
        error = op_error(lambda: bpy.ops.living_portrait.detect_landmarks())
        obj = clip.tracking.objects.get(settings.tracking_object)
        tracks = landmark_tracks(obj)
        first_clip = cfg["frame_start"] - clip.frame_start + 1
        last_clip = cfg["frame_end"] - clip.frame_start + 1
        co = {}
        for key, frame in (("first", first_clip), ("last", last_clip)):
            co[key] = [list(t.markers.find_frame(frame, exact=True).co) if t.markers.find_frame(frame, exact=True)
                       else None for t in tracks]
        read = lp.clip_tracks.read_tracks(clip, "Face", np.arange(cfg["frame_start"], cfg["frame_end"] + 1))
        return {"gaze_tracks": sorted(t.name for t in obj.tracks if t.name.startswith("gaze.")) if obj else [],
                "gaze": read.extras["gaze"].tolist() if "gaze" in read.extras else None,
                "landmarks_read": read.landmarks.tolist(),
                "error": error, "object": obj.name if obj else None, "names": [t.name for t in tracks],
                "marker_frames": sorted(m.frame for m in tracks[0].markers) if tracks else [],
                "clip_frame_start": clip.frame_start, "clip_size": list(clip.size),
                "co_first_clip_frame": co["first"], "co_last_clip_frame": co["last"],
                "source_after": settings.source}

    @record(results, "detect_sequence_clip")
    def _():
        # The same actor as numbered PNG files, opened from the middle of a longer shot (file 0101).
        clip = bpy.data.movieclips.load(cfg["driver_sequence"])
        clip.name = "sequence"
        clip.frame_start = cfg["clip_frame_start"]
        clip.frame_offset = cfg["clip_frame_offset"]
        settings.clip = clip
        settings.tracking_object = "Face"
        error = op_error(lambda: bpy.ops.living_portrait.detect_landmarks())
        obj = clip.tracking.objects.get("Face")
        tracks = landmark_tracks(obj)
        first_clip = cfg["frame_start"] - clip.frame_start + 1
        last_clip = cfg["frame_end"] - clip.frame_start + 1
        co = [[list(t.markers.find_frame(f, exact=True).co) for t in tracks] for f in (first_clip, last_clip)]
        settings.clip = bpy.data.movieclips[os.path.basename(cfg["driver_video"])]
        return {"error": error, "source": clip.source, "names": len(tracks),
                "marker_frames": sorted(m.frame for m in tracks[0].markers) if tracks else [],
                "co_first_clip_frame": co[0], "co_last_clip_frame": co[1]}

    @record(results, "clip_mapping")
    def _():
        # What Blender itself shows of each clip at one scene frame: a Movie Clip node rendered in a
        # scene of its own, for the movie and the image sequence, both with a frame offset.
        renders = {}
        for kind, path in (("movie", cfg["driver_video"]), ("sequence", cfg["driver_sequence"])):
            clip = bpy.data.movieclips.load(path)
            clip.frame_start, clip.frame_offset = cfg["clip_frame_start"], cfg["clip_frame_offset"]
            view = bpy.data.scenes.new(f"mapping {kind}")
            view.camera = scene.camera
            tree = lp.compositor.compositor_tree(view)
            node = tree.nodes.new("CompositorNodeMovieClip")
            node.clip = clip
            tree.links.new(node.outputs["Image"], lp.compositor.output_input(tree))
            frame = cfg["frame_start"] + 2
            renders[kind] = render_compositor(view, [frame], work, tuple(clip.size), f"mapping_{kind}")[str(frame)]
            renders[kind + "_footage_frame"] = int(lp.frame_mapping.clip_to_footage_frame(
                lp.frame_mapping.scene_to_clip(frame, clip.frame_start), clip.frame_offset))
        return renders

    @record(results, "animate_detected")
    def _():
        settings.source = "CLIP"
        return animate_into(settings, os.path.join(work, "frames_detected"), "fromdetected")

    @record(results, "artist_tracks")
    def _():
        # Tracks the artist already has on a clip: the performance file's points, placed with the
        # add-on's own writer as if tracked by hand, on a clip that starts at another scene frame.
        clip = bpy.data.movieclips.load(cfg["driver_video"])
        clip.name = "artist"
        clip.frame_start = cfg["clip_frame_start"]
        seq = lp.wire.landmarks.load_sequence(cfg["performance"])
        seq.frames = np.arange(cfg["frame_start"], cfg["frame_start"] + len(seq), dtype=np.int32)
        lp.clip_tracks.write_tracks(clip, seq, "Face")
        settings.clip = clip
        settings.tracking_object = "Face"
        settings.source = "CLIP"
        return animate_into(settings, os.path.join(work, "frames_clip"), "fromclip")

    @record(results, "track_gaps")
    def _():
        clip = settings.clip
        track = clip.tracking.objects[settings.tracking_object].tracks["outer_lips.51"]
        frame = cfg["frame_start"] + 2 - clip.frame_start + 1
        track.markers.delete_frame(frame)
        return animate_into(settings, os.path.join(work, "frames_gaps"))

    @record(results, "wrong_track_count")
    def _():
        clip = settings.clip
        obj = clip.tracking.objects.new("Sparse")
        for i in range(12):
            obj.tracks.new(name=f"Track.{i:03d}", frame=1)
        settings.tracking_object = "Sparse"
        outcome = animate_into(settings, os.path.join(work, "frames_count"))
        settings.tracking_object = "Face"
        return outcome

    @record(results, "rig")
    def _():
        source_before = settings.source
        active_collection = bpy.context.collection
        objects_before = len(active_collection.objects)
        error = op_error(lambda: bpy.ops.living_portrait.create_rig())
        source_after = settings.source
        settings.source = "RIG"  # the artist picks the rig once it is keyed
        rig = settings.rig
        first = cfg["frame_start"]
        detected = landmark_rig.rig_portrait_landmarks(rig)
        sampled = landmark_rig.sample_rig(scene, rig, np.array([first]))
        # The artist opens the jaw by hand on a later frame.
        points = landmark_rig.rig_points(rig)
        for p in points[5:12] + points[55:60]:
            p.keyframe_insert("location", index=1, frame=first)
            p.location[1] -= 0.04
            p.keyframe_insert("location", index=1, frame=first + 4)
        eyes = landmark_rig.rig_gaze_points(rig)
        for eye in eyes:  # and looks to the portrait's left (+x in pixels)
            eye.keyframe_insert("location", index=0, frame=first)
            eye.location[0] += 0.01
            eye.keyframe_insert("location", index=0, frame=first + 4)
        opened = landmark_rig.sample_rig(scene, rig, np.array([first + 4]))
        settings.output_dir = os.path.join(work, "frames_rig")
        settings.sequence_name = "fromrig"
        anim_error = op_error(lambda: bpy.ops.living_portrait.animate())
        return {"source_before": source_before, "source_after": source_after,
                "rig_collections": [c.name for c in rig.users_collection],
                "rig_collection_in_scene": rig.users_collection[0].name in scene.collection.children,
                "rig_collection_objects": len(rig.users_collection[0].objects), "gaze_points": len(eyes),
                "gaze_first": sampled.extras["gaze"][0].tolist() if "gaze" in sampled.extras else None,
                "gaze_opened": opened.extras["gaze"][0].tolist() if "gaze" in opened.extras else None,
                "active_collection_added": len(active_collection.objects) - objects_before,
                "error": error, "points": len(points), "names": [p.name for p in points[:2]],
                "detected": detected.tolist(), "sampled_first": sampled.landmarks[0].tolist(),
                "opened": opened.landmarks[0].tolist(), "animate_error": anim_error,
                "files": files_in(settings.output_dir), "image_size": list(portrait.size)}

    @record(results, "nonblocking")
    def _():
        settings.source = "FILE"
        settings.output_dir = os.path.join(work, "frames_steps")
        settings.sequence_name = "stepped"
        driver = animate.start_animate(bpy.context)
        driver.start()
        step_times, landed, node_seen_before_done, messages = [], [], False, []
        deadline = time.monotonic() + 120
        done = False
        while not done and time.monotonic() < deadline:
            # Ticks finer than the add-on's 0.1 s: a short job's frames can all land within one real
            # tick now, and this scenario watches them arrive one after another.
            timer_tick(0.005)
            t0 = time.monotonic()
            done = driver.step()
            step_times.append(time.monotonic() - t0)
            landed.append(driver.frames_written)
            messages.append(bpy.context.window_manager.living_portrait_job.message)
            node_seen_before_done |= not done and driver.handler.node is not None
        return {"done": done, "steps": len(step_times), "max_step_s": max(step_times),
                "median_step_s": float(np.median(step_times)), "landed": landed,
                "node_before_done": node_seen_before_done, "files": files_in(settings.output_dir),
                "messages": sorted(set(messages))}

    @record(results, "cancel")
    def _():
        # A long performance, so the cancel reaches the backend while the job still runs.
        settings.performance_file = cfg["long_performance"]
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = cfg["frame_start"], cfg["frame_start"] + 199
        settings.output_dir = os.path.join(work, "frames_cancel")
        settings.sequence_name = "cancelled"
        driver = animate.start_animate(bpy.context)
        driver.start()
        state = bpy.context.window_manager.living_portrait_job
        deadline = time.monotonic() + 120
        error = None
        try:
            while time.monotonic() < deadline:
                timer_tick()
                if driver.frames_written:
                    state.cancel_requested = True  # what Esc and the Cancel button do
                if driver.step():
                    break
        except lp.wire.errors.LivingPortraitError as err:
            error = f"{type(err).__name__}: {err.message}"
        settings.use_scene_range = True
        settings.performance_file = cfg["performance"]
        return {"error": error, "files": files_in(settings.output_dir), "running": state.running}

    @record(results, "missing_image")
    def _():
        import shutil
        moved = os.path.join(work, "gone.png")
        shutil.copy(cfg["portrait"], moved)
        image = bpy.data.images.load(moved)
        os.remove(moved)
        item = settings.portraits.add()
        item.image = image
        settings.portraits.move(len(settings.portraits) - 1, 0)
        outcome = animate_into(settings, os.path.join(work, "frames_missing"))
        outcome["job_message"] = bpy.context.window_manager.living_portrait_job.message
        settings.portraits.remove(0)
        return outcome

    @record(results, "fewshot_without_checkpoint")
    def _():
        settings.engine = "fewshot"
        outcome = animate_into(settings, os.path.join(work, "frames_fewshot"))
        settings.engine = "warp"
        return outcome

    @record(results, "unreachable")
    def _():
        prefs.address = cfg["unused_address"]
        prefs.connect_timeout = 1.0
        settings.output_dir = os.path.join(work, "frames_unreachable")
        started = time.monotonic()
        error = op_error(lambda: bpy.ops.living_portrait.animate())
        elapsed = time.monotonic() - started
        # The timer path: the worker waits for the handshake, the UI does not.
        driver = animate.start_animate(bpy.context)
        driver.start()
        started, steps, timer_error = time.monotonic(), [], None
        try:
            while time.monotonic() - started < 30:
                timer_tick()
                t0 = time.monotonic()
                driver.step()
                steps.append(time.monotonic() - t0)
        except lp.wire.errors.LivingPortraitError as err:
            timer_error = err.message
        timer_elapsed = time.monotonic() - started
        prefs.address = cfg["address"]
        prefs.connect_timeout = 10.0
        return {"error": error, "elapsed": elapsed, "files": files_in(settings.output_dir),
                "timer_error": timer_error, "timer_elapsed": timer_elapsed, "timer_max_step_s": max(steps),
                "running_after": bpy.context.window_manager.living_portrait_job.running}

    @record(results, "engine_list")
    def _():
        # Bi-layer is listed only once a handshake offers it (this backend has no converted weights).
        job = bpy.context.window_manager.living_portrait_job
        before = [item[0] for item in lp.properties.engine_items(settings, bpy.context)]
        check_error = op_error(lambda: bpy.ops.living_portrait.backend_check())
        after = [item[0] for item in lp.properties.engine_items(settings, bpy.context)]
        try:
            settings.engine = "bilayer"
            refused = None
        except TypeError as err:
            refused = str(err)
        settings["engine"] = lp.properties.ENGINE_NUMBERS["bilayer"]  # a scene saved where it was offered
        held = settings.engine
        problems = [p.text for p in lp.validation.problems(bpy.context)]
        settings.engine = "warp"
        return {"before": before, "check_error": check_error, "offered": job.offered_engines,
                "after": after, "refused": refused, "held": held, "problems": problems}

    @record(results, "local_backend")
    def _():
        prefs.address = cfg["local_address"]
        prefs.local_command = cfg["livingportrait_command"]
        prefs.connect_timeout = 20.0
        start_error = op_error(lambda: bpy.ops.living_portrait.backend_start())
        check_error = op_error(lambda: bpy.ops.living_portrait.backend_check())
        status = bpy.context.window_manager.living_portrait_job.backend_status
        pid = lp.local_backend.LOCAL.process.pid if lp.local_backend.LOCAL.process else None
        stop_error = op_error(lambda: bpy.ops.living_portrait.backend_stop())
        prefs.address = cfg["address"]
        return {"start_error": start_error, "check_error": check_error, "status": status, "pid": pid,
                "stop_error": stop_error, "running_after_stop": lp.local_backend.LOCAL.running,
                "log": lp.local_backend.LOCAL.log_path}

    @record(results, "auto_local_backend")
    def _():
        # No backend at the address: with the preference on, Animate starts one and goes on.
        prefs.start_local_automatically = True
        prefs.address = cfg["auto_address"]
        prefs.connect_timeout = 1.0
        prefs.local_command = cfg["livingportrait_command"]
        settings.source, settings.performance_file = "FILE", cfg["performance"]
        outcome = animate_into(settings, os.path.join(work, "frames_auto"), "auto")
        outcome["started"] = lp.local_backend.LOCAL.running
        bpy.ops.living_portrait.backend_stop()
        for label, command in (("missing_command", os.path.join(work, "no-such-livingportrait")),
                               ("exits_at_once", "false")):
            prefs.local_command = command
            failed = animate_into(settings, os.path.join(work, f"frames_{label}"))
            outcome[label], outcome[label + "_files"] = failed["error"], failed["files"]
            lp.local_backend.LOCAL.stop()
        prefs.start_local_automatically = False
        prefs.address, prefs.connect_timeout = cfg["address"], 10.0
        return outcome

    @record(results, "panel")
    def _():
        from bl_ext.user_default.living_portrait import panels
        drawn = {}
        for source in ("CLIP", "RIG", "FILE"):
            settings.source = source
            settings.engine = "fewshot"
            settings.use_scene_range = False
            log = []
            panels.draw_panel(LayoutRecorder(log), bpy.context)
            drawn[source] = log
        settings.engine, settings.use_scene_range = "warp", True
        state = bpy.context.window_manager.living_portrait_job
        state.running, state.progress, state.message = True, 0.25, "Animate: 25%"
        running = []
        panels.draw_panel(LayoutRecorder(running), bpy.context)
        state.running = False
        return {"drawn": drawn, "running": running,
                "registered": [hasattr(bpy.types, n) for n in ("LIVINGPORTRAIT_PT_compositor",
                                                               "LIVINGPORTRAIT_PT_clip")]}

    @record(results, "curve")
    def _():
        keys = cfg["curve"]
        prefs.address = keys["address"]
        prefs.connect_timeout = 3.0  # a refused key shows only as silence until the timeout
        outcome = {}
        for label, secret in (("authorised", keys["client_secret"]), ("stranger", keys["stranger_secret"]),
                              ("half", "")):
            prefs.curve_server_public_key = keys["server_public"] if label != "half" else ""
            prefs.curve_client_secret_key = secret or keys["client_secret"]
            outcome[label] = op_error(lambda: bpy.ops.living_portrait.backend_check())
        outcome["status"] = bpy.context.window_manager.living_portrait_job.backend_status
        prefs.curve_server_public_key = prefs.curve_client_secret_key = ""
        prefs.address = cfg["address"]
        return outcome

    # ---- issue 12: the add-on in an artist's hands ------------------------------------------------
    from bl_ext.user_default.living_portrait import operators, panels, validation

    def run_driver(driver, deadline_s=120.0, on_tick=None):
        """Drive a started job the way the modal operator's timer does; (error, stage lines seen).
        ``on_tick()``: called at each tick before the step (a test's disturbance)."""
        messages, error = [], None
        deadline = time.monotonic() + deadline_s
        try:
            while time.monotonic() < deadline:
                timer_tick()
                if on_tick is not None:
                    on_tick()
                done = driver.step()
                messages.append(bpy.context.window_manager.living_portrait_job.message)
                if done:
                    break
        except lp.wire.errors.LivingPortraitError as err:
            error = f"{type(err).__name__}: {err.message}"
        return error, messages

    def marker_co(track, frame):
        marker = track.markers.find_frame(frame, exact=True)
        return None if marker is None else [marker.co[0], marker.co[1], marker.mute]

    @record(results, "detect_long_sequence")
    def _():
        # 60 files: more than one wire message may carry. The timer path, as the panel's button runs it.
        clip = bpy.data.movieclips.load(cfg["long_sequence"])
        clip.name = "long"
        clip.frame_start = 1
        n = cfg["long_sequence_frames"]
        settings.clip, settings.tracking_object, settings.source = clip, "Face", "CLIP"
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = 1, n
        driver = operators.start_detect(bpy.context)
        driver.start()
        error, messages = run_driver(driver)
        tracks = landmark_tracks(clip.tracking.objects["Face"])
        return {"error": error, "messages": messages, "tracks": len(tracks),
                "marker_frames": sorted(m.frame for m in tracks[0].markers),
                "co": {str(f): [marker_co(t, f) for t in tracks] for f in (1, 30, n)}}

    @record(results, "detect_movie_in_parts")
    def _():
        # A backend whose buffer limit the movie exceeds: the movie goes in parts, read off the main thread.
        clip = bpy.data.movieclips.load(cfg["driver_video"])
        clip.name = "in parts"
        clip.frame_start = cfg["clip_frame_start"]
        settings.clip, settings.tracking_object, settings.source = clip, "Face", "CLIP"
        settings.use_scene_range = True
        prefs.address = cfg["small_buffer_address"]
        # Blocking, as `blender -b` runs it: each stage is printed, the upload's included.
        error = op_error(lambda: bpy.ops.living_portrait.detect_landmarks())
        prefs.address = cfg["address"]
        tracks = landmark_tracks(clip.tracking.objects["Face"])
        first_clip = cfg["frame_start"] - clip.frame_start + 1
        last_clip = cfg["frame_end"] - clip.frame_start + 1
        co = [[list(t.markers.find_frame(f, exact=True).co) for t in tracks] for f in (first_clip, last_clip)]
        return {"error": error, "size": os.path.getsize(cfg["driver_video"]),
                "marker_frames": sorted(m.frame for m in tracks[0].markers),
                "co_first_clip_frame": co[0], "co_last_clip_frame": co[1]}

    @record(results, "retrack")
    def _():
        # Blender's own tracker refines a detected track: clear ten frames of one track, track them again.
        clip = bpy.data.movieclips["long"]
        obj = clip.tracking.objects["Face"]
        name = lp.track_arrays.TRACK_NAMES[30]  # the nose tip
        track = obj.tracks[name]
        detected = {f: marker_co(track, f) for f in range(1, 12)}
        marker = track.markers.find_frame(1, exact=True)
        size = clip.size
        pattern = [abs(marker.pattern_corners[1][0] - marker.pattern_corners[0][0]) * size[0],
                   abs(marker.pattern_corners[2][1] - marker.pattern_corners[1][1]) * size[1]]
        search = [(marker.search_max[0] - marker.search_min[0]) * size[0],
                  (marker.search_max[1] - marker.search_min[1]) * size[1]]
        for f in range(2, 12):
            track.markers.delete_frame(f)
        window = bpy.context.window_manager.windows[0]
        area = window.screen.areas[-1]
        old_type = area.type
        area.type = "CLIP_EDITOR"
        space = area.spaces.active
        space.clip = clip
        clip.tracking.active_object_index = list(clip.tracking.objects).index(obj)
        for t in obj.tracks:
            t.select = t.name == name
        region = next(r for r in area.regions if r.type == "WINDOW")
        saved = scene.frame_start, scene.frame_end, scene.frame_current
        scene.frame_start, scene.frame_end = 1, 11
        scene.frame_set(1)
        with bpy.context.temp_override(window=window, area=area, region=region, space_data=space):
            result = bpy.ops.clip.track_markers(backwards=False, sequence=True)
        scene.frame_start, scene.frame_end = saved[0], saved[1]
        scene.frame_set(saved[2])
        area.type = old_type
        return {"result": list(result), "pattern_px": pattern, "search_px": search, "size": list(size),
                "detected": {str(f): v for f, v in detected.items()},
                "tracked": {str(f): marker_co(track, f) for f in range(1, 12)}}

    @record(results, "faceless")
    def _():
        clip = bpy.data.movieclips.load(cfg["faceless_sequence"])
        clip.name = "faceless"
        clip.frame_start = 1
        settings.clip, settings.tracking_object, settings.source = clip, "Face", "CLIP"
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = 1, 10
        driver = operators.start_detect(bpy.context)
        error = None
        try:
            driver.run_blocking()
        except lp.wire.errors.LivingPortraitError as err:
            error = err.message
        track = clip.tracking.objects["Face"].tracks[0]
        muted = [f for f in range(1, 11) if track.markers.find_frame(f, exact=True).mute]
        anim = animate_into(settings, os.path.join(work, "frames_faceless"))
        settings.use_scene_range = True
        return {"error": error, "reports": driver.reports, "muted": muted, "animate_error": anim["error"]}

    @record(results, "subrange_redetect")
    def _():
        clip = bpy.data.movieclips[os.path.basename(cfg["driver_video"])]
        settings.clip, settings.tracking_object, settings.source = clip, "Face", "CLIP"
        track = clip.tracking.objects["Face"].tracks["jaw.00"]
        to_clip = lambda f: f - clip.frame_start + 1  # noqa: E731
        before_frames = sorted(m.frame for m in track.markers)
        outside, inside = to_clip(cfg["frame_start"]), to_clip(cfg["frame_start"] + 4)
        for frame in (outside, inside):  # the artist's hand fixes, one outside the sub-range, one in it
            marker = track.markers.find_frame(frame, exact=True)
            marker.co = (marker.co[0] + 0.05, marker.co[1])
        fixed = {"outside": marker_co(track, outside), "inside": marker_co(track, inside)}
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = cfg["frame_start"] + 3, cfg["frame_start"] + 5
        error = op_error(lambda: bpy.ops.living_portrait.detect_landmarks())
        settings.use_scene_range = True
        return {"error": error, "before_frames": before_frames,
                "after_frames": sorted(m.frame for m in track.markers), "fixed": fixed,
                "after": {"outside": marker_co(track, outside), "inside": marker_co(track, inside)}}

    @record(results, "range_vs_clip")
    def _():
        # A new user's first try: the scene's default 1-250 against a 20-frame clip (scene frames 9-28).
        clip = bpy.data.movieclips[os.path.basename(cfg["driver_video"])]
        settings.clip, settings.tracking_object, settings.source = clip, "Face", "CLIP"
        saved = scene.frame_start, scene.frame_end
        scene.frame_start, scene.frame_end = 1, 250
        can_animate = bpy.ops.living_portrait.animate.poll()
        error = op_error(lambda: bpy.ops.living_portrait.animate())
        problems = [[p.text, p.fix, p.fix_text] for p in validation.problems(bpy.context)]
        log = []
        panels.draw_panel(LayoutRecorder(log), bpy.context)
        fix_error = op_error(lambda: bpy.ops.living_portrait.range_to_clip())
        fixed_range = [scene.frame_start, scene.frame_end]
        problems_after = [p.text for p in validation.problems(bpy.context)]
        scene.frame_start, scene.frame_end = saved
        return {"can_animate": can_animate, "error": error, "problems": problems,
                "panel_operators": [e[1] for e in log if e[0] == "operator"], "fix_error": fix_error,
                "fixed_range": fixed_range, "problems_after": problems_after}

    @record(results, "portrait_add_refuses")
    def _():
        script = os.path.join(work, "not_an_image.py")
        with open(script, "w") as f:
            f.write("print('hello')\n")
        count, images = len(settings.portraits), len(bpy.data.images)
        error = op_error(lambda: bpy.ops.living_portrait.portrait_add(filepath=script))
        return {"error": error, "portraits_added": len(settings.portraits) - count,
                "images_added": len(bpy.data.images) - images}

    @record(results, "ctrl_c")
    def _():
        # Ctrl-C in the terminal of a blocking Animate: a KeyboardInterrupt in Blender's main thread.
        import _thread
        import threading
        settings.source, settings.performance_file = "FILE", cfg["long_performance"]
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = cfg["frame_start"], cfg["frame_start"] + 199
        folder = os.path.join(work, "frames_ctrl_c")
        os.makedirs(folder, exist_ok=True)
        settings.output_dir, settings.sequence_name = folder, "interrupted"
        stop = threading.Event()

        def interrupt_after_first_frame():
            while not stop.is_set():
                if any(f.endswith(".exr") for f in os.listdir(folder)):
                    _thread.interrupt_main()
                    return
                stop.wait(0.01)

        watcher = threading.Thread(target=interrupt_after_first_frame, daemon=True)
        watcher.start()
        raised = None
        try:
            bpy.ops.living_portrait.animate()
        except BaseException as exc:  # KeyboardInterrupt, or Blender's RuntimeError around it
            raised = type(exc).__name__
        stop.set()
        watcher.join()
        state = bpy.context.window_manager.living_portrait_job
        outcome = {"raised": raised, "running": state.running, "message": state.message,
                   "files": len(files_in(folder))}
        settings.use_scene_range, settings.performance_file = True, cfg["performance"]
        return outcome

    @record(results, "killed_backend")
    def _():
        # The add-on's own backend dies mid-job (SIGKILL): reported from its exit code, not after silence.
        import signal
        prefs.address, prefs.local_command = cfg["local_address"], cfg["livingportrait_command"]
        prefs.connect_timeout = 20.0
        prefs.silence_timeout = 60.0
        start_error = op_error(lambda: bpy.ops.living_portrait.backend_start())
        check_error = op_error(lambda: bpy.ops.living_portrait.backend_check())
        settings.source, settings.performance_file = "FILE", cfg["long_performance"]
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = cfg["frame_start"], cfg["frame_start"] + 199
        settings.output_dir, settings.sequence_name = os.path.join(work, "frames_killed"), "killed"
        driver = animate.start_animate(bpy.context)
        driver.start()
        killed_at, error, deadline = None, None, time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                timer_tick()
                if killed_at is None and driver.frames_written:
                    os.kill(lp.local_backend.LOCAL.process.pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                if driver.step():
                    break
        except lp.wire.errors.LivingPortraitError as err:
            error = err.message
        reported_after = time.monotonic() - killed_at if killed_at else None
        status = panels.backend_status(bpy.context)
        problems = [p.text for p in validation.problems(bpy.context)]
        can_animate = bpy.ops.living_portrait.animate.poll()
        lp.local_backend.LOCAL.stop()
        # A backend this Blender did not start holds the address (one left by a killed Blender): Start
        # says so instead of starting a process that dies with "Address already in use".
        prefs.address = cfg["address"]
        orphan_start = op_error(lambda: bpy.ops.living_portrait.backend_start())
        orphan_local = lp.local_backend.LOCAL.process is not None
        orphan_check = op_error(lambda: bpy.ops.living_portrait.backend_check())
        orphan_status = bpy.context.window_manager.living_portrait_job.backend_status
        prefs.connect_timeout = 10.0
        settings.use_scene_range, settings.performance_file = True, cfg["performance"]
        return {"start_error": start_error, "check_error": check_error, "error": error,
                "reported_after_s": reported_after, "status": list(status), "problems": problems,
                "can_animate": can_animate, "running": bpy.context.window_manager.living_portrait_job.running,
                "orphan_start": orphan_start, "orphan_local": orphan_local, "orphan_check": orphan_check,
                "orphan_status": orphan_status}

    @record(results, "hiccup")
    def _():
        # A backend hiccup mid-job in the UI (the timer path): the backend is killed and comes back on
        # the same address; the job reconnects, resumes and finishes, as `blender -b` always did.
        import signal
        import subprocess

        def serve():
            process = subprocess.Popen([cfg["livingportrait_command"], "serve", "--bind", cfg["hiccup_address"]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = lp.wire.client.BackendClient(cfg["hiccup_address"], timeout_s=30.0)
            try:
                client.handshake()
            finally:
                client.close()
            return process

        first = serve()
        prefs.address, prefs.silence_timeout = cfg["hiccup_address"], 60.0
        settings.source, settings.performance_file = "FILE", cfg["long_performance"]
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = cfg["frame_start"], cfg["frame_start"] + 39
        folder = os.path.join(work, "frames_hiccup")
        settings.output_dir, settings.sequence_name = folder, "hiccup"
        driver = animate.start_animate(bpy.context)
        driver.start()
        second = None

        def restart_backend_after_the_first_frame():
            nonlocal second
            if second is None and driver.frames_written:
                os.kill(first.pid, signal.SIGKILL)
                first.wait()
                second = serve()

        error, messages = run_driver(driver, on_tick=restart_backend_after_the_first_frame)
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait()
        prefs.address = cfg["address"]
        settings.use_scene_range, settings.performance_file = True, cfg["performance"]
        return {"error": error, "files": files_in(folder), "messages": sorted(set(messages)),
                "resumed": driver.resumed, "killed": second is not None,
                "running": bpy.context.window_manager.living_portrait_job.running}

    @record(results, "check_backend_nonblocking")
    def _():
        # Check Backend as the panel's button runs it: the handshake waits on a thread, not the UI.
        outcome = {}
        for label, address, timeout in (("unreachable", cfg["unused_address"], 2.0), ("reachable", cfg["address"], 10.0)):
            prefs.address, prefs.connect_timeout = address, timeout
            check = operators.BackendCheck(bpy.context)
            check.start()
            started, steps, done = time.monotonic(), [], False
            while not done and time.monotonic() - started < 30:
                timer_tick()
                t0 = time.monotonic()
                done = check.step()
                steps.append(time.monotonic() - t0)
            outcome[label] = {"done": done, "elapsed": time.monotonic() - started, "max_step_s": max(steps),
                              "status": bpy.context.window_manager.living_portrait_job.backend_status,
                              "address": address, "problems": [[p.text, p.fix, list(p.blocks)] for p in validation.problems(bpy.context)]}
        prefs.address, prefs.connect_timeout = cfg["address"], 10.0
        return outcome

    @record(results, "pickers")
    def _():
        drawn = {}
        settings.plate = bpy.data.movieclips["plate"]
        for source in ("CLIP", "RIG", "FILE"):
            settings.source = source
            log = []
            panels.draw_panel(LayoutRecorder(log), bpy.context)
            drawn[source] = log
        settings.plate = None
        # What the problems list costs per redraw on 60 frames of 68 tracks (it also runs in poll).
        settings.source, settings.clip, settings.tracking_object = "CLIP", bpy.data.movieclips["long"], "Face"
        settings.use_scene_range = False
        settings.frame_start, settings.frame_end = 1, cfg["long_sequence_frames"]
        costs = []
        for _ in range(5):
            validation._gap_cache.clear()  # the uncached cost: what a redraw pays once a second
            t0 = time.monotonic()
            validation.problems(bpy.context)
            costs.append(time.monotonic() - t0)
        settings.use_scene_range = True
        settings.source = "FILE"
        t0 = time.monotonic()
        for _ in range(10):
            bpy.ops.living_portrait.animate.poll()
        poll_s = (time.monotonic() - t0) / 10
        return {"drawn": drawn, "problems_s": sorted(costs)[2], "poll_s": poll_s,
                "sub_panels": sorted(n for n in dir(bpy.types) if n.startswith("LIVINGPORTRAIT_PT_compositor_"))}

    @record(results, "disable_enable")
    def _():
        module = "bl_ext.user_default.living_portrait"
        bpy.ops.preferences.addon_disable(module=module)
        after_disable = {"enabled": module in bpy.context.preferences.addons,
                         "scene_settings": hasattr(bpy.types.Scene, "living_portrait"),
                         "operator": operator_registered("living_portrait.animate"),
                         "panel": hasattr(bpy.types, "LIVINGPORTRAIT_PT_compositor")}
        bpy.ops.preferences.addon_enable(module=module)
        after_enable = {"enabled": module in bpy.context.preferences.addons,
                        "scene_settings": hasattr(bpy.types.Scene, "living_portrait"),
                        "operator": operator_registered("living_portrait.animate")}
        bpy.ops.preferences.addon_disable(module=module)
        return {"after_disable": after_disable, "after_enable": after_enable}

    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
