"""The FastAPI application: ``create_app(config)`` (``waveseg serve`` runs it with uvicorn).

Routes (all but ``/version`` and ``/v1/health`` need ``Authorization: Bearer <token>`` when the
server has tokens; the OpenAPI schema is at ``/v1/openapi.json``, its pages at ``/v1/docs``):

    GET  /version                      API versions served (unversioned: clients of any version read it)
    GET  /v1/health                    readiness
    GET  /v1/models                    models and profiles
    POST /v1/sessions                  create: header X-WaveSeg-Spec (JSON), body = compressed volume
    GET  /v1/sessions/{id}             state; /mask the whole mask (resynchronise); PUT /mask restore
    POST /v1/sessions/{id}/segment_slice | accept | undo | redo | clear     -> JSON changes
    POST /v1/sessions/{id}/click | box3d | propagate                        -> NDJSON progress, then changes
    PUT  /v1/sessions/{id}/slices/{axis}/{index}   a hand-edited slice mask
    POST /v1/sessions/{id}/cancel      stop the running propagation
    POST /v1/adaptations, GET /v1/adaptations/{job}, POST /v1/adaptations/{job}/cancel

Every session request carries ``X-WaveSeg-Session: <id>`` too, the header a reverse proxy hashes
to route a session to one backend (docs/server.md). Model calls run on ``config.model_threads``
worker threads; one action per session at a time (a second is refused with 409, not queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from waveseg import __version__
from waveseg.errors import WaveSegError
from waveseg.remote.wire import API_VERSION, decode_mask, decode_volume
from waveseg.server.auth import token_index
from waveseg.server.config import MiB, ServerConfig
from waveseg.server.http_guards import ApiError, BodyLimit, install_error_handlers
from waveseg.server.jobs import AdaptationJobs
from waveseg.server.models import ModelPool
from waveseg.server.schemas import Action, Adaptation, Box3d, Click, SegmentSlice, SessionSpec, SliceAction
from waveseg.server.sessions import ServerSession, SessionStore

log = logging.getLogger("waveseg.server")
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _report(report) -> dict[str, Any] | None:
    if report is None or not hasattr(report, "written"):
        return None
    return {"written": list(report.written), "stopped": dict(report.stopped), "cancelled": bool(report.cancelled)}


class Server:
    """What the routes share: settings, models, sessions, the model threads, adaptation jobs."""

    def __init__(self, config: ServerConfig, pool: ModelPool | None = None) -> None:
        self.config = config
        self.instance = uuid.uuid4().hex  # a restarted server has another: clients tell a restart from a lost session
        self.pool = pool or ModelPool(config.models, config.device)
        self.store = SessionStore(config.session_timeout_s, int(config.max_sessions_mb * MiB), config.clock)
        self.executor = ThreadPoolExecutor(max(1, config.model_threads), thread_name_prefix="waveseg-model")
        self.jobs = AdaptationJobs()

    # -- request checks ------------------------------------------------------------------------
    def owner(self, authorization: str | None = Header(None), x_waveseg_api: str | None = Header(None)) -> int | None:
        """FastAPI dependency: the caller's token index (None without tokens); checks the API version."""
        if x_waveseg_api is not None and x_waveseg_api != str(API_VERSION):
            raise ApiError(400, "version_mismatch", f"this client speaks WaveSeg API {x_waveseg_api}, this server API {API_VERSION} "
                           f"(waveseg {__version__}); install the same WaveSeg version on both", server_api=API_VERSION)
        if not self.config.tokens:
            return None
        found = token_index(authorization, self.config.tokens)
        if found is None:
            raise ApiError(401, "unauthorized", "missing or wrong token: send 'Authorization: Bearer <token>' with a token "
                           "from the server's token file" if authorization else "this server needs a token: send 'Authorization: "
                           "Bearer <token>'")
        return found

    def session(self, session_id: str, owner: int | None, header_id: str | None) -> ServerSession:
        if header_id != session_id:
            raise ApiError(400, "session_header", f"send the header 'X-WaveSeg-Session: {session_id}' with every request of a "
                           "session (a reverse proxy routes by it)")
        return self.store.get(session_id, owner)

    # -- running actions -----------------------------------------------------------------------
    @staticmethod
    def begin(session: ServerSession, revision: int | None) -> None:
        """Take the session's lock for one action, or refuse: busy, or the client's copy is stale."""
        if not session.lock.acquire(blocking=False):
            raise ApiError(409, "busy", "this session is still running another action (e.g. a propagation); wait for it or cancel it")
        if revision is not None and revision != session.revision:
            current = session.revision
            session.lock.release()
            raise ApiError(409, "stale", f"the session changed since your last reply (revision {current}, yours {revision}), "
                           "e.g. another client works on it; fetch the mask again", revision=current)
        session.cancel.clear()

    async def run(self, session: ServerSession, action: Callable[[], Any]) -> dict[str, Any]:
        """One quick action on the model thread; returns the changes (the lock is held by ``begin``)."""
        def job():
            try:
                value = action()
                return {**session.changes(), "report": _report(value)}
            finally:
                session.lock.release()

        return await asyncio.get_running_loop().run_in_executor(self.executor, job)

    def stream(self, session: ServerSession, action: Callable[[Callable, Callable], Any]) -> StreamingResponse:
        """An action that may propagate: NDJSON lines {"event": "progress", done, planned} while it
        runs, then {"event": "result", ...changes} or {"event": "error", ...}. A client that goes
        away mid-stream cancels it (the slices done so far stay, as one undoable step)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        on_progress = self.config.on_progress

        def put(item: dict) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop has closed (server shutting down)
                pass

        def progress(done: int, planned: int) -> None:
            put({"event": "progress", "done": int(done), "planned": int(planned)})
            if on_progress is not None:
                on_progress(session.id, done, planned)

        def job() -> None:
            try:
                report = action(progress, session.cancel.is_set)
                session.last_report = _report(report)
                result = {"event": "result", **session.changes(), "report": session.last_report}
            except WaveSegError as exc:
                result = {"event": "error", "code": "invalid_input", "error": str(exc)}
            except Exception:
                log.exception("propagation failed in session %s", session.id)
                result = {"event": "error", "code": "internal", "error": "internal server error; the server's log has the details"}
            finally:
                session.lock.release()
            put(result)

        loop.run_in_executor(self.executor, job)

        async def lines():
            finished = False
            try:
                while not finished:
                    item = await queue.get()
                    finished = item["event"] != "progress"
                    yield json.dumps(item) + "\n"
            finally:
                if not finished:
                    session.cancel.set()  # the client went away: stop at the next slice
                    log.info("client left session %s mid-propagation: cancelled", session.id)

        return StreamingResponse(lines(), media_type="application/x-ndjson")


def create_app(config: ServerConfig, pool: ModelPool | None = None) -> FastAPI:
    """The ASGI application for ``config`` (``pool`` lets a caller share loaded models)."""
    server = Server(config, pool)
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        server.jobs.cancel_all()
        server.store.close_all()
        server.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="WaveSeg server", version=__version__, openapi_url="/v1/openapi.json", docs_url="/v1/docs", redoc_url=None,
                  description=__doc__, lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, instance=server.instance)
    app.state.server = server
    install_error_handlers(app)
    v1 = APIRouter(prefix="/v1")
    owner = Depends(server.owner)

    @app.get("/version")
    def version() -> dict:
        return {"api_versions": [API_VERSION], "waveseg": __version__, "instance": server.instance}

    @v1.get("/health")
    def health() -> dict:
        return {"status": "ok", "api": API_VERSION, "instance": server.instance}

    @v1.get("/models")
    def models(who=owner) -> dict:
        return server.pool.describe()

    @v1.post("/sessions")
    async def create_session(request: Request, who=owner, x_waveseg_session: str | None = Header(None),
                             x_waveseg_spec: str | None = Header(None)) -> dict:
        if not x_waveseg_session or not SESSION_ID.match(x_waveseg_session):
            raise ApiError(400, "session_header", "send a new session id (16-64 letters, digits, '_' or '-') in the header "
                           "X-WaveSeg-Session")
        try:
            spec = SessionSpec.model_validate_json(x_waveseg_spec or "")
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", "the X-WaveSeg-Spec header must be JSON describing the session: "
                           + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        if server.store.exists(x_waveseg_session):
            raise ApiError(409, "session_exists", f"session {x_waveseg_session} exists already; choose a new id")
        volume = decode_volume(spec.array.model_dump(), await request.body(), config.max_volume_bytes)
        if volume.dtype.kind == "f" and not np.isfinite(volume).all():
            raise ApiError(422, "bad_payload", "the volume contains NaN or Inf values")

        def build():
            segmenter = server.pool.segmenter(spec.model, spec.profile)
            return segmenter.volume_session(volume, spacing=tuple(spec.spacing), window=tuple(spec.window) if spec.window else None,
                                            cache_mb=config.session_cache_mb, prefetch=config.prefetch)

        volume_session = await asyncio.get_running_loop().run_in_executor(server.executor, build)
        session = ServerSession(x_waveseg_session, who, volume_session, server.pool.model_name(spec.model), spec.profile,
                                int(config.session_cache_mb * MiB), config.clock())
        server.store.add(session)
        return {"session": session.id, "instance": server.instance, "shape": list(volume.shape), **session.state()}

    def sid(session_id: str, who=owner, x_waveseg_session: str | None = Header(None)) -> ServerSession:
        return server.session(session_id, who, x_waveseg_session)

    the_session = Depends(sid)

    @v1.get("/sessions/{session_id}")
    def session_state(session=the_session) -> dict:
        return {"session": session.id, "busy": session.busy, "model": session.model, "profile": session.profile,
                "last_report": session.last_report, "shape": list(session.volume_session.mask.shape), **session.state()}

    @v1.get("/sessions/{session_id}/mask")
    def whole_mask(session=the_session) -> dict:
        from waveseg.remote.wire import mask_to_json

        server.begin(session, None)  # a consistent copy, never mid-action (busy: 409)
        try:
            session.shadow[...] = session.volume_session.mask
            return {"mask": mask_to_json(session.shadow), **session.state()}
        finally:
            session.lock.release()

    @v1.put("/sessions/{session_id}/mask")
    async def restore_mask(request: Request, session=the_session, x_waveseg_array: str = Header(...),
                           x_waveseg_locked: str = Header("[]")) -> dict:
        """Start a new session from a mask the client holds (after a server restart, or a segment being edited)."""
        vs = session.volume_session
        mask = decode_mask(_json_header(x_waveseg_array, "X-WaveSeg-Array"), await request.body(), 3, vs.mask.size)
        locked = _json_header(x_waveseg_locked, "X-WaveSeg-Locked")
        if mask.shape != vs.mask.shape:
            raise ApiError(422, "bad_payload", f"the mask has shape {mask.shape}; the session's volume is {vs.mask.shape}")
        if not isinstance(locked, list) or not all(isinstance(p, list) and len(p) == 2 and p[0] in (0, 1, 2)
                                                   and isinstance(p[1], int) and 0 <= p[1] < vs.mask.shape[p[0]] for p in locked):
            raise ApiError(422, "bad_payload", "X-WaveSeg-Locked must be a JSON list of [axis, index] pairs inside the volume")
        server.begin(session, None)
        try:
            if vs.can_undo or vs.can_redo or session.revision:
                raise ApiError(409, "not_new", "a mask can be restored only into a new session, before any action")
            vs.mask[...] = mask
            vs.locked = {(int(a), int(i)) for a, i in locked}
            session.shadow[...] = mask
            session.revision += 1
            return session.state()
        finally:
            session.lock.release()

    @v1.delete("/sessions/{session_id}")
    def close_session(session=the_session) -> dict:
        server.store.close(session.id)
        return {"closed": session.id}

    @v1.post("/sessions/{session_id}/cancel")
    def cancel(session=the_session) -> dict:
        session.cancel.set()
        return {"cancelling": session.busy}

    @v1.post("/sessions/{session_id}/segment_slice")
    async def segment_slice(body: SegmentSlice, session=the_session) -> dict:
        server.begin(session, body.revision)
        return await server.run(session, lambda: session.volume_session.segment_slice(body.axis, body.index, box=body.box,
                                                                                     points=body.points, labels=body.labels))

    @v1.put("/sessions/{session_id}/slices/{axis}/{index}")
    async def set_slice(axis: int, index: int, request: Request, session=the_session, revision: int | None = None,
                        x_waveseg_array: str = Header(...)) -> dict:
        mask = decode_mask(_json_header(x_waveseg_array, "X-WaveSeg-Array"), await request.body(), 2, session.volume_session.mask.size)
        server.begin(session, revision)
        return await server.run(session, lambda: session.volume_session.set_slice_mask(axis, index, mask))

    @v1.post("/sessions/{session_id}/undo")
    async def undo(body: Action, session=the_session) -> dict:
        server.begin(session, body.revision)
        return await server.run(session, session.volume_session.undo)

    @v1.post("/sessions/{session_id}/redo")
    async def redo(body: Action, session=the_session) -> dict:
        server.begin(session, body.revision)
        return await server.run(session, session.volume_session.redo)

    @v1.post("/sessions/{session_id}/clear")
    async def clear(body: Action, session=the_session) -> dict:
        server.begin(session, body.revision)
        return await server.run(session, session.volume_session.clear)

    @v1.post("/sessions/{session_id}/accept")
    async def accept(body: SliceAction, session=the_session) -> dict:
        server.begin(session, body.revision)
        return await server.run(session, lambda: session.volume_session.accept(body.axis, body.index))

    @v1.post("/sessions/{session_id}/click")
    async def click(body: Click, session=the_session) -> StreamingResponse:
        server.begin(session, body.revision)
        return server.stream(session, lambda progress, cancel: session.volume_session.click(
            body.ijk, positive=body.positive, axis=body.axis, repropagate=body.repropagate, progress=progress, cancel=cancel))

    @v1.post("/sessions/{session_id}/box3d")
    async def box3d(body: Box3d, session=the_session) -> StreamingResponse:
        server.begin(session, body.revision)
        return server.stream(session, lambda progress, cancel: session.volume_session.box3d(
            body.corner0, body.corner1, axis=body.axis, progress=progress, cancel=cancel))

    @v1.post("/sessions/{session_id}/propagate")
    async def propagate(body: SliceAction, session=the_session) -> StreamingResponse:
        server.begin(session, body.revision)
        return server.stream(session, lambda progress, cancel: session.volume_session.propagate(
            body.axis, body.index, progress=progress, cancel=cancel))

    @v1.post("/adaptations")
    def start_adaptation(body: Adaptation, who=owner, x_waveseg_session: str | None = Header(None)) -> dict:
        session = server.session(body.session, who, x_waveseg_session)
        return server.jobs.start(session, body, who, server.pool)

    @v1.get("/adaptations/{job_id}")
    def adaptation_state(job_id: str, since: int = 0, who=owner) -> dict:
        return server.jobs.state(job_id, who, since, server.pool)

    @v1.post("/adaptations/{job_id}/cancel")
    def cancel_adaptation(job_id: str, who=owner) -> dict:
        return server.jobs.cancel(job_id, who)

    app.include_router(v1)
    return app


def _json_header(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(422, "invalid_request", f"the {name} header must be JSON") from None
