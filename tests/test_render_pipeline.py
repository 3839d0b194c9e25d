"""The Foundation end to end: a real backend process, a real client over ZeroMQ, EXR files on disk."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import OpenEXR
import pytest
import zmq

from livingportrait_backend.colorspace import SRGB8_TO_LINEAR
from livingportrait_wire.client import BackendClient, RenderJob
from livingportrait_wire.codec import decode, encode
from livingportrait_wire.errors import BackendUnavailable, BadInput
from livingportrait_wire.protocol import ERROR, HELLO, SERVER_TYPES, ErrorCode

CLI = [sys.executable, "-m", "livingportrait_backend"]


def exr_names(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".exr"))


def channels(path):
    with OpenEXR.File(str(path), separate_channels=True) as f:
        return dict(f.header()), {k: v.pixels.copy() for k, v in f.channels().items()}


def cli(*args, timeout=300):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def remote_render(backend, astronaut_png, short_performance, tmp_path_factory):
    out = tmp_path_factory.mktemp("remote")
    with open(astronaut_png, "rb") as f:
        portrait = f.read()
    with BackendClient(backend.address) as client:
        info = client.handshake()
        stream = client.submit(RenderJob([portrait], short_performance, str(out), "astro"))
        events = []
        stream.wait(events.append)
    return out, info, events


def test_handshake_announces_engines_detectors_and_limits(remote_render):
    _, info, _ = remote_render
    assert info["protocol"] == 1
    assert "warp" in info["engines"] and "mediapipe" in info["detectors"]
    assert info["limits"]["max_frames_per_job"] > 0


def test_frames_stream_into_named_exr_files(remote_render, short_performance):
    out, _, events = remote_render
    assert exr_names(out) == [f"astro.{f:04d}.exr" for f in short_performance.frames]
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert any(type(e).__name__ == "ProgressEvent" for e in events)


def test_frames_are_linear_half_rgba_with_matte_and_metadata(remote_render, astronaut_png):
    import cv2

    out, _, _ = remote_render
    header, ch = channels(out / "astro.0001.exr")
    assert sorted(ch) == ["A", "B", "G", "R", "matte.Y"]
    assert all(c.dtype == np.float16 for c in ch.values())
    assert header["livingportrait.engine"] == "warp" and header["livingportrait.frame"] == 1
    assert header["livingportrait.protocol"] == 1 and len(header["livingportrait.portrait"]) == 16
    # A corner pixel far from the face is the portrait's own pixel, decoded from sRGB to linear.
    srgb = cv2.imread(astronaut_png)[:, :, ::-1]
    np.testing.assert_allclose(ch["R"][5, 5], SRGB8_TO_LINEAR[srgb[5, 5, 0]], rtol=1e-3)
    np.testing.assert_allclose(ch["B"][500, 300], SRGB8_TO_LINEAR[srgb[500, 300, 2]], rtol=1e-3)


def test_background_far_from_the_face_never_changes(remote_render, short_performance):
    out, _, _ = remote_render
    frames = [channels(out / f)[1] for f in exr_names(out)]
    first = np.stack([frames[0][c] for c in "RGB"], -1)
    moved = np.zeros(first.shape[:2], bool)
    for ch in frames[1:]:
        rgb = np.stack([ch[c] for c in "RGB"], -1)
        moved |= np.any(rgb != first, axis=-1)
    assert moved.any(), "the performance must move the face"
    # The astronaut's face spans roughly x 160-300, y 40-220: the suit, flag and rocket stay still.
    assert not moved[300:, :].any() and not moved[:, 400:].any() and not moved[:, :80].any()
    mattes = np.stack([ch["matte.Y"] for ch in frames])
    assert mattes.max() > 0.5 and not mattes[:, 300:, :].any()


def test_in_process_and_over_the_wire_renders_are_identical(remote_render, astronaut_png,
                                                            short_performance_npz, tmp_path):
    out, _, _ = remote_render
    result = cli("render", "--portrait", astronaut_png, "--driver", short_performance_npz,
                 "--out", str(tmp_path), "--name", "astro")
    assert result.returncode == 0, result.stderr
    assert exr_names(tmp_path) == exr_names(out)
    for name in exr_names(out):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_farm_render_resumes_and_renders_only_its_range(astronaut_png, short_performance_npz, tmp_path):
    args = ["render", "--portrait", astronaut_png, "--driver", short_performance_npz, "--out", str(tmp_path)]
    first = cli(*args, "--frames", "3-5")
    assert first.returncode == 0, first.stderr
    assert exr_names(tmp_path) == ["portrait.0003.exr", "portrait.0004.exr", "portrait.0005.exr"]
    # A stray temp file from a killed task is cleaned up, and complete frames are not redone.
    (tmp_path / ".portrait.0006.exr.abc.tmp").write_bytes(b"partial")
    before = (tmp_path / "portrait.0004.exr").stat().st_mtime_ns
    second = cli(*args)
    assert second.returncode == 0, second.stderr
    assert "wrote 5 frame(s), skipped 3" in second.stdout
    assert (tmp_path / "portrait.0004.exr").stat().st_mtime_ns == before
    assert len(exr_names(tmp_path)) == 8 and not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # Changed settings make different pictures: nothing is skipped then.
    third = cli(*args, "--expression-scale", "0.5")
    assert third.returncode == 0 and "wrote 8 frame(s), skipped 0" in third.stdout


def test_every_subcommand_has_help():
    from livingportrait_backend.cli import COMMANDS

    assert cli("--help").returncode == 0
    for name in COMMANDS:
        result = cli(name, "--help", timeout=120)
        assert result.returncode == 0 and "usage" in result.stdout, name


# ---- bad input: a clear message, a non-zero exit, nothing half-written -----------------------

def test_a_portrait_that_is_not_an_image(tmp_path, short_performance_npz):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    result = cli("render", "--portrait", str(bogus), "--driver", short_performance_npz, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "notes.png: not an image" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")


def test_an_image_without_a_face(tmp_path, short_performance_npz):
    import cv2

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 180, np.uint8))
    result = cli("render", "--portrait", str(blank), "--driver", short_performance_npz, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "wall.png: no face found" in result.stderr and "--portrait-landmarks" in result.stderr
    assert not os.listdir(tmp_path / "o")


@pytest.mark.parametrize("problem, expect", [("shape", "shape [T, 68, 2]"), ("nan", "NaN"),
                                             ("order", "strictly increasing")])
def test_bad_landmark_files(tmp_path, astronaut_png, short_performance, problem, expect):
    arrays = short_performance.to_arrays()
    lm, frames = arrays["landmarks"].copy(), arrays["frames"].copy()
    if problem == "shape":
        lm = lm[:, :60]
    elif problem == "nan":
        lm[2, 10, 1] = np.nan
    else:
        frames[3] = frames[2]
    path = tmp_path / "perf.npz"
    np.savez(path, landmarks=lm, frames=frames, image_size=arrays["image_size"], layout=arrays["layout"])
    result = cli("render", "--portrait", astronaut_png, "--driver", str(path), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and expect in result.stderr and "perf.npz" in result.stderr
    assert not (tmp_path / "o").exists()


def test_an_output_folder_that_cannot_be_written(tmp_path, astronaut_png, short_performance_npz):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("render", "--portrait", astronaut_png, "--driver", short_performance_npz,
                 "--out", str(blocker / "frames"))
    assert result.returncode == 2 and "cannot be written" in result.stderr


def test_a_backend_that_is_not_running(tmp_path, astronaut_png, short_performance_npz):
    with zmq.Context.instance().socket(zmq.ROUTER) as probe:  # find a port nobody listens on
        port = probe.bind_to_random_port("tcp://127.0.0.1")
    started = time.monotonic()
    result = cli("render", "--portrait", astronaut_png, "--driver", short_performance_npz, "--out",
                 str(tmp_path / "o"), "--connect", f"tcp://127.0.0.1:{port}", "--timeout", "2")
    assert time.monotonic() - started < 15
    assert result.returncode == 2 and "no answer from the backend" in result.stderr
    assert not exr_names(tmp_path / "o")


def raw_exchange(address, frames):
    """Send raw frames from a bare DEALER and return the decoded answer."""
    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(address)
        sock.send_multipart(frames)
        assert sock.poll(10_000), "the backend did not answer"
        return decode(sock.recv_multipart(), expect=SERVER_TYPES)


def test_protocol_version_mismatch_gets_a_typed_error(backend):
    header = json.loads(encode(HELLO, "h1")[0])
    header["v"] = 7
    answer = raw_exchange(backend.address, [json.dumps(header).encode()])
    assert answer.type == ERROR and answer.id == "h1" and answer.header["code"] == ErrorCode.BAD_VERSION


def test_malformed_and_lying_messages_get_typed_errors_and_the_server_carries_on(backend):
    answer = raw_exchange(backend.address, [b"{broken json"])
    assert answer.type == ERROR and answer.header["code"] == ErrorCode.BAD_MESSAGE
    lying = {"v": 1, "type": "submit", "id": "j9", "kind": "render",
             "buffers": [{"name": "frames", "kind": "array", "dtype": "int32", "shape": [100], "nbytes": 400}]}
    answer = raw_exchange(backend.address, [json.dumps(lying).encode(), b"\0" * 8])
    assert answer.type == ERROR and answer.id == "j9" and answer.header["code"] == ErrorCode.BAD_MESSAGE
    with BackendClient(backend.address) as client:
        assert client.handshake()["protocol"] == 1


def test_bad_input_on_the_wire_is_a_typed_error(backend, short_performance, tmp_path):
    with BackendClient(backend.address) as client:
        stream = client.submit(RenderJob([b"definitely not a png"], short_performance, str(tmp_path), "x",
                                         portrait_names=["mystery.png"]))
        with pytest.raises(BadInput, match="mystery.png: not an image"):
            stream.wait()
    assert stream.error.code == ErrorCode.BAD_INPUT and not exr_names(tmp_path)


def test_client_gives_up_quickly_on_a_silent_address():
    with zmq.Context.instance().socket(zmq.ROUTER) as silent:  # accepts connections, never answers
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        started = time.monotonic()
        with BackendClient(f"tcp://127.0.0.1:{port}", timeout_s=1.0) as client:
            with pytest.raises(BackendUnavailable, match="within 1 s"):
                client.handshake()
        assert time.monotonic() - started < 3


def test_smoothing_in_the_settings_cleans_up_a_jittery_driver(astronaut_png, short_performance):
    from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
    from livingportrait_backend.images import read_portrait_file
    from livingportrait_wire.landmarks import LandmarkSequence

    noisy = LandmarkSequence(short_performance.landmarks
                             + np.random.default_rng(1).normal(0, 1.5, short_performance.landmarks.shape),
                             short_performance.frames, short_performance.image_size)
    portrait = read_portrait_file(astronaut_png)[1]

    def jitter(settings):
        r = FrameRenderer(RenderSpec([portrait], noisy, settings=settings))
        r.prepare()
        t = np.stack([r.targets[f] for f in r.frames])
        return np.abs(np.diff(t, axis=0)).mean()

    assert jitter({"smoothing": 2.0}) < 0.5 * jitter({})


def test_a_finished_renderer_is_freed_without_waiting_for_the_garbage_collector(astronaut_png, short_performance):
    import gc
    import weakref

    from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
    from livingportrait_backend.images import read_portrait_file

    r = FrameRenderer(RenderSpec([read_portrait_file(astronaut_png)[1]], short_performance),
                      on_progress=lambda *a: None)
    r.prepare()
    next(r.encoded(r.frames[:1]))
    ref = weakref.ref(r)
    gc.disable()
    try:
        del r
        assert ref() is None, "a reference cycle keeps the renderer (and its frame buffers) alive"
    finally:
        gc.enable()


def test_zip_level_trades_speed_for_size_and_bad_levels_are_named(astronaut_png, short_performance_npz, tmp_path):
    args = ["render", "--portrait", astronaut_png, "--driver", short_performance_npz, "--frames", "2"]
    assert cli(*args, "--out", str(tmp_path / "fast")).returncode == 0
    assert cli(*args, "--out", str(tmp_path / "small"), "--zip-level", "9").returncode == 0
    fast, small = (tmp_path / "fast" / "portrait.0002.exr"), (tmp_path / "small" / "portrait.0002.exr")
    assert small.stat().st_size < fast.stat().st_size
    np.testing.assert_array_equal(channels(small)[1]["R"], channels(fast)[1]["R"])  # lossless either way
    bad = cli(*args, "--out", str(tmp_path / "bad"), "--zip-level", "12")
    assert bad.returncode == 2 and "zip_level: 12" in bad.stderr


def test_several_clients_at_once_each_get_their_own_frames(backend, remote_render, astronaut_png,
                                                           short_performance, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    reference, _, _ = remote_render
    with open(astronaut_png, "rb") as f:
        portrait = f.read()

    def one_client(i):
        out = tmp_path / f"client{i}"
        with BackendClient(backend.address) as client:  # each thread owns its own socket
            client.submit(RenderJob([portrait], short_performance, str(out), "astro", window=2)).wait()
        return out

    with ThreadPoolExecutor(max_workers=3) as pool:
        outs = list(pool.map(one_client, range(3)))
    for out in outs:
        assert exr_names(out) == exr_names(reference)
        for name in exr_names(out):
            assert (out / name).read_bytes() == (reference / name).read_bytes(), (out, name)
