"""The add-on's Blender-free logic, imported from the staged extension tree (what the zip ships)."""
import ast
import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import build_addon


@pytest.fixture(scope="module")
def lp(tmp_path_factory):
    """The staged ``living_portrait`` package (with its vendored ``wire``), imported without bpy."""
    root = tmp_path_factory.mktemp("stage")
    build_addon.stage(root)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("living_portrait")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "living_portrait" or n.startswith("living_portrait.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def fm(lp):
    return importlib.import_module("living_portrait.frame_mapping")


@pytest.fixture(scope="module")
def ta(lp):
    return importlib.import_module("living_portrait.track_arrays")


def test_clip_and_scene_frames_round_trip(fm):
    # A clip placed at scene frame 101: its first frame (1) is shown at 101.
    assert fm.scene_to_clip(101, 101) == 1
    assert fm.scene_to_clip(110, 101) == 10
    frames = np.arange(-5, 40)
    assert np.array_equal(fm.scene_to_clip(frames + 7 - 1, 7), frames)


def test_footage_frame_uses_frame_offset_only(fm):
    assert fm.clip_to_footage_frame(1, 0) == 1
    assert fm.clip_to_footage_frame(1, 12) == 13
    assert fm.clip_to_footage_frame(5, 3) == 8


def test_image_sequence_clip_frames_name_their_files(fm, lp):
    # A clip opened as shot.0037.png shows that file on clip frame 1.
    assert fm.sequence_file("/plates/shot.0037.png", 1, 0) == (37, "/plates/shot.0037.png")
    assert fm.sequence_file("/plates/shot.0037.png", 4, 0) == (40, "/plates/shot.0040.png")
    assert fm.sequence_file("/plates/v2/shot_0998.exr", 5, 2) == (1004, "/plates/v2/shot_1004.exr")
    with pytest.raises(lp.wire.errors.BadInput, match="need a frame number"):
        fm.sequence_file("/plates/still.png", 1, 0)


def shown_file_frame(scene_frame, timing):
    """Blender's rule: the file frame a non-cyclic Image node with ``timing`` shows at ``scene_frame``
    (tests/test_addon_blender.py checks it against real Blender)."""
    local = min(max(scene_frame - timing.frame_start + 1, 1), timing.frame_duration)
    return local + timing.frame_offset


def test_sequence_timing_shows_each_file_on_its_scene_frame(fm):
    timing = fm.sequence_timing(first_file_frame=20, last_file_frame=30, first_scene_frame=20)
    assert [shown_file_frame(f, timing) for f in range(20, 31)] == list(range(20, 31))
    # Outside the range the node holds the first / last file.
    assert shown_file_frame(5, timing) == 20
    assert shown_file_frame(99, timing) == 30


def test_sequence_timing_can_slide_files_along_the_timeline(fm):
    timing = fm.sequence_timing(first_file_frame=1, last_file_frame=10, first_scene_frame=50)
    assert (timing.frame_start, timing.frame_offset, timing.frame_duration) == (50, 0, 10)
    assert shown_file_frame(53, timing) == 4


def test_job_frame_range_defaults_to_the_scene_and_rejects_backwards(fm, lp):
    assert fm.job_frame_range(True, (1, 250), (7, 9)) == (1, 250)
    assert fm.job_frame_range(False, (1, 250), (7, 9)) == (7, 9)
    with pytest.raises(lp.wire.errors.BadInput, match="ends before it starts"):
        fm.job_frame_range(False, (1, 250), (9, 7))


def test_shift_frames_keeps_gaps(fm):
    assert fm.shift_frames(np.array([10, 11, 13]), 1).tolist() == [1, 2, 4]


def test_format_spans(fm):
    assert fm.format_spans([3, 4, 5, 7, 9, 10]) == "3-5, 7, 9-10"


def test_track_names_follow_face_parts_and_ibug_order(ta):
    assert len(ta.TRACK_NAMES) == 68
    assert ta.TRACK_NAMES[0] == "jaw.00" and ta.TRACK_NAMES[36] == "right_eye.36"
    assert ta.TRACK_NAMES[67] == "inner_lips.67"
    assert ta.track_index("nose_bridge.27") == 27
    assert ta.track_index("jaw.27") is None and ta.track_index("Track.001") is None


def test_track_order_from_names_ignores_other_tracks(ta):
    names = ["plate_corner"] + list(reversed(ta.TRACK_NAMES))
    order = ta.landmark_track_order(names)
    assert [names[p] for p in order] == list(ta.TRACK_NAMES)


def test_track_order_reports_missing_landmark_tracks(ta, lp):
    names = list(ta.TRACK_NAMES[:60])
    with pytest.raises(lp.wire.errors.BadInput, match="wrong track count: 60 of the 68.*missing inner_lips.60"):
        ta.landmark_track_order(names)


def test_track_order_takes_68_unnamed_tracks_in_order_and_rejects_other_counts(ta, lp):
    assert ta.landmark_track_order([f"Track.{i:03d}" for i in range(68)]) == list(range(68))
    with pytest.raises(lp.wire.errors.BadInput, match="wrong track count: the clip has 12 tracks"):
        ta.landmark_track_order([f"Track.{i:03d}" for i in range(12)])


def test_markers_and_pixels_round_trip_with_flipped_origin(ta):
    size = (1920, 1080)
    px = np.array([[0.0, 0.0], [1920.0, 1080.0], [480.0, 270.0]])
    co = ta.pixels_to_normalized(px, size)
    assert np.allclose(co, [[0, 1], [1, 0], [0.25, 0.75]])
    assert np.allclose(ta.normalized_to_pixels(co, size), px)


def test_sequence_from_markers_builds_scene_framed_pixels(ta):
    rng = np.random.default_rng(0)
    size = (640, 480)
    pixels = rng.uniform([0, 0], size, size=(5, 68, 2))
    seq_in = ta.LandmarkSequence(pixels, np.arange(10, 15), size)
    co = ta.markers_from_sequence(seq_in)
    assert co.shape == (68, 5, 2)
    seq = ta.sequence_from_markers(co, np.arange(10, 15), size)
    assert seq.frames.tolist() == [10, 11, 12, 13, 14]
    assert seq.image_size == size
    assert np.allclose(seq.landmarks, pixels, atol=1e-3)


def test_sequence_from_markers_names_tracks_and_frames_of_gaps(ta, lp):
    co = np.full((68, 6, 2), 0.5)
    co[48, 2:4] = np.nan
    co[3, 5] = np.nan
    with pytest.raises(lp.wire.errors.BadInput) as err:
        ta.sequence_from_markers(co, np.arange(101, 107), (100, 100))
    assert "tracks with gaps: jaw.03 at scene frames 106; outer_lips.48 at scene frames 103-104" in str(err.value)


def test_rig_plane_and_pixels_round_trip(lp):
    rs = importlib.import_module("living_portrait.rig_space")
    size = (800, 400)
    local = rs.pixels_to_local(np.array([[0, 0], [800, 400], [400, 200]]), size, display_size=2.0)
    # 2 units wide along the longer side, 1 unit tall, centred, +Y up.
    assert np.allclose(local, [[-1, 0.5], [1, -0.5], [0, 0]])
    assert np.allclose(rs.local_to_pixels(local, size, 2.0), [[0, 0], [800, 400], [400, 200]])


def test_local_backend_refuses_non_loopback_addresses(lp):
    lb = importlib.import_module("living_portrait.local_backend")
    lb.check_loopback("tcp://127.0.0.1:5557")
    with pytest.raises(lp.wire.errors.BadInput, match="not on this machine"):
        lb.check_loopback("tcp://10.0.0.3:5557")
    with pytest.raises(lp.wire.errors.BadInput, match="not understood"):
        lb.check_loopback("127.0.0.1")


# ---- no report names a command-line flag (issue 12, item 8) --------------------------------------------
CLI_WORDS = re.compile(r"--[a-z]|\$LIVINGPORTRAIT_|livingportrait serve")
REPORTING_CALLS = {"report", "BadInput", "LivingPortraitError", "BackendUnavailable", "Cancelled", "Problem",
                   "_refuse", "append"}


def _strings(node) -> list[str]:
    """The literal text of a call's arguments (f-strings by their constant parts)."""
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
    return out


def test_no_add_on_report_names_a_cli_flag():
    root = Path(__file__).resolve().parents[1] / "addon"
    offenders = []
    for path in sorted(root.glob("*.py")):
        if path.name == "ui_text.py":
            continue  # the translation table itself
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in REPORTING_CALLS:
                    offenders += [f"{path.name}: {text}" for text in _strings(node) if CLI_WORDS.search(text)]
    assert offenders == []


def test_backend_messages_reach_the_artist_in_the_add_ons_words(lp):
    ui_text = importlib.import_module("living_portrait.ui_text")
    backend = Path(__file__).resolve().parents[1] / "backend"
    messages = []
    for path in sorted(backend.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("BadInput", "LivingPortraitError"):
                text = "".join(_strings(node))
                if CLI_WORDS.search(text):
                    messages.append(text)
    assert len(messages) > 5  # the backend does speak to CLI users; the add-on translates
    assert "try --detector fan or another --face-index" in " ".join(messages)
    for text in messages:
        assert not CLI_WORDS.search(ui_text.for_artist(text)), (text, ui_text.for_artist(text))
    assert ui_text.for_artist("no face found; try --detector fan or another --face-index") == \
        "no face found; try the FAN detector or another Face number"


def test_a_local_backend_does_not_outlive_a_killed_blender(lp, tmp_path):
    """Blender killed (SIGKILL: no atexit) must not leave its local backend holding the port."""
    import os
    import signal
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    stage = Path(sys.modules["living_portrait"].__file__).parents[1]
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]); import importlib; "
         "lb = importlib.import_module('living_portrait.local_backend'); b = lb.LocalBackend(); "
         "b.start(sys.argv[2], sys.argv[3], sys.argv[4]); print(b.process.pid, flush=True); time.sleep(600)",
         str(stage), str(root / ".venv" / "bin" / "livingportrait"), f"tcp://127.0.0.1:{port}",
         str(tmp_path / "backend.log")], stdout=subprocess.PIPE, text=True)
    backend_pid = int(parent.stdout.readline())
    local_backend = importlib.import_module("living_portrait.local_backend")
    deadline = time.monotonic() + 30
    while not local_backend.port_in_use(f"tcp://127.0.0.1:{port}"):  # the backend is listening
        assert time.monotonic() < deadline, (tmp_path / "backend.log").read_text()
        time.sleep(0.05)  # polling with a deadline, not synchronising on time
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    killed = time.monotonic()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"

    while alive(backend_pid):
        assert time.monotonic() - killed < 10, "the backend outlived its Blender"
        time.sleep(0.05)
    assert not local_backend.port_in_use(f"tcp://127.0.0.1:{port}")
    assert "has gone: stopping" in (tmp_path / "backend.log").read_text()
