"""Typed errors that cross the wire and the CLI as readable messages.

Every error has a stable ``code`` (sent on the wire) and a ``message`` written for a person: what was
wrong and what to do.
"""
from __future__ import annotations


class LivingPortraitError(Exception):
    """Base error: ``code`` is a stable machine-readable string, ``str(err)`` the human message."""

    code = "internal"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class BadInput(LivingPortraitError):
    """The user's input (file, argument, job field) is unusable."""

    code = "bad_input"


class ProtocolError(LivingPortraitError):
    """A message on the wire is malformed, oversized, or lies about its buffers."""

    code = "bad_message"


class BackendUnavailable(LivingPortraitError):
    """The backend did not answer within the timeout."""

    code = "unavailable"


class JobFailed(LivingPortraitError):
    """The backend reported an error for a job."""

    code = "job_failed"


class Cancelled(LivingPortraitError):
    code = "cancelled"
