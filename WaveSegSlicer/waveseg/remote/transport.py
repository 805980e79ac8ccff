"""HTTP to a WaveSeg server with the standard library only (``http.client``, ``ssl``, ``json``).

Why not httpx or requests: a Slicer user without torch should reach a server with nothing
installed, and Slicer's Python has the standard library and numpy; ``http.client`` gives
persistent connections (one TCP/TLS handshake per thread, not per click) and streamed replies.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from typing import Any, Iterator

from waveseg.remote.errors import AuthenticationError, RemoteError, ServerUnreachableError, SessionConflictError, SessionLostError, VersionMismatchError
from waveseg.remote.wire import API_VERSION

_RETRY_ON_REUSED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest)


def _error(status: int, raw: bytes, url: str) -> RemoteError:
    try:
        reply = json.loads(raw)
        message, code = str(reply["error"]), str(reply.get("code", ""))
    except (ValueError, KeyError, TypeError):
        text = raw[:200].decode("utf-8", "replace").strip()
        if status in (502, 503, 504):
            return ServerUnreachableError(f"the proxy in front of {url} answered HTTP {status}: no WaveSeg server behind it is "
                                          f"reachable now ({text[:80]})", status)
        return RemoteError(f"{url} answered HTTP {status}, not a WaveSeg reply: {text}", status)
    kind = {"unauthorized": AuthenticationError, "version_mismatch": VersionMismatchError, "unknown_session": SessionLostError,
            "session_ended": SessionLostError, "busy": SessionConflictError, "stale": SessionConflictError}.get(code, RemoteError)
    return kind(message, status, code, reply)


class Transport:
    """Requests to one server. Arguments: url ("http://host:port" or "https://..."), token
    (bearer) or None, timeout in seconds per socket operation, ssl_context for HTTPS (default:
    the system's trusted certificates). Thread-safe: one persistent connection per thread."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 600.0, ssl_context: ssl.SSLContext | None = None) -> None:
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise RemoteError(f"server URL {url!r} must look like http://host:port or https://host:port")
        self.url, self.scheme, self.host = url.rstrip("/"), parsed.scheme, parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.prefix = parsed.path.rstrip("/")  # a server mounted under a path behind a proxy
        self.token, self.timeout = token, timeout
        self.ssl_context = ssl_context if ssl_context is not None else (ssl.create_default_context() if parsed.scheme == "https" else None)
        self._local = threading.local()
        self.last_instance: str | None = None

    def _new_connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _connection(self, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn, True
        if conn is not None:
            conn.close()
        conn = self._local.conn = self._new_connection()
        return conn, False

    def side_request(self, method: str, path: str, json_body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A request on its own short connection: this thread's may be busy reading a stream (cancel)."""
        conn = self._new_connection()
        try:
            conn.request(method, self.prefix + path, body=json.dumps(json_body).encode(),
                         headers=self.headers({**(headers or {}), "Content-Type": "application/json"}))
            response = conn.getresponse()
            raw = response.read()
        except OSError as exc:
            raise ServerUnreachableError(f"cannot reach the WaveSeg server at {self.url}: {exc}") from None
        finally:
            conn.close()
        if response.status >= 400:
            raise _error(response.status, raw, self.url)
        return json.loads(raw)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"X-WaveSeg-API": str(API_VERSION), "Accept": "application/json"}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return {**out, **(extra or {})}

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        for attempt in (0, 1):
            conn, reused = self._connection(fresh=attempt > 0)
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                return conn.getresponse()
            except _RETRY_ON_REUSED as exc:
                conn.close()
                self._local.conn = None
                if not reused or attempt:  # only an idle kept-alive connection the server closed is retried
                    raise ServerUnreachableError(f"the WaveSeg server at {self.url} closed the connection ({exc.__class__.__name__}); "
                                                 "it may have restarted or stopped") from None
            except (ConnectionRefusedError, socket.gaierror, socket.timeout, TimeoutError, OSError) as exc:
                conn.close()
                self._local.conn = None
                if isinstance(exc, ssl.SSLError):
                    raise ServerUnreachableError(f"TLS with {self.url} failed: {exc}") from None
                raise ServerUnreachableError(f"cannot reach the WaveSeg server at {self.url}: {exc}; is it running, and is "
                                             "the URL right?") from None
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, json_body: Any = None, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One request; the JSON reply, or the matching ``RemoteError``."""
        extra = dict(headers or {})
        if json_body is not None:
            body, extra["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif body is not None:
            extra["Content-Type"] = "application/octet-stream"
        response = self._send(method, path, body, self.headers(extra))
        try:
            raw = response.read()
        except (http.client.HTTPException, OSError) as exc:
            self._local.conn = None
            raise ServerUnreachableError(f"the connection to {self.url} broke while reading a reply ({exc})") from None
        self.last_instance = response.getheader("X-WaveSeg-Instance") or self.last_instance
        if response.status >= 400:
            raise _error(response.status, raw, self.url)
        try:
            return json.loads(raw)
        except ValueError:
            raise RemoteError(f"{self.url} answered with something that is not JSON: {raw[:120]!r}") from None

    def stream(self, path: str, json_body: Any, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """POST and yield each NDJSON line of the reply as it arrives."""
        extra = {**(headers or {}), "Content-Type": "application/json", "Accept": "application/x-ndjson"}
        response = self._send("POST", path, json.dumps(json_body).encode(), self.headers(extra))
        self.last_instance = response.getheader("X-WaveSeg-Instance") or self.last_instance
        if response.status >= 400:
            raise _error(response.status, response.read(), self.url)
        try:
            for line in response:
                if line.strip():
                    yield json.loads(line)
        except (http.client.HTTPException, OSError, ValueError) as exc:
            self._local.conn = None
            raise ServerUnreachableError(f"the connection to {self.url} broke during a propagation ({exc})") from None
        finally:
            if not response.isclosed():  # left early (an exception in the caller): do not reuse a half-read connection
                response.close()
                self.close()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
