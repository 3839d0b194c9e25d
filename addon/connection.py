"""Reaching the backend from Blender: a client built from the preferences, a local backend on demand."""
import os

import bpy

from . import local_backend, preferences
from .wire.client import BackendClient, CurveKeys
from .wire.errors import BackendUnavailable, BadInput


def log_path() -> str:
    """The local backend's log file, in the extension's user folder."""
    folder = bpy.utils.extension_path_user(__package__, path="logs", create=True)
    return os.path.join(folder, "backend.log")


def make_client(context=None) -> BackendClient:
    """A client for the preferences' address, with CurveZMQ keys when both key files are set."""
    prefs = preferences.get(context)
    curve = None
    if prefs.curve_server_public_key or prefs.curve_client_secret_key:
        if not (prefs.curve_server_public_key and prefs.curve_client_secret_key):
            raise BadInput("CurveZMQ needs both key files: the backend's public NAME.key and your "
                           "NAME.key_secret (make them with `livingportrait keys generate`)")
        curve = CurveKeys.from_files(bpy.path.abspath(prefs.curve_server_public_key),
                                     bpy.path.abspath(prefs.curve_client_secret_key))
    return BackendClient(prefs.address, timeout_s=prefs.connect_timeout, curve=curve)


def connect(context=None):
    """A client that has shaken hands with the backend, and the backend's handshake info.

    When the backend does not answer and the preferences allow it, a local backend is started and
    asked again. Raises BackendUnavailable with the address and what to do.
    """
    prefs = preferences.get(context)
    client = make_client(context)
    try:
        return client, client.handshake()
    except BackendUnavailable:
        client.close()
        if not prefs.start_local_automatically:
            raise
    local_backend.LOCAL.start(prefs.local_command, prefs.address, log_path())
    client = make_client(context)
    return client, client.handshake()
