"""Add-on figures: extension install time, frames/s delivered into Blender through the timer path and
the blocking path, and how long one timer tick holds Blender's UI (the stall an artist would feel).

    .venv/bin/python bench/bench_addon.py [--size 1920x1080] [--repeats 3] [--blender 5.0]

A real `livingportrait serve`, the built linux zip installed as an extension in the bpy wheel's Blender,
48 frames of the built-in performance on the astronaut. Prints min / median over repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import build_addon  # noqa: E402
from backend_process import BackendProcess  # noqa: E402
from bench_warp import portrait_png, renderer  # noqa: E402
from livingportrait_wire.atomic_write import write_bytes_atomic  # noqa: E402
from livingportrait_backend.landmarks.performance import builtin_performance  # noqa: E402
from livingportrait_wire.landmarks import save_sequence  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blender", choices=["4.2", "5.0"], default="5.0")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    python = ROOT / f".venv-bpy{args.blender.replace('.', '')}" / "bin" / "python"
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zip_path = build_addon.build("linux-x64", tmp / "dist", ROOT / "build" / "wheels")
        png = portrait_png((w, h))
        (tmp / "portrait.png").write_bytes(png)
        save_sequence(builtin_performance(), tmp / "talk.npz")
        backend = BackendProcess()
        try:
            for i in range(args.repeats):
                env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp / f"user{i}"))
                run = subprocess.run([str(python), str(ROOT / "bench" / "blender_stream.py"), str(zip_path),
                                      backend.address, str(tmp / "portrait.png"), str(tmp / "talk.npz"),
                                      str(tmp / f"out{i}")], env=env, capture_output=True, text=True,
                                     timeout=900)
                line = next((l for l in run.stdout.splitlines() if l.startswith("RESULT ")), None)
                if line is None:
                    print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(line.removeprefix("RESULT ")))
                # The same frames rendered in-process to EXR files, right after, for the efficiency.
                r = renderer(png, runs[-1]["frames"])
                t = time.perf_counter()
                for f in r.frames:
                    write_bytes_atomic(tmp / f"inproc.{f:04d}.exr", next(r.encoded([f]))[1])
                runs[-1]["in_process_fps"] = len(r.frames) / (time.perf_counter() - t)
        finally:
            backend.stop()
    frames = runs[0]["frames"]

    def show(label, values, unit):
        print(f"{label}: min {min(values):.2f} / median {statistics.median(values):.2f} {unit}")

    print(f"Blender {runs[0]['blender']}, {w}x{h}, {frames} frames, {len(runs)} runs")
    show("extension install", [r["install_s"] for r in runs], "s")
    show("in-process reference (render + EXR files)", [r["in_process_fps"] for r in runs], "frames/s")
    show("timer path, streaming", [r["streaming_fps"] for r in runs], "frames/s into Blender")
    show("timer path vs in-process", [100 * r["streaming_fps"] / r["in_process_fps"] for r in runs], "%")
    show("timer path, whole job incl. set-up", [frames / r["timer_s"] for r in runs], "frames/s")
    show("blocking path (blender -b), whole job", [frames / r["blocking_s"] for r in runs], "frames/s")
    show("UI hold per timer tick, median", [r["step_median_ms"] for r in runs], "ms")
    show("UI hold per timer tick, worst", [r["step_max_ms"] for r in runs], "ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
