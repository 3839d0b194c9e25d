"""The built extension inside real Blender 4.2 (oldest supported) and 5.0 (newest), against a real
backend over ZeroMQ.

For each Blender, ``tests/blender/scenarios.py`` runs once in that Blender's Python (the ``bpy`` wheel,
in ``.venv-bpy42`` / ``.venv-bpy50``, made by ``make blender-venvs``): it installs the zip, detects
landmarks on a clip, builds a rig, animates, renders the compositor, and tries the bad inputs. Its
observations come back as JSON; the tests below judge them, reading the EXR files with OpenEXR.
"""
import json
import os
import socket
import subprocess
import tomllib
import zipfile
from pathlib import Path

import cv2
import numpy as np
import OpenEXR
import pytest

import build_addon
from backend_process import BackendProcess
from landmark_videos import known_positions, make_driver_video, still_photo
from livingportrait_wire.landmarks import LandmarkSequence, save_sequence

ROOT = Path(__file__).resolve().parents[1]
BLENDERS = {"4.2": ROOT / ".venv-bpy42", "5.0": ROOT / ".venv-bpy50"}
FRAME_START, FRAME_END = 11, 18  # scene frames; not 1, so any off-by-one in the mapping shows
CLIP_FRAME_START = 9  # the actor's clip starts two frames before the animated range
CLIP_FRAME_OFFSET = 2  # and, where a test says so, skips the first two frames of its footage
SIZE = 384
# A still plane (marker coordinates, bottom-left origin, counter-clockwise from bottom-left) covering
# the middle of the plate: an axis-aligned square, so its centre shows the sequence's centre.
PLANE_CORNERS = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("addon_blender")


@pytest.fixture(scope="module")
def addon_zip(work):
    return build_addon.build("linux-x64", work / "dist", ROOT / "build" / "wheels")


@pytest.fixture(scope="module")
def portrait_png(work):
    image = still_photo(SIZE)
    path = work / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path, image


@pytest.fixture(scope="module")
def portrait_points(portrait_png):
    """The astronaut's own 68 landmarks (pixels), found by the offline detector."""
    from livingportrait_backend.detectors import detect_portrait_landmarks

    return detect_portrait_landmarks(portrait_png[1], "astronaut").points


@pytest.fixture(scope="module")
def driver_video(work):
    """The astronaut as the actor, swaying, turning and leaning by known affine maps (no noise)."""
    return make_driver_video(work / "actor.avi", count=20, kind="moving", noise=0.0, size=SIZE)


@pytest.fixture(scope="module")
def driver_sequence(work, driver_video):
    """The actor's footage as numbered PNG files starting at 0101 (a shot cut from a longer one)."""
    folder = work / "actor_frames"
    folder.mkdir()
    cap = cv2.VideoCapture(str(driver_video.path))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"actor.{101 + n:04d}.png"), frame)
        n += 1
    return folder / "actor.0101.png"


LONG_SEQUENCE = 60  # more images than one wire message may carry (40 buffers)


def ping_pong(n: int, count: int) -> int:
    """Footage frame (0-based) for the n-th file of a long sequence cut from ``count`` frames played
    forwards and backwards, so the motion stays smooth for Blender's tracker."""
    period = 2 * (count - 1)
    k = n % period
    return k if k < count else period - k


@pytest.fixture(scope="module")
def long_sequence(work, driver_sequence):
    """60 numbered PNG files (0001-0060): the actor's 20 frames played back and forth."""
    source = sorted(driver_sequence.parent.glob("actor.*.png"))
    folder = work / "long_frames"
    folder.mkdir()
    for n in range(LONG_SEQUENCE):
        (folder / f"long.{n + 1:04d}.png").write_bytes(source[ping_pong(n, len(source))].read_bytes())
    return folder / "long.0001.png"


FACELESS = (5, 6, 7)  # files (1-based) of the faceless sequence where the actor has left the frame


@pytest.fixture(scope="module")
def faceless_sequence(work, driver_sequence):
    """10 PNG files; on FACELESS the frame is an empty grey wall."""
    source = sorted(driver_sequence.parent.glob("actor.*.png"))
    folder = work / "faceless_frames"
    folder.mkdir()
    for n in range(1, 11):
        path = folder / f"gone.{n:04d}.png"
        if n in FACELESS:
            cv2.imwrite(str(path), np.full((SIZE, SIZE, 3), 128, np.uint8))
        else:
            path.write_bytes(source[n - 1].read_bytes())
    return folder / "gone.0001.png"


@pytest.fixture(scope="module")
def performance_npz(work, portrait_points):
    """A performance file with its own frame numbers (100...): the jaw drops steadily."""
    points = portrait_points
    n = FRAME_END - FRAME_START + 1
    landmarks = np.repeat(points[None], n, axis=0).astype(np.float32)
    for t in range(n):
        landmarks[t, 5:12, 1] += 2.0 * t
        landmarks[t, 56:59, 1] += 2.0 * t
        landmarks[t, 65:68, 1] += 2.0 * t
    path = work / "performance.npz"
    save_sequence(LandmarkSequence(landmarks, np.arange(100, 100 + n), (SIZE, SIZE)), path)
    return path


@pytest.fixture(scope="module")
def long_performance_npz(work, performance_npz):
    """200 frames: long enough that a cancel arrives while the job runs."""
    from livingportrait_wire.landmarks import load_sequence

    short = load_sequence(performance_npz)
    landmarks = np.repeat(short.landmarks[:1], 200, axis=0)
    landmarks[:, 5:12, 1] += np.linspace(0, 12, 200, dtype=np.float32)[:, None]
    path = work / "long_performance.npz"
    save_sequence(LandmarkSequence(landmarks, np.arange(200), short.image_size), path)
    return path


@pytest.fixture(scope="module")
def curve_backend(work):
    """A backend that admits only the artist's CurveZMQ key (keys made by `livingportrait keys`)."""
    keys, authorised = work / "keys", work / "authorised"
    cli = str(ROOT / ".venv" / "bin" / "livingportrait")
    for name in ("server", "artist", "stranger"):
        subprocess.run([cli, "keys", "generate", "--out", str(keys), "--name", name], check=True,
                       capture_output=True)
    authorised.mkdir()
    (authorised / "artist.key").write_bytes((keys / "artist.key").read_bytes())
    proc = BackendProcess("--server-key", str(keys / "server.key_secret"), "--authorized-keys", str(authorised))
    yield {"address": proc.address, "server_public": str(keys / "server.key"),
           "client_secret": str(keys / "artist.key_secret"), "stranger_secret": str(keys / "stranger.key_secret")}
    proc.stop()


SMALL_BUFFER = 64 * 1024  # a backend taking this little per buffer gets the actor's movie in parts


@pytest.fixture(scope="module")
def small_buffer_backend():
    proc = BackendProcess("--max-buffer-bytes", str(SMALL_BUFFER))
    yield proc
    proc.stop()


@pytest.fixture(scope="module", params=sorted(BLENDERS))
def blender(request, work, addon_zip, backend, curve_backend, small_buffer_backend, portrait_png, driver_video, driver_sequence,
            performance_npz, long_performance_npz, long_sequence, faceless_sequence):
    """Run the scenarios in one Blender version; returns (observations, scenario folder)."""
    version = request.param
    folder = work / f"blender_{version}"
    folder.mkdir()
    config = {"zip": str(addon_zip), "address": backend.address, "work": str(folder),
              "portrait": str(portrait_png[0]), "driver_video": str(driver_video.path),
              "driver_sequence": str(driver_sequence), "long_sequence": str(long_sequence),
              "long_sequence_frames": LONG_SEQUENCE, "faceless_sequence": str(faceless_sequence),
              "performance": str(performance_npz), "long_performance": str(long_performance_npz),
              "frame_start": FRAME_START, "frame_end": FRAME_END,
              "clip_frame_start": CLIP_FRAME_START,
              "clip_frame_offset": CLIP_FRAME_OFFSET, "plane_corners": PLANE_CORNERS,
              "unused_address": f"tcp://127.0.0.1:{free_port()}",
              "local_address": f"tcp://127.0.0.1:{free_port()}",
              "auto_address": f"tcp://127.0.0.1:{free_port()}",
              "hiccup_address": f"tcp://127.0.0.1:{free_port()}",
              "small_buffer_address": small_buffer_backend.address,
              "curve": curve_backend,
              "livingportrait_command": str(ROOT / ".venv" / "bin" / "livingportrait")}
    (folder / "config.json").write_text(json.dumps(config))
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(folder / "user"))
    python = BLENDERS[version] / "bin" / "python"
    run = subprocess.run([str(python), str(ROOT / "tests" / "blender" / "scenarios.py"),
                          str(folder / "config.json"), str(folder / "results.json")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (folder / "output.txt").write_text(run.stdout + run.stderr)
    results = json.loads((folder / "results.json").read_text())
    assert results["blender"].startswith(version)
    return results, folder


def scenario(blender, name):
    results, _ = blender
    obs = results[name]
    assert "failed" not in obs, obs.get("traceback", obs.get("failed"))
    return obs


def reported(error):
    """An operator's error report: present, and a message for a person, not a traceback."""
    assert error, "the operator reported no error"
    assert "Traceback" not in error, error
    return error


def read_exr(path):
    with OpenEXR.File(str(path)) as f:
        return {name: np.array(ch.pixels, dtype=np.float32) for name, ch in f.channels().items()}


def frame_files(name, first, last):
    return [f"{name}.{f:04d}.exr" for f in range(first, last + 1)]


WHEEL_TAGS = {"linux-x64": "manylinux", "macos-arm64": "macosx", "windows-x64": "win_amd64"}


@pytest.mark.parametrize("platform", sorted(WHEEL_TAGS))
def test_each_platform_zip_validates_and_carries_only_its_own_wheel(work, platform):
    zip_path = build_addon.build(platform, work / "dist_all", ROOT / "build" / "wheels")
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["id"] == "living_portrait" and manifest["platforms"] == [platform]
    (wheel,) = manifest["wheels"]
    assert wheel.startswith("./wheels/pyzmq-") and "cp311" in wheel and WHEEL_TAGS[platform] in wheel
    assert wheel[2:] in names
    assert "__init__.py" in names and "wire/client.py" in names and "wire/landmarks.py" in names
    assert not any("__pycache__" in n for n in names)
    # Blender's own extension tool accepts it (it checks the manifest, the wheels and the layout).
    tool = next(BLENDERS["5.0"].glob("lib/python3.11/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/"
                                     "blender_ext.py"))
    run = subprocess.run([str(BLENDERS["5.0"] / "bin" / "python"), str(tool), "validate", str(zip_path)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_extension_installs_enables_and_brings_its_own_pyzmq(blender):
    obs = scenario(blender, "install")
    assert obs["enabled"] and all(obs["has_operators"])
    # zmq comes from the wheel inside the zip, installed into Blender's extension site-packages.
    assert "/extensions/.local/" in obs["zmq_file"]
    assert obs["user_folder"].startswith(str(blender[1] / "user"))


def test_animate_from_file_writes_every_frame_named_by_scene_frame(blender):
    obs = scenario(blender, "animate_file")
    assert obs["error"] is None
    assert obs["files"] == frame_files("fromfile", FRAME_START, FRAME_END)
    assert obs["job_message"].startswith("Animate: done")


def test_compositor_image_node_reads_the_sequence_with_its_matte(blender):
    obs = scenario(blender, "animate_file")
    assert obs["render_layers_nodes"] == 0  # 4.2's default Render Layers would render the 3D scene on F12
    node = obs["node"]
    assert node["source"] == "SEQUENCE" and "matte" in node["outputs"]
    assert (node["frame_start"], node["frame_offset"], node["frame_duration"]) == (
        FRAME_START, FRAME_START - 1, FRAME_END - FRAME_START + 1)
    assert obs["matte_linked"]


def test_compositor_shows_the_right_frames_pixels_at_each_scene_frame(blender):
    obs = scenario(blender, "animate_file")
    folder = blender[1] / "frames_file"
    frames = {f: read_exr(folder / f"fromfile.{f:04d}.exr") for f in range(FRAME_START, FRAME_END + 1)}
    for scene_frame, render_path in obs["renders"].items():
        scene_frame = int(scene_frame)
        comp = read_exr(render_path)["RGBA"]
        errors = {}
        for f, chans in frames.items():
            # A fresh comp: the moved region (Set Alpha: beauty times matte) over the animated frame
            # itself, i.e. the whole frame, opaque; the first (neutral) frame, whose matte is empty, too.
            errors[f] = float(np.abs(comp[..., :3] - chans["RGBA"][..., :3]).mean())
        assert min(errors, key=errors.get) == scene_frame, errors
        assert errors[scene_frame] < 2e-3
        assert comp[..., 3].min() > 0.999, scene_frame
    assert frames[FRAME_START]["matte.Y"].max() < 0.01  # the neutral frame moved nowhere: masked, it was empty
    # The frames really differ, so picking the right one means something.
    assert np.abs(frames[FRAME_START]["RGBA"] - frames[FRAME_END]["RGBA"]).max() > 0.05


def srgb_to_linear(v):
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def test_pin_to_plane_puts_the_animation_on_the_plane_over_the_plate(blender, driver_video):
    obs = scenario(blender, "pin_to_plane")
    assert "no plane track 'No Such Plane'" in reported(obs["missing_error"]) and "Plane Track" in obs["missing_error"]
    assert obs["error"] is None
    (scene_frame, render_path), = obs["renders"].items()
    comp = read_exr(render_path)["RGBA"]
    sequence = read_exr(blender[1] / "frames_file" / f"fromfile.{int(scene_frame):04d}.exr")["RGBA"]
    c, r = SIZE // 2, 6
    # The plane's centre shows the sequence's centre (scaled by half, so compare small-window means).
    inside = comp[c - r:c + r, c - r:c + r, :3].mean(axis=(0, 1))
    expected = sequence[SIZE // 2 - 2 * r:SIZE // 2 + 2 * r, SIZE // 2 - 2 * r:SIZE // 2 + 2 * r, :3].mean(axis=(0, 1))
    assert np.abs(inside - expected).max() < 0.03, (inside, expected)
    # Outside the plane: the plate, i.e. the clip's footage frame for this scene frame.
    cap = cv2.VideoCapture(str(driver_video.path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, obs["clip_frame"] - 1)
    ok, bgr = cap.read()
    assert ok
    plate = srgb_to_linear(bgr[..., ::-1] / 255.0)
    corner = (slice(4, 40), slice(4, 40))
    assert np.abs(comp[corner][..., :3].mean(axis=(0, 1)) - plate[corner].mean(axis=(0, 1))).max() < 0.03


def test_detect_landmarks_brings_68_named_tracks_on_clip_frames(blender):
    obs = scenario(blender, "detect_tracks")
    assert obs["error"] is None
    assert obs["object"] == "Face" and len(obs["names"]) == 68
    assert obs["names"][0] == "jaw.00" and "inner_lips.67" in obs["names"]
    # Scene frames 11-18 are clip frames 3-10 for a clip starting at scene frame 9.
    first_clip = FRAME_START - CLIP_FRAME_START + 1
    assert obs["marker_frames"] == list(range(first_clip, first_clip + FRAME_END - FRAME_START + 1))
    assert obs["source_after"] == "CLIP"


def assert_markers_show_their_footage_frames(obs, driver_video, portrait_points, frame_offset=0):
    """The markers on the first and last clip frame of the range sit where the actor's landmarks are
    on the footage frame that clip frame shows (clip frame + offset), and nearer there than on any
    other footage frame."""
    known = known_positions(portrait_points, driver_video.affines)  # footage frame n is known[n - 1]
    first_clip = FRAME_START - CLIP_FRAME_START + 1
    for key, clip_frame in (("co_first_clip_frame", first_clip),
                            ("co_last_clip_frame", first_clip + FRAME_END - FRAME_START)):
        co = np.array(obs[key])
        # Marker coordinates: 0-1 with y up; landmarks: pixels with y down.
        pixels = np.stack([co[:, 0] * SIZE, (1 - co[:, 1]) * SIZE], axis=1)
        errors = np.linalg.norm(known - pixels[None], axis=2).mean(axis=1)
        footage_frame = clip_frame + frame_offset
        assert int(np.argmin(errors)) + 1 == footage_frame, errors
        assert errors[footage_frame - 1] < 3.0, errors


def test_detected_gaze_comes_as_two_tracks_and_back_with_the_performance(blender):
    obs = scenario(blender, "detect_tracks")
    assert obs["gaze_tracks"] == ["gaze.left_eye", "gaze.right_eye"]
    gaze, points = np.array(obs["gaze"]), np.array(obs["landmarks_read"])
    assert gaze.shape == (FRAME_END - FRAME_START + 1, 2, 2)
    for e, (a, b) in enumerate(((36, 39), (42, 45))):  # each iris between its eye's corners, every frame
        lo, hi = np.minimum(points[:, a, 0], points[:, b, 0]), np.maximum(points[:, a, 0], points[:, b, 0])
        assert np.all((lo < gaze[:, e, 0]) & (gaze[:, e, 0] < hi)), e


def test_detected_tracks_sit_on_the_actors_face_on_the_right_frames(blender, driver_video, portrait_points):
    obs = scenario(blender, "detect_tracks")
    assert_markers_show_their_footage_frames(obs, driver_video, portrait_points)


def test_detect_landmarks_on_an_image_sequence_clip_maps_files_to_frames(blender, driver_video, portrait_points):
    obs = scenario(blender, "detect_sequence_clip")
    assert obs["error"] is None and obs["source"] == "SEQUENCE" and obs["names"] == 68
    first_clip = FRAME_START - CLIP_FRAME_START + 1
    assert obs["marker_frames"] == list(range(first_clip, first_clip + FRAME_END - FRAME_START + 1))
    # With the clip's frame offset, clip frame c shows file 0100 + c + offset: footage frame c + offset.
    assert_markers_show_their_footage_frames(obs, driver_video, portrait_points, CLIP_FRAME_OFFSET)


def test_blender_shows_the_footage_frame_the_mapping_says(blender, driver_video):
    """The add-on's clip frame arithmetic agrees with what Blender's own Movie Clip node shows."""
    obs = scenario(blender, "clip_mapping")
    cap = cv2.VideoCapture(str(driver_video.path))
    footage = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        footage.append(srgb_to_linear(bgr[..., ::-1] / 255.0))
    for kind in ("movie", "sequence"):
        shown = read_exr(obs[kind])["RGBA"][..., :3]
        errors = [float(np.abs(shown - f).mean()) for f in footage]
        assert int(np.argmin(errors)) + 1 == obs[kind + "_footage_frame"], (kind, errors)
        assert obs[kind + "_footage_frame"] == FRAME_START + 2 - CLIP_FRAME_START + 1 + CLIP_FRAME_OFFSET


def test_animate_from_detected_tracks(blender):
    obs = scenario(blender, "animate_detected")
    assert obs["error"] is None
    assert obs["files"] == frame_files("fromdetected", FRAME_START, FRAME_END)


def test_animate_from_tracks_the_artist_has_on_a_clip(blender):
    obs = scenario(blender, "artist_tracks")
    assert obs["error"] is None
    assert obs["files"] == frame_files("fromclip", FRAME_START, FRAME_END)


def test_tracks_with_gaps_are_reported_with_track_and_frame(blender):
    obs = scenario(blender, "track_gaps")
    assert "tracks with gaps: outer_lips.51 at scene frames 13" in reported(obs["error"])
    assert obs["files"] == []


def test_wrong_track_count_is_reported(blender):
    obs = scenario(blender, "wrong_track_count")
    assert "wrong track count: the clip has 12 tracks" in reported(obs["error"])
    assert obs["files"] == []


def test_landmark_rig_sits_on_the_portraits_landmarks_and_drives_animate(blender):
    obs = scenario(blender, "rig")
    assert obs["error"] is None and obs["points"] == 68
    detected, sampled = np.array(obs["detected"]), np.array(obs["sampled_first"])
    assert detected.shape == (68, 2)
    assert np.abs(sampled - detected).max() < 0.05  # pixels, through the rig's plane and back
    # The hand-keyed jaw moved down in the portrait (+y in pixels), the eyes did not.
    opened = np.array(obs["opened"])
    assert (opened[5:12, 1] - detected[5:12, 1]).min() > 5.0
    assert np.abs(opened[36:48] - detected[36:48]).max() < 0.05
    assert obs["animate_error"] is None
    assert obs["files"] == frame_files("fromrig", FRAME_START, FRAME_END)


def test_timer_path_never_waits_and_frames_land_progressively(blender):
    obs = scenario(blender, "nonblocking")
    assert obs["done"] and obs["files"] == frame_files("stepped", FRAME_START, FRAME_END)
    # Each timer tick only applies what the worker thread queued: Blender's UI is held briefly.
    assert obs["median_step_s"] < 0.01, obs
    assert obs["max_step_s"] < 0.2, obs
    counts = obs["landed"]
    assert any(0 < c < len(obs["files"]) for c in counts)  # seen part-way, not all at once at the end
    assert obs["node_before_done"]


def test_cancel_stops_the_job_and_leaves_only_whole_frames(blender):
    obs = scenario(blender, "cancel")
    assert obs["error"] is not None and obs["error"].startswith("Cancelled")
    assert 1 <= len(obs["files"]) < 200
    assert all(f.endswith(".exr") and not f.startswith(".") for f in obs["files"])
    assert not obs["running"]


def test_missing_portrait_image_is_reported_and_nothing_written(blender):
    obs = scenario(blender, "missing_image")
    assert "missing image" in reported(obs["error"]) and "gone.png" in obs["error"]
    assert obs["files"] == []


def test_fewshot_without_a_checkpoint_says_what_to_set(blender):
    obs = scenario(blender, "fewshot_without_checkpoint")
    assert "needs its model: set Checkpoint" in reported(obs["error"])
    assert obs["files"] == []


def test_unreachable_backend_is_reported_within_the_timeout(blender):
    obs = scenario(blender, "unreachable")
    assert "no answer from the backend" in reported(obs["error"])
    assert obs["elapsed"] < 1.0 + 2.0
    assert obs["files"] == []
    # Interactively the handshake waits on the worker thread: the UI's timer ticks stay short.
    assert "no answer from the backend" in obs["timer_error"]
    assert obs["timer_elapsed"] < 1.0 + 2.0
    assert obs["timer_max_step_s"] < 0.05
    assert not obs["running_after"]


def test_the_engine_list_offers_bilayer_only_when_the_backend_does(blender):
    obs = scenario(blender, "engine_list")
    assert obs["check_error"] is None
    assert obs["offered"].split(",")[0] == "warp" and "bilayer" not in obs["offered"].split(",")
    assert obs["before"] == obs["after"] == ["warp", "fewshot"]
    assert obs["refused"] is not None, "an engine the backend does not offer cannot be chosen"
    # A scene saved with Bi-layer keeps it, and the panel says the backend does not offer it.
    assert obs["held"] == "bilayer"
    assert any("does not offer the Bi-layer engine" in p for p in obs["problems"]), obs["problems"]


def test_local_backend_starts_and_stops_from_preferences(blender):
    obs = scenario(blender, "local_backend")
    assert obs["start_error"] is None and obs["check_error"] is None
    assert obs["status"].startswith("Connected: protocol 1")
    assert obs["stop_error"] is None and not obs["running_after_stop"]
    assert obs["log"].startswith(str(blender[1] / "user"))
    with pytest.raises(ProcessLookupError):
        os.kill(obs["pid"], 0)


def test_curvezmq_keys_from_preferences_reach_a_secured_backend(blender):
    obs = scenario(blender, "curve")
    assert obs["authorised"] is None
    assert "does not know this client's CurveZMQ key" in reported(obs["stranger"])
    assert "needs both key files" in reported(obs["half"])


def test_panel_draws_every_setting_with_real_properties_and_operators(blender):
    obs = scenario(blender, "panel")
    assert all(obs["registered"])
    for source, log in obs["drawn"].items():
        props = {entry[2] for entry in log if entry[0] == "prop"}
        assert all(entry[3] for entry in log if entry[0] == "prop"), log
        assert all(entry[2] for entry in log if entry[0] in ("operator", "uilist")), log
        assert {"portraits", "source", "engine", "motion_mode", "smoothing", "expression_scale", "regions",
                "checkpoint", "finetune_steps", "use_scene_range", "frame_start", "frame_end", "output_dir"} <= props
        ops = {entry[1] for entry in log if entry[0] == "operator"}
        assert "living_portrait.animate" in ops and "living_portrait.backend_check" in ops
    assert "living_portrait.detect_landmarks" in {e[1] for e in obs["drawn"]["CLIP"] if e[0] == "operator"}
    assert "living_portrait.create_rig" in {e[1] for e in obs["drawn"]["RIG"] if e[0] == "operator"}
    assert "performance_file" in {e[2] for e in obs["drawn"]["FILE"] if e[0] == "prop"}
    # While a job runs: its progress bar and a Cancel button instead of Animate.
    running = obs["running"]
    assert ["progress", "Animate: 25%"] in running
    ops = {entry[1] for entry in running if entry[0] == "operator"}
    assert "living_portrait.cancel" in ops and "living_portrait.animate" not in ops


def test_disabling_removes_everything_and_enabling_again_restores_it(blender):
    obs = scenario(blender, "disable_enable")
    assert not any(obs["after_disable"].values()), obs
    assert all(obs["after_enable"].values()), obs


def test_a_local_backend_starts_by_itself_when_the_preference_says_so(blender):
    obs = scenario(blender, "auto_local_backend")
    assert obs["error"] is None and obs["started"]
    assert obs["files"] == frame_files("auto", FRAME_START, FRAME_END)


def test_a_local_backend_that_cannot_start_is_reported(blender):
    obs = scenario(blender, "auto_local_backend")
    assert "could not start the backend" in reported(obs["missing_command"])
    assert "no-such-livingportrait" in obs["missing_command"]
    assert "exited as it started (exit code 1)" in reported(obs["exits_at_once"])
    assert obs["missing_command_files"] == [] and obs["exits_at_once_files"] == []


# ---- issue 12: the add-on in an artist's hands ----------------------------------------------------------
def marker_pixels(co):
    """[[x, y, mute], ...] marker coordinates -> pixels (top-left origin) [N, 2]."""
    co = np.array([c[:2] for c in co], dtype=np.float64)
    return np.stack([co[:, 0] * SIZE, (1 - co[:, 1]) * SIZE], axis=1)


def test_detect_on_a_sequence_longer_than_one_message_tracks_every_frame(blender, driver_video, portrait_points):
    obs = scenario(blender, "detect_long_sequence")
    assert obs["error"] is None and obs["tracks"] == 68
    assert obs["marker_frames"] == list(range(1, LONG_SEQUENCE + 1))
    known = known_positions(portrait_points, driver_video.affines)
    for frame, co in obs["co"].items():
        footage = ping_pong(int(frame) - 1, len(known))
        assert not any(c[2] for c in co)
        assert np.linalg.norm(marker_pixels(co) - known[footage], axis=1).mean() < 3.0, frame
    # The stage is shown while it runs, counted over the whole range (not per message).
    counts = [int(m.rsplit(" ", 1)[1].split("/")[0]) for m in obs["messages"] if m.startswith("Detect: Detecting ")]
    assert counts and all(m.endswith(f"/{LONG_SEQUENCE}") for m in obs["messages"] if "Detecting " in m)
    assert max(counts) > 39 and counts == sorted(counts)


def test_a_movie_larger_than_the_buffer_limit_detects_sent_in_parts(blender, driver_video, portrait_points):
    obs = scenario(blender, "detect_movie_in_parts")
    assert obs["error"] is None and obs["size"] > 4 * SMALL_BUFFER
    assert "Living Portrait Detect: Sending the footage" in (blender[1] / "output.txt").read_text()
    first_clip = FRAME_START - CLIP_FRAME_START + 1
    assert obs["marker_frames"] == list(range(first_clip, first_clip + FRAME_END - FRAME_START + 1))
    assert_markers_show_their_footage_frames(obs, driver_video, portrait_points)


def test_a_detected_track_is_retracked_by_blenders_tracker(blender):
    obs = scenario(blender, "retrack")
    assert obs["result"] == ["FINISHED"]
    # Boxes follow the face: a pattern of a few percent of the face, a search area around it.
    assert 6.5 <= obs["pattern_px"][0] <= 25 and obs["search_px"][0] >= 2.5 * obs["pattern_px"][0]
    for frame in range(2, 12):
        tracked, detected = obs["tracked"][str(frame)], obs["detected"][str(frame)]
        assert tracked is not None and not tracked[2], (frame, tracked)
        assert np.linalg.norm(marker_pixels([tracked]) - marker_pixels([detected])) < 3.0, frame


def test_create_rig_keeps_the_performance_source_and_its_own_collection(blender):
    obs = scenario(blender, "rig")
    assert obs["source_after"] == obs["source_before"] == "CLIP"
    assert obs["rig_collection_in_scene"] and obs["rig_collection_objects"] == 1 + 68 + 2
    # Keyable gaze (mediapipe sees the irises): two points in the eyes, their keys reach the performance.
    detected = np.array(obs["detected"])
    assert obs["gaze_points"] == 2
    gaze, looked = np.array(obs["gaze_first"]), np.array(obs["gaze_opened"])
    for e, (a, b) in enumerate(((36, 39), (42, 45))):
        assert detected[a, 0] < gaze[e, 0] < detected[b, 0], (e, gaze, detected[a], detected[b])
    assert np.all(looked[:, 0] - gaze[:, 0] > 1.0) and np.abs(looked[:, 1] - gaze[:, 1]).max() < 0.05
    assert obs["active_collection_added"] == 0


def test_frames_without_a_face_are_reported_and_shown_as_disabled_markers(blender):
    obs = scenario(blender, "faceless")
    assert obs["error"] is None
    (level, text), = obs["reports"]
    assert level == "WARNING" and "no face found on 3 frame(s): scene frames 5-7" in text
    assert obs["muted"] == list(FACELESS)
    assert "tracks with gaps" in reported(obs["animate_error"]) and "5-7" in obs["animate_error"]


def test_redetecting_a_sub_range_keeps_the_markers_outside_it(blender):
    obs = scenario(blender, "subrange_redetect")
    assert obs["error"] is None
    assert obs["after_frames"] == obs["before_frames"]
    assert obs["after"]["outside"] == obs["fixed"]["outside"]  # the hand fix outside the range stays
    assert abs(obs["after"]["inside"][0] - obs["fixed"]["inside"][0]) > 0.03  # inside: detected again


def test_a_range_past_the_clip_says_where_the_clip_ends_and_offers_the_fix(blender):
    obs = scenario(blender, "range_vs_clip")
    assert not obs["can_animate"]
    clip_end = CLIP_FRAME_START + 20 - 1
    assert f"ends at scene frame {clip_end}" in reported(obs["error"]) and "Set Range to Clip" in obs["error"]
    assert "and 64 more" not in obs["error"] and "tracks with gaps" not in obs["error"]
    (text, fix, fix_text), = [p for p in obs["problems"] if not p[0].startswith("no backend")]
    assert f"ends at scene frame {clip_end}" in text and fix == "living_portrait.range_to_clip"
    assert "living_portrait.range_to_clip" in obs["panel_operators"]
    assert obs["fix_error"] is None and obs["fixed_range"] == [CLIP_FRAME_START, clip_end]
    # The range problem is gone; what stands now is the truth about the tracks (detected on 11-18 only).
    assert not any("ends at scene frame" in p for p in obs["problems_after"])
    assert any(p.startswith("tracks with gaps") for p in obs["problems_after"])


def test_add_portrait_image_refuses_a_file_that_is_no_image(blender):
    obs = scenario(blender, "portrait_add_refuses")
    assert "not an image Blender can read" in reported(obs["error"])
    assert obs["portraits_added"] == 0 and obs["images_added"] == 0


def test_ctrl_c_in_a_blocking_animate_leaves_no_running_job(blender):
    obs = scenario(blender, "ctrl_c")
    assert obs["raised"] is not None and obs["files"] >= 1
    assert not obs["running"] and obs["message"] == "Animate: cancelled"


def test_a_killed_local_backend_is_reported_at_once_and_an_orphan_is_found(blender):
    obs = scenario(blender, "killed_backend")
    assert obs["start_error"] is None and obs["check_error"] is None
    assert "exit code -9" in reported(obs["error"]) and obs["reported_after_s"] < 5.0
    assert not obs["status"][0].startswith("Connected") and "exited" in obs["status"][0]
    assert any("local backend exited" in p for p in obs["problems"]) and not obs["can_animate"]
    assert not obs["running"]
    assert "already uses" in reported(obs["orphan_start"]) and not obs["orphan_local"]
    assert obs["orphan_check"] is None and "did not start" in obs["orphan_status"]


def test_a_backend_hiccup_in_the_ui_reconnects_and_resumes_like_background_runs(blender):
    obs = scenario(blender, "hiccup")
    assert obs["error"] is None, obs["error"]
    assert obs["files"] == frame_files("hiccup", FRAME_START, FRAME_START + 39)
    assert obs["killed"] and obs["resumed"] >= 1
    assert any("resumed 1x after the backend went away" in m for m in obs["messages"]), obs["messages"]
    assert not obs["running"]


def test_background_runs_print_their_stages_and_the_panel_shows_them(blender):
    output = (blender[1] / "output.txt").read_text()
    assert "Living Portrait Animate: Rendering" in output and "Living Portrait Animate: done" in output
    obs = scenario(blender, "nonblocking")
    assert any(m.startswith("Animate: Rendering ") and m.endswith(f"/{FRAME_END - FRAME_START + 1}")
               for m in obs["messages"]), obs["messages"]


def test_a_refused_job_replaces_the_previous_message(blender):
    obs = scenario(blender, "missing_image")
    assert obs["job_message"].startswith("Animate: missing image")


def test_pickers_for_plate_plane_track_and_tracking_object_in_sub_panels(blender):
    obs = scenario(blender, "pickers")
    for source, log in obs["drawn"].items():
        searches = {(e[2], e[5]) for e in log if e[0] == "prop_search"}
        assert ("plane_track", "plane_tracks") in searches, source
        assert ("plate" in {e[2] for e in log if e[0] == "prop"}), source
        assert all(e[3] for e in log if e[0] in ("prop", "prop_search")), log
    assert ("tracking_object", "objects") in {(e[2], e[5]) for e in obs["drawn"]["CLIP"] if e[0] == "prop_search"}
    assert obs["poll_s"] < 0.005  # Animate's poll never reads the tracks (several polls per redraw)
    assert {n.rsplit("_", 1)[1] for n in obs["sub_panels"]} == {"portrait", "performance", "engine", "output",
                                                               "plate", "backend"}


def test_check_backend_waits_on_a_thread_not_the_ui(blender):
    obs = scenario(blender, "check_backend_nonblocking")
    gone, there = obs["unreachable"], obs["reachable"]
    assert gone["done"] and gone["status"].startswith("Unreachable: ") and gone["elapsed"] < 2.0 + 2.0
    assert gone["max_step_s"] < 0.05  # the UI's ticks stay short while the handshake times out
    assert there["done"] and there["status"].startswith("Connected: protocol 1") and there["max_step_s"] < 0.05
    # The panel lists the missing backend with its button (not blocking: one may start meanwhile).
    assert [p for p in gone["problems"] if p[0].startswith("no backend answered")] == [
        [f"no backend answered at {gone['address']} when last checked", "living_portrait.backend_start", []]]
    assert not any(p[0].startswith("no backend") for p in there["problems"])
