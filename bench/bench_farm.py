"""Chunking overhead on a farm: the same frames as chunks through `openjd run` vs one `livingportrait render`.

    .venv/bin/python bench/bench_farm.py [--frames 96] [--chunk 8,48] [--repeats 1] [--engines warp,fewshot]
                                         [--preset tiny] [--finetune-steps 0] [--size 512]
                                         [--json docs/results/bench_farm.json]

Inputs: scikit-image's astronaut (512x512, or resized to --size) and the built-in performance looped to --frames frames. For
each engine, one render of every frame (one process) and the OpenJD bundle run by the real `openjd run`
(one session, --frames/--chunk chunks) twice: with the bundle's warm session worker (SessionWorker=on, the
default: each task's `livingportrait render --frames CHUNK` hands its chunk to one process per session) and
without it (SessionWorker=off: each task a fresh process, as before). The three alternate --repeats times,
each into a fresh output folder (so all start with a cold prepare cache), and their frames are checked
byte-identical. The fewshot engine uses a checkpoint with random weights built
by our own code (`--preset`, default tiny: no trained weights ship) and fine-tunes --finetune-steps steps
on the portrait: the first chunk fits, later chunks read the personalised model from the job's prepare
cache. Wall times are of whole commands; on a shared machine read the ratio, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "farm" / "openjd" / "living_portrait" / "template.yaml"


def make_inputs(work: Path, frames: int, size: int = 512) -> tuple[str, str]:
    import cv2
    import numpy as np
    from skimage import data

    from livingportrait_backend.landmarks.performance import builtin_performance
    from livingportrait_wire.landmarks import LandmarkSequence, save_sequence

    portrait = work / "astronaut.png"
    image = data.astronaut()
    if size != image.shape[0]:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(portrait), image[:, :, ::-1])
    base = builtin_performance()
    index = np.arange(frames) % len(base.frames)
    driver = work / "performance.npz"
    save_sequence(LandmarkSequence(base.landmarks[index], np.arange(1, frames + 1, dtype=np.int32), base.image_size),
                  driver)
    return str(portrait), str(driver)


def make_checkpoint(work: Path, preset_name: str) -> str:
    import torch

    from livingportrait_backend.model.checkpoint import save_model
    from livingportrait_backend.model.config import preset
    from livingportrait_backend.model.networks import build_networks

    torch.manual_seed(0)
    cfg = preset(preset_name)
    folder = work / f"checkpoint_{preset_name}"
    save_model(folder, cfg, build_networks(cfg))
    return str(folder)


FLOOR_TEMPLATE = """specificationVersion: jobtemplate-2023-09
extensions: [TASK_CHUNKING]
name: floor
parameterDefinitions:
  - {name: Frames, type: STRING}
  - {name: ChunkSize, type: INT}
steps:
  - name: Render
    parameterSpace:
      taskParameterDefinitions:
        - {name: Frames, type: "CHUNK[INT]", range: "{{Param.Frames}}",
           chunks: {defaultTaskCount: "{{Param.ChunkSize}}", rangeConstraint: NONCONTIGUOUS}}
    stepEnvironments:
      - name: Nothing
        script: {actions: {onEnter: {command: "true"}, onExit: {command: "true"}}}
    script:
      actions:
        onRun: {command: "true", args: ["{{Task.Param.Frames}}"]}
"""


def openjd_floor(work: Path, frames: int, chunk: int, env: dict) -> float:
    """Wall time of `openjd run` itself for the same chunks and environment actions, each running `true`."""
    template = work / "floor.yaml"
    template.write_text(FLOOR_TEMPLATE)
    return timed([str(BIN / "openjd"), "run", str(template), "-p", f"Frames=1-{frames}", "-p", f"ChunkSize={chunk}"],
                 env)[0]


def timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench_farm: {' '.join(cmd[:3])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed, result


def frames_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.exr"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--chunk", default="8", help="frames per chunk; a comma list measures several (8,48)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--engines", default="warp,fewshot")
    p.add_argument("--preset", default="tiny", help="fewshot checkpoint preset (random weights)")
    p.add_argument("--size", type=int, default=512, help="portrait size in pixels (the astronaut, resized)")
    p.add_argument("--finetune-steps", type=int, default=0,
                   help="fewshot: fine-tune steps (0: embed only; either way chunks reuse the first one's model)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()

    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]), "PYTHONUNBUFFERED": "1"}
    work = Path(tempfile.mkdtemp(prefix="bench_farm_"))
    portrait, driver = make_inputs(work, args.frames, args.size)
    report = {"frames": args.frames, "portrait": f"skimage astronaut {args.size}x{args.size}",
              "load_average_at_start": os.getloadavg()[0], "runs": []}
    checkpoints = {}
    for engine in args.engines.split(","):
        flags = ["--engine", engine]
        params = {"Portrait": portrait, "Driver": driver, "Name": "bench", "Frames": f"1-{args.frames}",
                  "Engine": engine}
        if engine == "fewshot":
            checkpoints.setdefault(args.preset, make_checkpoint(work, args.preset))
            flags += ["--checkpoint", checkpoints[args.preset], "--finetune-steps", str(args.finetune_steps),
                      "--device", "cpu"]
            params.update({"Checkpoint": checkpoints[args.preset], "FinetuneSteps": str(args.finetune_steps),
                           "Device": "cpu"})
        for chunk in (int(c) for c in args.chunk.split(",")):
            chunks = -(-args.frames // chunk)
            times = {"one": [], "off": [], "on": [], "floor": []}
            for r in range(args.repeats):
                one_out = work / f"{engine}_one"
                t_one, _ = timed([str(BIN / "livingportrait"), "render", "--portrait", portrait, "--driver", driver,
                                  "--out", str(one_out), "--name", "bench", *flags], env)
                times["one"].append(t_one)
                times["floor"].append(openjd_floor(work, args.frames, chunk, env))
                one_frames = frames_of(one_out)
                shutil.rmtree(one_out)
                for worker in ("off", "on"):
                    chunk_out = work / f"{engine}_chunks_{worker}"
                    cmd = [str(BIN / "openjd"), "run", str(TEMPLATE)]
                    for key, value in {**params, "OutputDir": str(chunk_out), "ChunkSize": str(chunk),
                                       "SessionWorker": worker}.items():
                        cmd += ["-p", f"{key}={value}"]
                    t_chunks, result = timed(cmd, env)
                    if f"Chunks run: {chunks}" not in result.stdout:
                        raise SystemExit(f"bench_farm: openjd ran an unexpected number of chunks:\n{result.stdout[-1500:]}")
                    if worker == "on" and "jobs prepared: 1" not in result.stdout:
                        raise SystemExit(f"bench_farm: the session worker did not render the job:\n{result.stdout[-3000:]}")
                    if one_frames != frames_of(chunk_out) or len(one_frames) != args.frames:
                        raise SystemExit(f"bench_farm: {engine}: the chunked frames differ from the single render's")
                    times[worker].append(t_chunks)
                    shutil.rmtree(chunk_out)
                print(f"{engine}: one render {t_one:.1f} s; {chunks} chunks of {chunk} through openjd run: task "
                      f"processes {times['off'][-1]:.1f} s (+{100 * (times['off'][-1] / t_one - 1):.0f} %), warm "
                      f"session worker {times['on'][-1]:.1f} s (+{100 * (times['on'][-1] / t_one - 1):.0f} %); "
                      f"openjd run alone (tasks running `true`) {times['floor'][-1]:.2f} s; "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
            one = min(times["one"])
            report["runs"].append({
                "engine": engine, "chunk": chunk, "chunks": chunks,
                "one_render_s": [round(t, 2) for t in times["one"]],
                "openjd_task_processes_s": [round(t, 2) for t in times["off"]],
                "openjd_session_worker_s": [round(t, 2) for t in times["on"]],
                "openjd_run_alone_s": [round(t, 2) for t in times["floor"]],
                "openjd_run_alone_percent_of_one_render": round(100 * min(times["floor"]) / one, 1),
                "overhead_percent_task_processes": round(100 * (min(times["off"]) / one - 1), 1),
                "overhead_percent_session_worker": round(100 * (min(times["on"]) / one - 1), 1),
                "overhead_per_chunk_s_task_processes": round((min(times["off"]) - one) / chunks, 3),
                "overhead_per_chunk_s_session_worker": round((min(times["on"]) - one) / chunks, 3),
                "load_average_after": round(os.getloadavg()[0], 2), "byte_identical": True,
                **({"checkpoint": f"random {args.preset} preset", "finetune_steps": args.finetune_steps}
                   if engine == "fewshot" else {})})
    report["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
