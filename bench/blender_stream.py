"""Runs inside Blender (the bpy wheel's Python) for bench_addon.py: installs the extension zip and
animates through the timer path (a worker thread runs the job; JobDriver.step on a 0.1 s cadence, as
the modal operator does) and through the blocking path; prints one JSON line of timings.

    .venv-bpy50/bin/python bench/blender_stream.py ZIP ADDRESS PORTRAIT PERFORMANCE OUT_DIR
"""
import json
import os
import sys
import time

import bpy


def main(zip_path, address, portrait, performance, out_dir):
    t0 = time.monotonic()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    install_s = time.monotonic() - t0
    from bl_ext.user_default.living_portrait import animate, job_runner

    prefs = bpy.context.preferences.addons["bl_ext.user_default.living_portrait"].preferences
    prefs.address = address
    scene = bpy.context.scene
    settings = scene.living_portrait
    settings.portraits.add().image = bpy.data.images.load(portrait)
    settings.source = "FILE"
    settings.performance_file = performance
    settings.file_start_frame = 1
    scene.frame_start, scene.frame_end = 1, 48
    out = {"blender": bpy.app.version_string, "install_s": install_s}

    settings.output_dir, settings.sequence_name = os.path.join(out_dir, "timer"), "timer"
    started = time.monotonic()
    driver = animate.start_animate(bpy.context)
    driver.start()
    steps, next_tick, done = [], time.monotonic(), False
    first_seen = None  # (time, frames) of the first tick that saw frames: set-up excluded from the rate
    while not done:
        if time.monotonic() - started > 600:
            raise SystemExit("the job did not finish within 600 s")
        # Sleeping until the next tick stands in for Blender's event loop between timer events.
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick += job_runner.TIMER_INTERVAL_S
        s = time.monotonic()
        done = driver.step()
        steps.append(time.monotonic() - s)
        if first_seen is None and driver.frames_written:
            first_seen = (time.monotonic(), driver.frames_written)
    out["timer_s"] = time.monotonic() - started
    out["streaming_fps"] = (driver.frames_written - first_seen[1]) / (time.monotonic() - first_seen[0])
    out["frames"] = driver.frames_written
    steps.sort()
    out["step_median_ms"] = 1000 * steps[len(steps) // 2]
    out["step_max_ms"] = 1000 * steps[-1]

    settings.output_dir, settings.sequence_name = os.path.join(out_dir, "blocking"), "blocking"
    started = time.monotonic()
    bpy.ops.living_portrait.animate()
    out["blocking_s"] = time.monotonic() - started
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:6])
