"""Farm mode: render a frame range in-process, writing the same files a server would stream.

Idempotent per frame, as every render farm wants: a frame whose file is already complete and was
made by the same job (portraits, performance, engine, settings: ``livingportrait.job``) is skipped,
stray temp files from a killed run are removed, and each frame is written atomically, so a killed
task leaves only whole frames behind.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from livingportrait_wire.atomic_write import is_temp_file
from livingportrait_wire.frame_writer import FrameWriter, ensure_output_folder

from .exr import read_attributes
from .farm_environment import stage_reporter
from .frame_renderer import FrameRenderer, RenderSpec, select_frames
from .prepare_cache import job_cache_dir
from .progress import Progress


@dataclass
class FarmResult:
    written: list[int]
    skipped: list[int]
    out_dir: str
    cache_hits: list[str] = field(default_factory=list)  # what preparation came from the job's cache


def remove_stray_temp_files(out_dir: str, name: str) -> None:
    for entry in os.listdir(out_dir):
        if is_temp_file(entry) and entry.startswith(f".{name}."):
            os.unlink(os.path.join(out_dir, entry))


def render_frames(spec: RenderSpec, out_dir: str, progress: bool = True, on_missing=None,
                  renderer: FrameRenderer | None = None) -> FarmResult:
    """Render ``spec`` into ``out_dir``; returns which frames were written and which were skipped.
    ``on_missing(missing, rendering)`` hears of frames asked for that the performance does not have.
    ``renderer``: one made for every frame of the same job (a session worker keeps it prepared between
    tasks); ``spec.frames`` are then rendered with it, prepared only if it is not yet."""
    ensure_output_folder(out_dir)
    if renderer is None:
        # Chunks of one job share what only the portrait decides, through the cache beside the output.
        renderer = FrameRenderer(spec, stage_reporter() if progress else None, cache_dir=job_cache_dir(out_dir))
        frames, missing = renderer.frames, renderer.missing_frames
    else:
        frames, missing = select_frames(spec.driver, spec.frames)
    if missing and on_missing:
        on_missing(missing, frames)
    remove_stray_temp_files(out_dir, spec.name)
    pending, skipped = [], []
    cache_hits: list[str] = []
    for frame in frames:
        attrs = read_attributes(os.path.join(out_dir, renderer.filename(frame)))
        done = (attrs is not None and attrs.get("livingportrait.job") == renderer.job_digest
                and attrs.get("livingportrait.frame") == frame)
        (skipped if done else pending).append(frame)
    written: list[int] = []
    if pending:
        if not renderer.prepared:
            renderer.prepare()
            cache_hits = renderer.cache_hits
        bar = Progress(len(pending), f"render {spec.name}") if progress else None
        write_frames(renderer, pending, out_dir, lambda frame: (written.append(frame), bar and bar.update(len(written))))
        if bar:
            bar.close()
    return FarmResult(written, skipped, out_dir, cache_hits)


def write_frames(renderer: FrameRenderer, frames: list[int], out_dir: str, on_written=None) -> None:
    """Encode ``frames`` of a prepared renderer into ``out_dir``, each file atomically, in order.

    The client's FrameWriter takes the files (write, fsync, rename) while the next frames are
    synthesised and compressed; a failed write stops the render with its error.
    """
    with FrameWriter() as writer:
        for frame, data in renderer.encoded(frames):
            writer.write(frame, os.path.join(out_dir, renderer.filename(frame)), data)
            for done, _ in writer.finished():
                if on_written:
                    on_written(done)
        for done, _ in writer.finished(everything=True):
            if on_written:
                on_written(done)
