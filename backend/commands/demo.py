"""`livingportrait demo`: the whole product on an embedded default, through a real server."""
from __future__ import annotations

HELP = ("Animate the astronaut portrait (scikit-image) with the built-in performance through a real "
        "`serve` process over ZeroMQ; writes EXR frames, a contact sheet and an MP4.")


def add_arguments(p) -> None:
    p.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default out/demo)")
    p.add_argument("--engine", default="warp", help="engine (default warp)")


def run(args) -> int:
    import glob
    import os
    import subprocess
    import sys
    import time

    import cv2
    from skimage import data

    from livingportrait_wire.atomic_write import write_bytes_atomic
    from livingportrait_wire.client import BackendClient, FrameWritten, RenderJob
    from livingportrait_wire.frame_writer import ensure_output_folder
    from livingportrait_wire.landmarks import save_sequence

    from ..landmarks.performance import FPS, builtin_performance
    from ..preview import write_previews
    from ..progress import Progress

    out = os.path.abspath(args.out)
    frames_dir = os.path.join(out, "frames")
    ensure_output_folder(frames_dir)
    for old in glob.glob(os.path.join(frames_dir, "astronaut.*.exr")):
        os.unlink(old)
    ok, png = cv2.imencode(".png", data.astronaut()[:, :, ::-1])
    portrait_path = os.path.join(out, "astronaut.png")
    write_bytes_atomic(portrait_path, png.tobytes())
    performance = builtin_performance()
    performance_path = os.path.join(out, "performance.npz")
    save_sequence(performance, performance_path)

    # A real backend process on a free loopback port; its first line says where it listens.
    server = subprocess.Popen([sys.executable, "-m", "livingportrait_backend", "serve", "--bind", "tcp://127.0.0.1:*"],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the backend did not start (it said {line!r})")
        address = line.removeprefix("listening on ")
        print(f"backend started at {address} (pid {server.pid})")
        started = time.monotonic()
        with BackendClient(address) as client:
            info = client.handshake()
            print(f"handshake: protocol {info['protocol']}, engines {', '.join(info['engines'])}")
            job = RenderJob([png.tobytes()], performance, frames_dir, "astronaut", args.engine,
                            portrait_names=["astronaut.png"])
            stream = client.submit(job)
            bar = Progress(len(performance), "demo")
            stream.wait(lambda e: bar.update(len(stream.frames_written)) if isinstance(e, FrameWritten) else None)
            bar.close()
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)

    paths = sorted(glob.glob(os.path.join(frames_dir, "astronaut.*.exr")))
    sheet = os.path.join(out, "contact_sheet.png")
    mp4 = os.path.join(out, "astronaut.mp4")
    # The sheet shows the face close up (where anything moved); the movie shows the whole frame.
    write_previews(paths, sheet, mp4, FPS, labels=[f"frame {int(p.split('.')[-2])}" for p in paths])
    print(f"\n{len(paths)} frames in {elapsed:.1f} s through the backend")
    print(f"portrait:      {portrait_path}")
    print(f"performance:   {performance_path}")
    print(f"EXR frames:    {os.path.join(frames_dir, 'astronaut.####.exr')} ({paths[0]} .. {os.path.basename(paths[-1])})")
    print(f"contact sheet: {sheet}")
    print(f"movie:         {mp4}")
    return 0
