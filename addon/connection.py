"""Reaching the backend from Blender: the preferences turned into a connector, a local backend on demand.

``connector(context)`` reads the preferences on Blender's main thread and returns a plain function
that connects without touching bpy, so a job's worker thread can make (and own) its socket.
"""
import os
import time

import bpy

from . import local_backend, preferences
from .wire.client import BackendClient, CurveKeys
from .wire.errors import BackendUnavailable, BadInput

LOCAL_START_S = 30.0  # a backend just started may take a while (imports, models) before it answers


def log_path() -> str:
    """The local backend's log file, in the extension's user folder."""
    folder = bpy.utils.extension_path_user(__package__, path="logs", create=True)
    return os.path.join(folder, "backend.log")


def _curve_keys(prefs):
    if not (prefs.curve_server_public_key or prefs.curve_client_secret_key):
        return None
    if not (prefs.curve_server_public_key and prefs.curve_client_secret_key):
        raise BadInput("CurveZMQ needs both key files: the backend's public NAME.key and your "
                       "NAME.key_secret (make them with `livingportrait keys generate`)")
    return CurveKeys.from_files(bpy.path.abspath(prefs.curve_server_public_key),
                                bpy.path.abspath(prefs.curve_client_secret_key))


def make_client(context=None) -> BackendClient:
    """A client for the preferences' address, with CurveZMQ keys when both key files are set."""
    prefs = preferences.get(context)
    return BackendClient(prefs.address, timeout_s=prefs.connect_timeout, curve=_curve_keys(prefs))


def connector(context=None):
    """A bpy-free ``connect() -> (client, handshake info)`` for the preferences' backend.

    When the backend does not answer and the preferences allow it, ``connect`` starts a local backend
    and asks again. It raises BackendUnavailable with the address and what to do.
    """
    prefs = preferences.get(context)
    address, timeout_s, curve = prefs.address, prefs.connect_timeout, _curve_keys(prefs)
    start_local = prefs.start_local_automatically
    command, log = prefs.local_command, log_path()

    def connect():
        client = BackendClient(address, timeout_s=timeout_s, curve=curve)
        try:
            return client, client.handshake()
        except BackendUnavailable:
            client.close()
            if not start_local:
                raise
        local_backend.LOCAL.start(command, address, log)
        return _await_local_backend(address, timeout_s, curve, log)

    return connect


def _await_local_backend(address: str, timeout_s: float, curve, log: str):
    """Shake hands with a backend that is starting: short attempts for up to LOCAL_START_S, giving up
    at once if its process has exited."""
    client = BackendClient(address, timeout_s=1.0, curve=curve)
    deadline = time.monotonic() + max(timeout_s, LOCAL_START_S)
    while True:
        try:
            info = client.handshake()
        except BackendUnavailable:
            process = local_backend.LOCAL.process
            if process is None or process.poll() is not None:
                client.close()
                raise BackendUnavailable(f"the local backend exited as it started (exit code "
                                         f"{process.returncode if process else '?'}); see its log {log}") from None
            if time.monotonic() > deadline:
                client.close()
                raise BackendUnavailable(f"the local backend started but did not answer within "
                                         f"{LOCAL_START_S:.0f} s; see its log {log}") from None
            continue
        client.timeout_s = timeout_s
        return client, info


def local_watchdog(address: str):
    """A bpy-free check for a running job: when the backend at ``address`` is the local one this Blender
    started (and it is running now), the check raises BackendUnavailable, with the exit code and the
    log, as soon as that process has exited, rather than waiting for the silence timeout."""
    local = local_backend.LOCAL
    process = local.process if local.running and local.address == address else None
    log = local.log_path

    def check() -> None:
        if process is not None and process.poll() is not None:
            raise BackendUnavailable(f"the local backend exited while the job ran (exit code "
                                     f"{process.returncode}); see its log {log}, then start it again "
                                     "(Start Local Backend) and retry")
    return check
