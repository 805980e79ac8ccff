"""Errors of the remote client; each message says what happened and what to do."""

from __future__ import annotations

from waveseg.errors import WaveSegError


class RemoteError(WaveSegError):
    """The server refused a request or could not be reached. ``status`` and ``code`` come from its reply."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None, reply: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.reply = status, code, reply or {}


class ServerUnreachableError(RemoteError):
    """No connection to the server (down, restarting, wrong URL) or a proxy without a backend (502/503/504)."""


class AuthenticationError(RemoteError):
    """The token is missing or not one of the server's."""


class VersionMismatchError(RemoteError):
    """Client and server speak different API versions."""


class SessionLostError(RemoteError):
    """The server no longer holds the session (restarted, expired, evicted)."""


class SessionConflictError(RemoteError):
    """The session is busy with another action, or changed under this client (another client)."""
