"""Runs inside a real Blender (the ``bpy`` wheel's Python): installs the built extension zip and exports
farm jobs with *Export Farm Job*, writing what it observed to a JSON file for pytest to judge.

    .venv-bpy50/bin/python tests/blender/farm_export_scenario.py CONFIG.json RESULTS.json

The pytest side (tests/test_addon_farm_export.py) makes the inputs and runs the exported bundle with the
real `openjd` CLI; this script decides nothing. BLENDER_USER_RESOURCES must point into a temporary folder.
"""
import json
import os
import sys
import traceback

import bpy


def op_error(call):
    try:
        result = call()
    except RuntimeError as exc:
        return str(exc)
    return None if "FINISHED" in result else f"operator returned {result}"


def main(config_path, results_path):
    with open(config_path) as f:
        cfg = json.load(f)
    results = {"blender": bpy.app.version_string}
    try:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.extensions.package_install_files(filepath=cfg["zip"], repo="user_default", enable_on_install=True)
        scene = bpy.context.scene
        scene.frame_start, scene.frame_end = cfg["frame_start"], cfg["frame_end"]
        settings = scene.living_portrait
        settings.portraits.add().image = bpy.data.images.load(cfg["portrait"])
        settings.source = "FILE"
        settings.performance_file = cfg["performance"]
        settings.file_start_frame = cfg["frame_start"]
        settings.output_dir = cfg["output_dir"]
        settings.sequence_name = "farmjob"
        settings.expression_scale = 1.25
        settings.regions = {"pose", "expression", "eyes"}
        export = os.path.join(cfg["work"], "bundle")
        results["export"] = {"error": op_error(lambda: bpy.ops.living_portrait.export_farm_job(
            directory=export, chunk_size=3)), "files": sorted(os.listdir(export)) if os.path.isdir(export) else []}

        # A portrait whose file is gone: reported, nothing written.
        settings.portraits[0].image.filepath = os.path.join(cfg["work"], "gone.png")
        missing = os.path.join(cfg["work"], "bundle_missing")
        results["missing_portrait"] = {"error": op_error(lambda: bpy.ops.living_portrait.export_farm_job(
            directory=missing)), "exists": os.path.exists(missing)}
    except Exception as exc:  # recorded for pytest to report
        results["failed"] = f"{type(exc).__name__}: {exc}"
        results["traceback"] = traceback.format_exc()
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[-2], sys.argv[-1])
