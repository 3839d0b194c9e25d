"""Liveness and flow control, observed from outside through real backend processes and sockets:
a killed backend is noticed within 5 s and the stream resumes to files identical to an uninterrupted
run; a vanished client's job is cancelled within 5 s; a client that stops granting credits holds the
backend to its window; the per-client job limit answers with its typed error."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from livingportrait_backend.farm import render_frames
from livingportrait_backend.frame_renderer import RenderSpec
from livingportrait_backend.images import decode_portrait
from livingportrait_wire.client import BackendClient, ConnectionLost, FrameWritten, Resumed
from livingportrait_wire.codec import decode, encode
from livingportrait_wire.errors import BackendUnavailable
from livingportrait_wire.landmarks import save_sequence
from livingportrait_wire.protocol import (CREDIT, ERROR, FRAME, HELLO, PING, PONG, SERVER_TYPES,
                                          WELCOME, ErrorCode)

from backend_process import BackendProcess
from small_render_job import performance, portrait_landmarks, portrait_png, render_job

FRAMES = 24


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sequence, rendered in-process (farm mode): file name -> bytes."""
    out = tmp_path_factory.mktemp("reference")
    job = render_job(out, frames=FRAMES)
    spec = RenderSpec([decode_portrait(portrait_png(), "portrait")], job.driver, name=job.name,
                      portrait_landmarks=job.portrait_landmarks)
    render_frames(spec, str(out), progress=False)
    return {name: (out / name).read_bytes() for name in os.listdir(out) if name.endswith(".exr")}


def assert_identical_and_whole(out_dir, reference):
    names = sorted(os.listdir(out_dir))
    assert not [n for n in names if n.endswith(".tmp")], f"partial files left: {names}"
    assert names == sorted(reference)
    for name in names:
        assert (out_dir / name).read_bytes() == reference[name], name


def test_killed_backend_is_noticed_within_5s_and_the_stream_resumes_identically(tmp_path, reference):
    backend = BackendProcess()
    address = backend.address
    restarted = []
    times = {}

    def on_event(event):
        if isinstance(event, FrameWritten) and len(stream.frames_written) >= 7 and "kill" not in times:
            backend.kill()  # kill -9 in the middle of the stream
            times["kill"] = time.monotonic()
        elif isinstance(event, ConnectionLost):
            times["lost"] = time.monotonic()
            restarted.append(BackendProcess("--bind", address))  # the same address, a fresh process
        elif isinstance(event, Resumed):
            times["resumed"] = event.frames_left
            times["had"] = len(stream.frames_written)

    try:
        with BackendClient(address, reconnect_s=20) as client:
            stream = client.submit(render_job(tmp_path, frames=FRAMES, window=2))
            stream.wait(on_event)
    finally:
        for proc in [backend, *restarted]:
            proc.stop()
    assert times["lost"] - times["kill"] < 5.0
    # It resumes from what it has: frames received before the kill (up to its window) were written.
    assert stream.resumes == 1 and 7 <= times["had"] < FRAMES and times["resumed"] == FRAMES - times["had"]
    assert sorted(stream.frames_written) == list(range(1, FRAMES + 1))
    assert_identical_and_whole(tmp_path, reference)


def test_backend_that_stays_dead_is_reported_clearly_with_only_whole_files(tmp_path, reference):
    backend = BackendProcess()
    times = {}

    def on_event(event):
        if isinstance(event, FrameWritten) and len(stream.frames_written) >= 3 and "kill" not in times:
            backend.kill()
            times["kill"] = time.monotonic()

    try:
        with BackendClient(backend.address) as client:
            stream = client.submit(render_job(tmp_path, frames=FRAMES, window=2))
            with pytest.raises(BackendUnavailable, match="did not come back within 2 s") as err:
                stream.wait(on_event, reconnect_s=2)
    finally:
        backend.stop()
    assert time.monotonic() - times["kill"] < 5.0 + 2.0 + 1.0
    assert "frame(s) were written to" in err.value.message
    names = sorted(os.listdir(tmp_path))
    assert names and not [n for n in names if n.endswith(".tmp")]
    for name in names:
        assert (tmp_path / name).read_bytes() == reference[name]


def test_cli_gives_up_on_a_dead_backend_with_a_clear_message_and_exit_2(tmp_path):
    backend = BackendProcess()
    np.save(tmp_path / "points.npy", portrait_landmarks())
    (tmp_path / "portrait.png").write_bytes(portrait_png())
    save_sequence(performance(200), tmp_path / "perf.npz")
    out = tmp_path / "out"
    cli = subprocess.Popen([sys.executable, "-m", "livingportrait_backend", "render", "--connect", backend.address,
                            "--portrait", str(tmp_path / "portrait.png"), "--driver", str(tmp_path / "perf.npz"),
                            "--portrait-landmarks", str(tmp_path / "points.npy"), "--out", str(out),
                            "--reconnect", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out.is_dir() and len(os.listdir(out)) >= 3):
            assert time.monotonic() < deadline and cli.poll() is None, "the CLI wrote no frames"
            time.sleep(0.05)  # polling the folder with a deadline, not synchronising on time
        backend.kill()
        killed = time.monotonic()
        _, stderr = cli.communicate(timeout=30)
        gave_up = time.monotonic() - killed
    finally:
        cli.kill()
        backend.stop()
    assert cli.returncode == 2
    assert "is silent" in stderr and "did not come back within 1 s" in stderr
    assert "Preparing" in stderr  # the stage before frames flow, not a bar stuck at 0
    assert "Traceback" not in stderr
    assert gave_up < 5.0 + 1.0 + 2.0
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


class RawClient:
    """A DEALER speaking the wire by hand, to behave as no well-mannered client would."""

    def __init__(self, address):
        import zmq

        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)
        self.send(encode(HELLO, "hello", {"heartbeat_ms": 1000}))
        assert self.recv(10).type == WELCOME

    def send(self, frames):
        self.sock.send_multipart(frames)

    def recv(self, timeout_s):
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        return decode(self.sock.recv_multipart(), expect=SERVER_TYPES)

    def close(self):
        self.sock.close(0)


def frames_through_heartbeats(client, job_id, frames, settle_at, deadline):
    """Ping (the client is alive) and count ``job_id``'s FRAMEs, starting from ``frames``, until four of
    the backend's heartbeats for the job have come after the count reached ``settle_at``."""
    heartbeats = 0
    while heartbeats < 4:
        assert time.monotonic() < deadline
        client.send(encode(PING, "keepalive"))
        msg = client.recv(1)
        if msg is not None and msg.id == job_id:
            frames += msg.type == FRAME
            heartbeats += msg.type == PONG and frames == settle_at
    return frames


def test_a_client_that_stops_granting_credits_gets_only_its_window(tmp_path):
    backend = BackendProcess()
    client = RawClient(backend.address)
    try:
        client.send(render_job(tmp_path, frames=40, window=2).message("stalled"))
        deadline = time.monotonic() + 30
        # The backend is alive and says so, but no frame comes past the window.
        frames = frames_through_heartbeats(client, "stalled", 0, 2, deadline)
        assert frames == 2
        # A lying grant of a million credits is capped at the window: two more frames, not the rest.
        client.send(encode(CREDIT, "stalled", {"credits": 1_000_000}))
        assert frames_through_heartbeats(client, "stalled", frames, 4, deadline) == 4
    finally:
        client.close()
        backend.stop()


def test_a_vanished_client_has_its_job_cancelled_within_5s(tmp_path):
    backend = BackendProcess("--workers", "1")
    gone = RawClient(backend.address)
    try:
        gone.send(render_job(tmp_path / "gone", frames=40, window=1).message("orphan"))
        deadline = time.monotonic() + 30
        while (msg := gone.recv(1)) is None or msg.type != FRAME:
            assert time.monotonic() < deadline
        gone.close()  # vanishes without a word; its job holds the only worker, waiting for a credit
        vanished = time.monotonic()
        with BackendClient(backend.address) as client:
            stream = client.submit(render_job(tmp_path / "next", frames=3))
            while not stream.total:  # ACCEPTED comes once a worker takes the job
                stream.poll(100)
                assert time.monotonic() - vanished < 10, "the orphaned job still holds the worker"
            freed = time.monotonic() - vanished
            stream.wait()
        backend.proc.terminate()
        log = backend.proc.stderr.read()  # to the end: the backend has exited
    finally:
        backend.stop()
    assert freed < 5.0
    assert stream.frames_written == [1, 2, 3]
    assert "cancelling its job orphan" in log  # the operator can see why


def test_jobs_per_client_limit_is_a_typed_error(tmp_path):
    backend = BackendProcess("--max-jobs-per-client", "1")
    client = RawClient(backend.address)
    try:
        client.send(render_job(tmp_path, frames=10, window=1).message("first"))
        client.send(render_job(tmp_path, frames=10, window=1).message("second"))
        deadline = time.monotonic() + 30
        while (msg := client.recv(1)) is None or msg.id != "second":
            assert time.monotonic() < deadline
        assert msg.type == ERROR and msg.header["code"] == ErrorCode.LIMIT
        assert "limit is 1" in msg.header["message"]
        welcome = BackendClient(backend.address)
        assert welcome.handshake()["limits"]["max_jobs_per_client"] == 1  # announced in the handshake
        welcome.close()
    finally:
        client.close()
        backend.stop()
