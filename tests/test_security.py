"""Security: loopback by default, CurveZMQ for anything else, key files with private secrets, only
authorised keys served, no path traversal at any door, and no pickle anywhere."""
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livingportrait_backend.cli import main
from livingportrait_wire.client import HANDSHAKE_S, BackendClient, CurveKeys
from livingportrait_wire.codec import decode
from livingportrait_wire.errors import BackendUnavailable, BadInput
from livingportrait_wire.landmarks import save_sequence
from livingportrait_wire.protocol import ERROR, PONG, SERVER_TYPES, ErrorCode

from backend_process import BackendProcess
from small_render_job import performance, portrait_png, render_job

ROOT = Path(__file__).resolve().parents[1]


def serve_refusal(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livingportrait_backend", "serve", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """A server key pair, an authorised client (alice) and an unknown one (mallory)."""
    root = tmp_path_factory.mktemp("keys")
    for folder, name in (("server", "server"), ("alice", "alice"), ("mallory", "mallory")):
        assert main(["keys", "generate", "--out", str(root / folder), "--name", name]) == 0
    authorised = root / "authorised"
    authorised.mkdir()
    (authorised / "alice.key").write_bytes((root / "alice" / "alice.key").read_bytes())
    return root


def test_keys_generate_writes_a_public_file_and_a_private_secret_file(keys, capsys):
    secret = keys / "alice" / "alice.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / "alice" / "alice.key").stat().st_mode) == 0o644
    assert "secret-key" in secret.read_text() and "secret-key" not in (keys / "alice" / "alice.key").read_text()
    # An existing pair is never replaced, and a name cannot leave the folder.
    assert main(["keys", "generate", "--out", str(keys / "alice"), "--name", "alice"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "generate", "--out", str(keys / "alice"), "--name", "../escape"]) == 2
    assert not (keys / "escape.key").exists()


def test_non_loopback_bind_without_keys_is_refused():
    result = serve_refusal("--bind", "tcp://0.0.0.0:0")
    assert result.returncode == 2
    assert "needs CurveZMQ keys" in result.stderr and "--server-key" in result.stderr
    assert "listening" not in result.stdout


def test_world_readable_server_secret_is_refused(keys, tmp_path):
    leaked = tmp_path / "server.key_secret"
    leaked.write_bytes((keys / "server" / "server.key_secret").read_bytes())
    leaked.chmod(0o644)
    result = serve_refusal("--bind", "tcp://0.0.0.0:0", "--server-key", str(leaked),
                           "--authorized-keys", str(keys / "authorised"))
    assert result.returncode == 2 and "chmod 600" in result.stderr


def test_non_loopback_bind_with_keys_serves_authorised_clients(keys):
    proc = BackendProcess("--bind", "tcp://0.0.0.0:*", "--server-key", str(keys / "server" / "server.key_secret"),
                          "--authorized-keys", str(keys / "authorised"))
    try:
        port = proc.address.rsplit(":", 1)[1]
        assert proc.address.startswith("tcp://0.0.0.0:")
        with BackendClient(f"tcp://127.0.0.1:{port}", curve=curve(keys, "alice")) as client:
            assert client.handshake()["protocol"] == 1
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def curve_backend(keys):
    proc = BackendProcess("--server-key", str(keys / "server" / "server.key_secret"),
                          "--authorized-keys", str(keys / "authorised"))
    yield proc
    proc.stop()


def curve(keys, who: str) -> CurveKeys:
    return CurveKeys.from_files(str(keys / "server" / "server.key"), str(keys / who / f"{who}.key_secret"))


def test_an_authorised_key_is_served(curve_backend, keys, tmp_path):
    with BackendClient(curve_backend.address, curve=curve(keys, "alice")) as client:
        stream = client.submit(render_job(tmp_path, frames=3)).wait()
    assert stream.frames_written == [1, 2, 3]


def test_an_unknown_key_is_rejected_at_once_with_a_clear_message(curve_backend, keys):
    with BackendClient(curve_backend.address, timeout_s=30, curve=curve(keys, "mallory")) as client:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="does not know this client's CurveZMQ key"):
            client.handshake()
    assert time.monotonic() - started < 10  # told by the backend, not left to time out


def test_a_client_without_keys_is_told_the_backend_requires_curve(curve_backend):
    with BackendClient(curve_backend.address, timeout_s=2) as client:
        with pytest.raises(BackendUnavailable, match="requires CurveZMQ"):
            client.handshake()


def test_a_client_with_the_wrong_server_key_is_told_to_check_it(curve_backend, keys):
    wrong = CurveKeys.from_files(str(keys / "mallory" / "mallory.key"), str(keys / "alice" / "alice.key_secret"))
    with BackendClient(curve_backend.address, timeout_s=2, curve=wrong) as client:
        with pytest.raises(BackendUnavailable, match="check that the server key file"):
            client.handshake()


def test_a_public_key_file_is_not_taken_for_a_secret_one(keys):
    with pytest.raises(BadInput, match="holds no secret key"):
        CurveKeys.from_files(str(keys / "server" / "server.key"), str(keys / "alice" / "alice.key"))


TRAVERSAL_NAMES = ["../evil", "..", "/tmp/evil", "a/../../evil", "x\\..\\evil", ".evil"]


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_traversal_names_are_refused_by_the_cli_in_both_modes(tmp_path, name, capsys):
    (tmp_path / "portrait.png").write_bytes(portrait_png())
    save_sequence(performance(2), tmp_path / "perf.npz")
    root = tmp_path / "root" / "out"
    for extra in ([], ["--connect", "tcp://127.0.0.1:9"]):  # farm mode, client mode
        code = main(["render", "--portrait", str(tmp_path / "portrait.png"), "--driver", str(tmp_path / "perf.npz"),
                     "--out", str(root), "--name", name, *extra])
        assert code == 2 and "is not allowed" in capsys.readouterr().err
    assert not list((tmp_path / "root").rglob("*.exr")) and not list(Path("/tmp").glob("evil*.exr"))


def test_traversal_names_are_refused_on_the_wire(backend, tmp_path):
    import zmq

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(backend.address)
    try:
        job = render_job(tmp_path, frames=2)
        for i, name in enumerate(TRAVERSAL_NAMES):
            sock.send_multipart(_message_with_name(job, f"job{i}", name))
            msg = None
            while msg is None or msg.type == PONG:  # PONG: the job's heartbeat while a worker looks at it
                assert sock.poll(30_000)
                msg = decode(sock.recv_multipart(), expect=SERVER_TYPES)
            assert msg.id == f"job{i}" and msg.type == ERROR and msg.header["code"] == ErrorCode.BAD_INPUT
    finally:
        sock.close(0)


def _message_with_name(job, job_id, name):
    """RenderJob.message refuses such names itself: put the name into the header by hand."""
    import json

    frames = job.message(job_id)
    header = json.loads(frames[0])
    header["name"] = name
    return [json.dumps(header).encode()] + frames[1:]


def python_sources():
    for folder in ("backend", "shared", "addon"):
        yield from (ROOT / folder).rglob("*.py")


def test_nothing_unpickles_and_checkpoints_load_weights_only():
    offenders = []
    for path in python_sources():
        text = path.read_text()
        # (Importing pickle only to catch UnpicklingError from a library is fine; calling it is not.)
        for pattern in (r"pickle\.(loads?|dumps?|Unpickler)\b", r"recv_pyobj|send_pyobj", r"allow_pickle\s*=\s*True",
                        r"weights_only\s*=\s*False", r"\bimport (dill|joblib|cPickle)\b"):
            if re.search(pattern, text):
                offenders.append(f"{path}: {pattern}")
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if not re.search(r"weights_only\s*=\s*True", call.group(1)):
                offenders.append(f"{path}: {call.group(0)}")
    assert not offenders


def test_a_stalled_handshake_is_retried_within_seconds_not_held_for_thirty():
    """libzmq may drop a refusal on a busy machine and leave the connection hanging; the client gives a
    silent handshake HANDSHAKE_S and then reconnects, so a refusal on the next try still arrives in time."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(30)
        with BackendClient(f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout_s=30):
            # A listener that accepts and never speaks: the first handshake stalls.
            first, _ = listener.accept()
            stalled_at = time.monotonic()
            second, _ = listener.accept()
            retried_after = time.monotonic() - stalled_at
        first.close()
        second.close()
    assert HANDSHAKE_S - 0.5 < retried_after < HANDSHAKE_S + 3


def test_a_client_closed_mid_handshake_leaves_later_clients_working():
    """Closing a client while its handshake is in progress (a wrong port, a backend still starting) once
    wedged the process's ZeroMQ I/O thread: every later client, in Blender the whole session, got no
    answer."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30)
        silent = BackendClient(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        conn, _ = listener.accept()  # the handshake has begun and will never finish
        silent.close()
        conn.close()
    proc = BackendProcess()
    try:
        with BackendClient(proc.address) as client:
            assert client.handshake()["protocol"] == 1
    finally:
        proc.stop()
