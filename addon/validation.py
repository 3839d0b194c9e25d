"""Problems shown before the click (as Dream Textures' ``validate()``): what is missing or wrong for the
chosen performance source, each with the button that fixes it. The panel lists them; Animate and
Detect are greyed out while a blocking one stands (their ``poll`` asks ``blocking_problem``).

Checks here are cheap (they run on every redraw): settings, file existence, the clip's span, the
local backend's process. Reading the tracks for gaps costs about 0.2 ms per frame (68 tracks), so the
panel does it for ranges up to MAX_GAP_CHECK_FRAMES, at most once per GAP_CHECK_REUSE_S for the same
clip and range; ``poll`` (asked several times per redraw) skips it, and the click checks every frame.
"""
import os
import time
from dataclasses import dataclass

import bpy
import numpy as np

from . import clip_tracks, job_inputs, landmark_rig, local_backend, preferences
from .wire.errors import BadInput

MAX_GAP_CHECK_FRAMES = 250
GAP_CHECK_REUSE_S = 1.0
_gap_cache: dict = {}  # (clip, object, first, last) -> (time, problem or None)


@dataclass
class Problem:
    """``text`` for the artist; ``fix``: the operator that fixes it ("" when the fix is a field to
    fill); ``blocks``: the jobs it stops ("animate", "detect")."""

    text: str
    fix: str = ""
    fix_text: str = ""
    blocks: tuple = ("animate",)


def _check(found: list, check, fix: str = "", fix_text: str = "", blocks=("animate",)) -> bool:
    """Run ``check()`` (one of the job inputs' own checks, so the panel and the click say the same);
    a BadInput it raises becomes a Problem. True when it passed."""
    try:
        check()
    except BadInput as err:
        found.append(Problem(err.message, fix, fix_text, blocks))
        return False
    return True


def problems(context, tracks: bool = True) -> list:
    """What stands in the way for the chosen source; ``tracks``: also read the clip's tracks for gaps."""
    scene = context.scene
    settings = scene.living_portrait
    found = []
    _check(found, lambda: job_inputs.portrait_images(settings), "living_portrait.portrait_add", "Add Portrait Image")
    if settings.source == "CLIP":
        clip = settings.clip
        if clip is None:
            found.append(Problem("no clip: choose the movie clip of the actor", blocks=("animate", "detect")))
        else:
            _clip_problems(found, scene, settings, clip, tracks)
    elif settings.source == "RIG":
        _check(found, lambda: landmark_rig.rig_points(settings.rig), "living_portrait.create_rig",
               "Create Landmark Rig")
    elif not settings.performance_file:
        found.append(Problem("no performance file: choose a .npz landmark performance"))
    elif not os.path.isfile(bpy.path.abspath(settings.performance_file)):
        found.append(Problem(f"no performance file at {settings.performance_file}; choose it again"))
    _check(found, lambda: job_inputs.engine_settings(settings))
    offered = context.window_manager.living_portrait_job.offered_engines
    if offered and settings.engine not in offered.split(","):
        found.append(Problem(f"the backend does not offer the {settings.engine_name()} engine (its weights "
                             "are not set up on the backend's machine); choose another engine or set them up "
                             "there and check the backend again", "living_portrait.backend_check",
                             "Check Backend"))
    local = local_backend.LOCAL
    status = context.window_manager.living_portrait_job.backend_status
    if status.startswith("Unreachable") and not (local.process is not None and not local.running):
        # The last check found no backend. Not blocking: one may have been started since.
        address = preferences.get(context).address
        loopback = local_backend.check_loopback_quiet(address)
        found.append(Problem(f"no backend answered at {address} when last checked",
                             "living_portrait.backend_start" if loopback else "living_portrait.backend_check",
                             "Start Local Backend" if loopback else "Check Backend", blocks=()))
    if local.process is not None and not local.running:
        found.append(Problem(f"the local backend exited (exit code {local.process.returncode}); start it "
                             "again", "living_portrait.backend_start", "Start Local Backend",
                             blocks=("animate", "detect")))
    return found


def _clip_problems(found: list, scene, settings, clip, tracks: bool) -> None:
    if clip.frame_duration <= 0 or clip.size[0] <= 0:
        found.append(Problem(f"clip {clip.name!r}: its footage cannot be read ({clip.filepath}); re-link it",
                             blocks=("animate", "detect")))
        return
    if not _check(found, lambda: job_inputs.check_range_in_clip(scene, settings, clip),
                  "living_portrait.range_to_clip", "Set Range to Clip"):
        return
    first, last = job_inputs.frame_range(scene, settings)
    obj = clip.tracking.objects.get(settings.tracking_object) if settings.tracking_object else None
    if obj is not None and len(obj.tracks) == 0 or obj is None and settings.tracking_object:
        found.append(Problem("no landmark tracks on the clip yet: detect them", "living_portrait.detect_landmarks",
                             "Detect Landmarks"))
        return
    if last - first + 1 > MAX_GAP_CHECK_FRAMES:
        return
    key = (clip.name, settings.tracking_object, first, last)
    now = time.monotonic()
    fresh = key in _gap_cache and now - _gap_cache[key][0] <= GAP_CHECK_REUSE_S
    if not tracks:
        # poll: only what the panel found in the last second (reading tracks here would slow every redraw)
        if fresh and _gap_cache[key][1] is not None:
            found.append(_gap_cache[key][1])
        return
    if not fresh:
        checked = []
        _check(checked, lambda: clip_tracks.read_tracks(clip, settings.tracking_object, np.arange(first, last + 1)),
               "living_portrait.detect_landmarks", "Detect Landmarks")
        _gap_cache.clear()
        _gap_cache[key] = (now, checked[0] if checked else None)
    if _gap_cache[key][1] is not None:
        found.append(_gap_cache[key][1])


def blocking_problem(context, job: str):
    """The first problem that stops ``job`` ("animate" or "detect"), or None."""
    return next((p for p in problems(context, tracks=False) if job in p.blocks), None)


def poll_job(cls, context, job: str) -> bool:
    """An operator's poll: False (with the problem as its tooltip) while a problem stops ``job``."""
    problem = blocking_problem(context, job)
    if problem is not None:
        cls.poll_message_set(problem.text)
        return False
    return True
