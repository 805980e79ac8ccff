"""ASGI-level guards and error replies: body size limit, instance header, JSON errors without tracebacks."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from waveseg.errors import WaveSegError
from waveseg.remote.wire import WireFormatError
from waveseg.server.sessions import ServerFull, SessionGone

log = logging.getLogger("waveseg.server")


class ApiError(Exception):
    """An error reply: HTTP status, a short machine code and a message for the user."""

    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, "code": code, **extra}, status_code=status)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or, for chunked
    bodies, as the bytes arrive (pure ASGI, so streamed replies are left alone)."""

    def __init__(self, app, max_bytes: int, instance: str) -> None:
        self.app, self.max_bytes, self.instance = app, max_bytes, instance

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = JSONResponse({"error": f"the request body exceeds this server's limit of {self.max_bytes / 2**20:.0f} MiB",
                                "code": "too_large"}, status_code=413)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await too_big(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ApiError(413, "too_large", f"the request body exceeds this server's limit of {self.max_bytes / 2**20:.0f} MiB")
            return message

        async def send_with_instance(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-waveseg-instance", self.instance.encode())]}
            await send(message)

        await self.app(scope, limited_receive, send_with_instance)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return f"malformed JSON in the request body: {error.get('ctx', {}).get('error', error.get('msg'))}"
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(SessionGone)
    async def _gone(request: Request, exc: SessionGone):
        unknown = exc.reason.startswith("unknown")
        return error_response(404 if unknown else 410, "unknown_session" if unknown else "session_ended",
                              f"session {exc.session_id}: {exc.reason}")

    @app.exception_handler(ServerFull)
    async def _full(request: Request, exc: ServerFull):
        return error_response(503, "server_full", str(exc))

    @app.exception_handler(WireFormatError)
    async def _wire(request: Request, exc: WireFormatError):
        return error_response(422, "bad_payload", str(exc))

    @app.exception_handler(WaveSegError)
    async def _input(request: Request, exc: WaveSegError):
        return error_response(422, "invalid_input", str(exc))

    @app.exception_handler(json.JSONDecodeError)
    async def _json(request: Request, exc: json.JSONDecodeError):
        return error_response(422, "invalid_request", f"malformed JSON: {exc}")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal server error; the server's log has the details")
