"""CurveZMQ key files: reading the Z85 keys that ``livingportrait keys generate`` writes.

A key pair is two files (pyzmq's certificate format): ``NAME.key`` holds the public key and may be
shared; ``NAME.key_secret`` holds the public and the secret key and must stay private (mode 0600).
zmq is imported only inside the functions: this module lives in the dependency-light wire package.
"""
from __future__ import annotations

import os

from .errors import BadInput


def load_public_key(path: str) -> bytes:
    """The Z85 public key (40 bytes) from a ``.key`` or ``.key_secret`` file. BadInput when unusable."""
    public, _ = _load(path)
    return public


def load_key_pair(path: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ``.key_secret`` file. BadInput when it holds no secret key."""
    public, secret = _load(path)
    if not secret:
        raise BadInput(f"{path}: holds no secret key; pass the NAME.key_secret file that "
                       "`livingportrait keys generate` wrote, not the public NAME.key")
    return public, secret


def _load(path: str) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such key file; make one with `livingportrait keys generate`")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a CurveZMQ key file ({exc}); make one with "
                       "`livingportrait keys generate`") from None
    if not public or len(public) != 40 or (secret is not None and len(secret) != 40):
        raise BadInput(f"{path}: the key is not a 40-character Z85 CurveZMQ key; make one with "
                       "`livingportrait keys generate`")
    return public, secret
