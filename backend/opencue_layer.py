"""OpenCue: a pyoutline layer that renders one chunk of frames per host call, and a submit helper.

Needs OpenCue's Python packages (``pip install opencue-pyoutline opencue-rqd packaging``); nothing else in
the backend imports this module. Cuebot gives each task the layer's frame range and chunk size; on the
host, ``pycuerun OUTLINE.yaml -e FRAME-LAYER`` loads the outline, computes the task's frames from them
(pyoutline's local frame set) and calls ``_execute`` with those frames, which runs::

    livingportrait render --portrait ... --driver ... --out ... --name ... --frames 9-12

Frames are idempotent per file, so a retried task renders only what is missing. A plain shell layer
without pyoutline can run ``livingportrait render`` with no ``--frames``: it reads the chunk from the
``CUE_IFRAME``/``CUE_CHUNK``/``CUE_RANGE`` variables RQD sets (``farm_environment.py``).

    from livingportrait_backend.opencue_layer import build_outline, submit
    ol = build_outline("astronaut", portrait="/shows/x/astronaut.png", driver="/shows/x/talk.npz",
                       out="/shows/x/renders/astronaut", frames="1-96", chunk=8)
    submit(ol)   # needs a Cuebot (CUEBOT_HOSTS) to launch to
"""
from __future__ import annotations

import outline
import outline.cuerun
from outline.layer import Layer

from livingportrait_wire.naming import format_frames


class LivingPortraitRender(Layer):
    """One Living Portrait sequence as an OpenCue layer. Arguments (strings, as pyoutline stores them):
    ``portrait``, ``driver``, ``out``, ``sequence_name``, optional ``portrait_landmarks``, ``engine``,
    ``render_args`` (a list of further ``render`` flags, e.g. ``["--checkpoint", "/models/paper"]``) and
    ``executable`` (default ``livingportrait``, found on the host's PATH). ``chunk`` and ``range`` are
    pyoutline's own layer arguments."""

    def __init__(self, name: str, **args):
        Layer.__init__(self, name, **args)
        for key in ("portrait", "driver", "out", "sequence_name"):
            self.require_arg(key)
        # The host's GPU booking reaches the command as CUE_GPU_CORES; `render` maps it to CUDA.
        self.set_default_arg("engine", "warp")
        self.set_default_arg("executable", "livingportrait")
        self.set_default_arg("portrait_landmarks", "")
        self.set_default_arg("render_args", [])

    def command(self, frames) -> list[str]:
        """The ``livingportrait render`` command line for ``frames`` (ints)."""
        cmd = [self.get_arg("executable"), "render", "--portrait", self.get_arg("portrait"),
               "--driver", self.get_arg("driver"), "--out", self.get_arg("out"),
               "--name", self.get_arg("sequence_name"), "--engine", self.get_arg("engine")]
        if self.get_arg("portrait_landmarks"):
            cmd += ["--portrait-landmarks", self.get_arg("portrait_landmarks")]
        return cmd + [str(a) for a in self.get_arg("render_args")] + ["--frames", format_frames(frames)]

    def _execute(self, frames) -> None:
        # Layer.system raises when the command fails, so RQD sees the task fail and Cuebot retries it.
        self.system(self.command(sorted(int(f) for f in frames)))


def build_outline(sequence_name: str, *, portrait: str, driver: str, out: str, frames: str, chunk: int = 8,
                  engine: str = "warp", portrait_landmarks: str = "", render_args: list[str] | None = None,
                  executable: str = "livingportrait", service: str | None = None, show: str | None = None,
                  shot: str | None = None, gpus: int = 0) -> outline.Outline:
    """An outline with one ``LivingPortraitRender`` layer named ``render`` over ``frames`` (an OpenCue
    frame set such as ``1-96``) in chunks of ``chunk`` frames. ``gpus`` > 0 books that many GPUs per
    task (a neural engine); ``service`` names the Cuebot service whose hosts have livingportrait."""
    # current=True: pyoutline adds a new layer to the current outline by itself (and would add it to a
    # stale one, such as the last outline loaded in this process, otherwise).
    ol = outline.Outline(f"livingportrait_{sequence_name}", frame_range=frames, show=show, shot=shot, current=True)
    layer = LivingPortraitRender("render", portrait=portrait, driver=driver, out=out, sequence_name=sequence_name,
                                 engine=engine, portrait_landmarks=portrait_landmarks,
                                 render_args=list(render_args or []), executable=executable, chunk=int(chunk),
                                 range=frames)
    if service:
        layer.set_service(service)
    if gpus:
        layer.set_arg("gpus", int(gpus))
    if not ol.is_layer(layer.get_name()):
        ol.add_layer(layer)
    outline.Outline.current = None
    return ol


def submit(ol: outline.Outline, **launch_args):
    """Launch ``ol`` on the Cuebot that ``opencue`` is configured for (CUEBOT_HOSTS); returns the jobs."""
    return outline.cuerun.launch(ol, use_pycuerun=True, **launch_args)
