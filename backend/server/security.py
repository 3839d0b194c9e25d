"""Who may talk to the backend: anyone on this machine over loopback; from elsewhere only CurveZMQ
clients whose public keys the operator put in the authorised keys folder.

Key pairs are pyzmq certificate files (``NAME.key`` public, ``NAME.key_secret`` private at mode 0600),
written by ``livingportrait keys generate`` and read by ``livingportrait_wire.curve_keys``.
"""
from __future__ import annotations

import glob
import ipaddress
import os
import stat
import urllib.parse
from dataclasses import dataclass

from livingportrait_wire.curve_keys import load_key_pair, load_public_key
from livingportrait_wire.errors import BadInput
from livingportrait_wire.naming import check_name


def is_loopback_bind(address: str) -> bool:
    """True for tcp://127.x.x.x, tcp://[::1], tcp://localhost and ipc:// / inproc:// endpoints."""
    parsed = urllib.parse.urlsplit(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerCurve:
    """The server's CurveZMQ key pair (Z85 bytes) and the folder of authorised client public keys."""

    public: bytes
    secret: bytes
    authorized_dir: str

    @classmethod
    def from_files(cls, server_secret_file: str, authorized_dir: str) -> "ServerCurve":
        """Load and check the server's ``NAME.key_secret`` and the authorised keys folder (``*.key``).
        BadInput with what to do when either is unusable."""
        if os.path.isfile(server_secret_file) and os.stat(server_secret_file).st_mode & 0o077:
            raise BadInput(f"{server_secret_file}: the secret key file is readable by other users; "
                           f"run `chmod 600 {server_secret_file}`")
        public, secret = load_key_pair(server_secret_file)
        if not os.path.isdir(authorized_dir):
            raise BadInput(f"{authorized_dir}: no such folder of authorised client keys; create it and "
                           "copy each client's public NAME.key file into it")
        keys = glob.glob(os.path.join(authorized_dir, "*.key"))
        if not keys:
            raise BadInput(f"{authorized_dir}: holds no client public keys (*.key); copy each client's "
                           "public NAME.key file (from `livingportrait keys generate`) into it")
        for path in keys:
            load_public_key(path)  # a damaged file is named now, not silently skipped by the authenticator
        return cls(public, secret, os.path.abspath(authorized_dir))


def check_bind_security(bind: str, curve: ServerCurve | None) -> None:
    """Refuse a non-loopback bind without CurveZMQ, and CurveZMQ where libzmq lacks it."""
    import zmq

    if curve is None and not is_loopback_bind(bind):
        raise BadInput(f"--bind {bind}: a backend reachable from other machines needs CurveZMQ keys; "
                       "give --server-key SERVER.key_secret and --authorized-keys DIR (make keys with "
                       "`livingportrait keys generate`), or bind tcp://127.0.0.1:PORT")
    if curve is not None and not zmq.has("curve"):
        raise BadInput("this pyzmq build has no CurveZMQ support; install the pyzmq wheel from PyPI")


def start_authenticator(ctx, curve: ServerCurve):
    """A running ZAP authenticator on ``ctx`` admitting only the CurveZMQ keys in the authorised folder
    (read once, at start: restart the backend after adding a key). Call ``.stop()`` when done."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=curve.authorized_dir)
    return auth


def generate_key_pair(out_dir: str, name: str) -> tuple[str, str]:
    """Write ``out_dir/NAME.key`` (public, 0644) and ``NAME.key_secret`` (0600); returns both paths.
    Refuses to overwrite an existing pair: replacing a key locks out whoever holds the old one."""
    import zmq.auth

    check_name(name)
    public_path = os.path.join(out_dir, f"{name}.key")
    secret_path = os.path.join(out_dir, f"{name}.key_secret")
    for path in (public_path, secret_path):
        if os.path.exists(path):
            raise BadInput(f"{path}: already exists; choose another --name or remove the old pair first")
    try:
        os.makedirs(out_dir, mode=0o700, exist_ok=True)
        # The secret file must never exist world-readable, not even between writing and chmod.
        old_umask = os.umask(0o077)
        try:
            zmq.auth.create_certificates(out_dir, name)
        finally:
            os.umask(old_umask)
        os.chmod(secret_path, stat.S_IRUSR | stat.S_IWUSR)
        os.chmod(public_path, 0o644)
    except OSError as exc:
        raise BadInput(f"{out_dir}: cannot write key files there ({exc.strerror}); choose another folder") from None
    return public_path, secret_path
