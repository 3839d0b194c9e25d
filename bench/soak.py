"""Soak: the backend under hostile input, many concurrent clients and kill -9, on loopback only.

Bounded in count (the flags) and in time (every wait has a deadline). Prints three blocks of figures
and exits non-zero when any target is missed:
1. hostile: N malformed / truncated / oversized / lying messages (tests/hostile_messages.py), each
   checked against the documented answer, while an honest client keeps rendering beside them:
   0 crashes, 0 hangs, 0 wrong answers, backend RSS growth over the run < 10 %.
2. concurrent: C clients x F frames at once, each with its own tinted portrait and name: 0 frames lost,
   0 delivered to the wrong client, every file a valid EXR (read back), samples byte-identical to farm mode.
3. kill: T trials, each killing the backend with SIGKILL after a random frame and restarting it on the same
   address: the client notices within 5 s, resumes, and the sequence is byte-identical to an uninterrupted
   run with no partial files.

    .venv/bin/python bench/soak.py [--hostile 10000] [--clients 16] [--frames 100] [--trials 20]
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from backend_process import BackendProcess  # noqa: E402
from hostile_messages import HostileClient, hostile_message  # noqa: E402
from small_render_job import portrait_png, render_job  # noqa: E402

from livingportrait_backend.exr import read_attributes  # noqa: E402
from livingportrait_backend.farm import render_frames  # noqa: E402
from livingportrait_backend.frame_renderer import RenderSpec  # noqa: E402
from livingportrait_backend.images import decode_portrait  # noqa: E402
from livingportrait_wire.client import BackendClient, ConnectionLost, FrameWritten  # noqa: E402
from livingportrait_wire.errors import LivingPortraitError  # noqa: E402

SMALL_LIMITS = ["--max-header-bytes", "8192", "--max-buffers", "8", "--max-buffer-bytes", "300000",
                "--max-image-pixels", "40000", "--max-frames-per-job", "200"]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of ``pid`` in KiB from /proc/PID/status: VmRSS (resident) or RssAnon (its heap
    part; the rest is mapped library pages, which come and go with the machine's memory pressure)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def idle_rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of an idle backend: the least of ten readings over a second, so the last job's
    freeing is over."""
    readings = []
    for _ in range(10):
        readings.append((rss_kib(pid), rss_kib(pid, "RssAnon")))
        time.sleep(0.1)
    return min(r[0] for r in readings), min(r[1] for r in readings)


def drain_stderr(proc: BackendProcess) -> list[str]:
    """Collect the backend's log lines in a thread, so a full pipe can never block it."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.proc.stderr), daemon=True).start()
    return lines


def farm_reference(out_dir: str, **job_args) -> dict[str, bytes]:
    """An uninterrupted in-process render of ``render_job(**job_args)``: file name -> bytes."""
    job = render_job(out_dir, **job_args)
    spec = RenderSpec([decode_portrait(job.portraits[0], "portrait")], job.driver, name=job.name,
                      portrait_landmarks=job.portrait_landmarks)
    render_frames(spec, out_dir, progress=False)
    return {name: open(os.path.join(out_dir, name), "rb").read() for name in os.listdir(out_dir)
            if name.endswith(".exr")}


def check_exr(path: str) -> bool:
    import numpy as np
    import OpenEXR

    with OpenEXR.File(path, separate_channels=True) as f:
        channels = f.channels()
        return (set(channels) >= {"R", "G", "B", "A"}
                and all(channels[c].pixels.dtype == np.float16 and np.all(np.isfinite(channels[c].pixels))
                        for c in "RGBA"))


# ---- 1. hostile messages ------------------------------------------------------------------------
def soak_hostile(count: int, seed: int, work: str, warm_up: int = 2000) -> bool:
    backend = BackendProcess(*SMALL_LIMITS)
    log = drain_stderr(backend)
    rng = random.Random(seed)
    hostile = HostileClient(backend.address)
    stop, rendering, idle = threading.Event(), threading.Event(), threading.Event()
    honest = {"jobs": 0, "errors": []}

    def honest_client():
        # Rendering beside the flood: the backend must keep serving the well-mannered.
        with BackendClient(backend.address) as client:
            while not stop.is_set():
                if not rendering.is_set():
                    idle.set()
                    rendering.wait(0.1)
                    continue
                idle.clear()
                try:
                    stream = client.submit(render_job(os.path.join(work, "honest"), name="honest", frames=12))
                    stream.wait()
                    honest["jobs"] += 1
                except LivingPortraitError as err:
                    honest["errors"].append(err.message)
                    return
        idle.set()

    def idle_rss() -> tuple[int, int]:
        rendering.clear()
        idle.wait(60)
        rss = idle_rss_kib(backend.pid)
        rendering.set()
        return rss

    outcomes: collections.Counter = collections.Counter()
    crashes = hangs = wrong = 0
    thread = threading.Thread(target=honest_client)
    thread.start()
    rendering.set()
    try:
        # Warm-up, honest client included: every code path and thread has run before the baseline.
        for _ in range(warm_up):
            hostile.send_and_check(hostile_message(rng, hostile.limits))
        rss_series = [idle_rss()]
        started = time.monotonic()
        for i in range(count):
            try:
                outcomes[hostile.send_and_check(hostile_message(rng, hostile.limits))] += 1
            except AssertionError as err:
                if backend.proc.poll() is not None:
                    crashes += 1
                    break
                if "did not answer" in str(err):
                    hangs += 1
                else:
                    wrong += 1
                    print(f"  wrong answer: {str(err)[:300]}")
            if (i + 1) % 2000 == 0:
                rss_series.append(idle_rss())
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        rendering.set()
        thread.join(60)
        hostile.close()
        crashed = backend.proc.poll() is not None
        backend.stop()
    crashes += crashed
    growth = (rss_series[-1][0] - rss_series[0][0]) / rss_series[0][0] * 100
    heap_growth = (rss_series[-1][1] - rss_series[0][1]) / rss_series[0][1] * 100
    answered = sum(outcomes.values())
    print(f"1. hostile: {answered} of {count} messages answered or dropped as documented in {elapsed:.1f} s "
          f"({answered / elapsed:.0f}/s); crashes {crashes}, hangs {hangs}, wrong answers {wrong}")
    print(f"   outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"   backend VmRSS when idle, after {warm_up} warm-up messages then every 2000 (MiB): "
          + " ".join(f"{r[0] / 1024:.1f}" for r in rss_series) + f": growth {growth:+.1f} %")
    print(f"   of which heap (RssAnon) (MiB): " + " ".join(f"{r[1] / 1024:.1f}" for r in rss_series)
          + f": growth {heap_growth:+.1f} %")
    print(f"   honest client beside the flood: {honest['jobs']} jobs of 12 frames done, "
          f"{len(honest['errors'])} failed {honest['errors'][:1]}; tracebacks in the backend's log: "
          f"{sum('Traceback' in line for line in log)}")
    return (crashes == 0 and hangs == 0 and wrong == 0 and answered == count and growth < 10
            and honest["jobs"] > 0 and not honest["errors"] and not any("Traceback" in line for line in log))


# ---- 2. concurrent clients ----------------------------------------------------------------------
def soak_concurrent(clients: int, frames: int, work: str) -> bool:
    backend = BackendProcess()
    drain_stderr(backend)
    results: dict[int, object] = {}

    def client_run(i: int) -> None:
        try:
            with BackendClient(backend.address) as client:
                job = render_job(os.path.join(work, f"client{i:02d}"), name=f"client{i:02d}", frames=frames,
                                 tint=8 * i)
                results[i] = client.submit(job).wait()
        except Exception as exc:  # reported below as a failed client
            results[i] = exc

    started = time.monotonic()
    threads = [threading.Thread(target=client_run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    elapsed = time.monotonic() - started
    backend.stop()

    lost = wrong = invalid = partial = failed = mismatched = 0
    for i in range(clients):
        name, folder = f"client{i:02d}", os.path.join(work, f"client{i:02d}")
        if i not in results or isinstance(results[i], Exception):
            failed += 1
        digest = decode_portrait(portrait_png(8 * i), "p").digest
        files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        partial += sum(f.endswith(".tmp") for f in files)
        expected = [f"{name}.{f:04d}.exr" for f in range(1, frames + 1)]
        lost += len(set(expected) - set(files))
        wrong += len(set(files) - set(expected) - {f for f in files if f.endswith(".tmp")})
        for f in set(files) & set(expected):
            path = os.path.join(folder, f)
            attrs = read_attributes(path) or {}
            if attrs.get("livingportrait.name") != name or attrs.get("livingportrait.portrait") != digest:
                wrong += 1
            elif not check_exr(path):
                invalid += 1
        reference = farm_reference(os.path.join(work, f"reference{i:02d}"), name=name, frames=frames, tint=8 * i)
        for f in expected[:: max(1, frames // 3)]:
            if os.path.exists(os.path.join(folder, f)):
                mismatched += open(os.path.join(folder, f), "rb").read() != reference[f]
    total = clients * frames
    print(f"2. concurrent: {clients} clients x {frames} frames = {total} frames in {elapsed:.1f} s "
          f"({total / elapsed:.0f} frames/s); lost {lost}, delivered to the wrong client {wrong}, invalid files "
          f"{invalid}, partial files {partial}, failed clients {failed}, sampled frames differing from farm "
          f"mode {mismatched}")
    return lost == wrong == invalid == partial == failed == mismatched == 0


# ---- 3. kill -9 trials --------------------------------------------------------------------------
def soak_kills(trials: int, seed: int, work: str, frames: int = 48) -> bool:
    rng = random.Random(seed)
    reference = farm_reference(os.path.join(work, "kill-reference"), frames=frames)
    detections, identical, partial, failures = [], 0, 0, []
    for trial in range(trials):
        out = os.path.join(work, f"kill{trial:02d}")
        kill_after = rng.randint(1, frames - 1)
        backend = BackendProcess()
        drain_stderr(backend)
        processes = [backend]
        times: dict[str, float] = {}
        stream = None

        def on_event(event):
            if isinstance(event, FrameWritten) and "kill" not in times and len(stream.frames_written) >= kill_after:
                backend.kill()
                times["kill"] = time.monotonic()
            elif isinstance(event, ConnectionLost):
                times["lost"] = time.monotonic()
                processes.append(BackendProcess("--bind", backend.address))  # same address, fresh process

        try:
            with BackendClient(backend.address) as client:
                stream = client.submit(render_job(out, frames=frames, window=2))
                stream.wait(on_event)
        except LivingPortraitError as err:
            failures.append(f"trial {trial}: {err.message}")
        finally:
            for proc in processes:
                proc.stop()
        if "lost" in times and "kill" in times:
            detections.append(times["lost"] - times["kill"])
        files = sorted(os.listdir(out))
        partial += sum(f.endswith(".tmp") for f in files)
        if files == sorted(reference) and all(open(os.path.join(out, f), "rb").read() == reference[f] for f in files):
            identical += 1
    clean = sum(d < 5.0 for d in detections)
    print(f"3. kill -9: {trials} trials at random frames: {clean} detected within 5 s "
          f"(min {min(detections, default=0):.2f} s, median {statistics.median(detections or [0]):.2f} s, "
          f"max {max(detections, default=0):.2f} s), {identical} resumed sequences byte-identical, "
          f"{partial} partial files, {len(failures)} failed {failures[:1]}")
    return clean == trials and identical == trials and partial == 0 and not failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hostile", type=int, default=10_000, help="hostile messages (default 10000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--frames", type=int, default=100, help="frames per concurrent client (default 100)")
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials (default 20)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as each part ends
    work = tempfile.mkdtemp(prefix="livingportrait-soak-")
    try:
        ok = [soak_hostile(args.hostile, args.seed, work) if args.hostile else True,
              soak_concurrent(args.clients, args.frames, work) if args.clients else True,
              soak_kills(args.trials, args.seed, work) if args.trials else True]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("soak: all targets met" if all(ok) else "soak: TARGETS MISSED")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
