"""Adaptation as a server job: the session's annotated slices -> a named profile of the server's.

A job is the existing background adaptation process (``waveseg.adaptation.background``: its own
process, JSON progress lines, cancel that ends the process group, the profile written only when
the run finished, atomically). The profile lands in the server's profiles folder and is then
listed by ``GET /v1/models`` and chosen by name when a session is created.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from waveseg.server.http_guards import ApiError
from waveseg.server.models import PROFILE_NAME, ModelPool


class AdaptationJobs:
    """Running and finished adaptation jobs by id; each belongs to the token that started it."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start(self, session, body, owner: int | None, pool: ModelPool) -> dict[str, Any]:
        from waveseg.adaptation import METHODS
        from waveseg.adaptation.background import AdaptationProcess, annotated_slices

        if not PROFILE_NAME.match(body.name):
            raise ApiError(422, "invalid_input", f"profile name {body.name!r} must be 1-64 letters, digits, '_' or '-'")
        if body.method not in METHODS:
            raise ApiError(422, "invalid_input", f"method {body.method!r} is not one of {', '.join(METHODS)}")
        with self._lock:
            if any(j["name"] == body.name and j["state"] == "running" for j in self._jobs.values()):
                raise ApiError(409, "busy", f"an adaptation for profile {body.name!r} is already running")
        with session.lock:  # a consistent copy of volume and mask
            vs = session.volume_session
            images, masks, indices = annotated_slices(vs.volume, vs.mask, axis=body.axis)
            window = vs.window
        if len(images) < 2:
            raise ApiError(422, "invalid_input", f"adaptation needs at least 2 annotated slices along axis {body.axis}; "
                           f"the session's mask has {len(images)}")
        process = AdaptationProcess(images, masks, body.name, model=session.model, structure=body.structure, method=body.method,
                                    time_budget_s=body.time_budget_s, steps=body.steps, window=window)
        job_id = uuid.uuid4().hex
        with self._lock:
            self._jobs[job_id] = {"id": job_id, "owner": owner, "name": body.name, "state": "running", "process": process,
                                  "messages": [], "slices": indices}
        return {"job": job_id, "name": body.name, "slices": indices}

    def _job(self, job_id: str, owner: int | None) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None or job["owner"] != owner:
            raise ApiError(404, "unknown_job", f"no adaptation job {job_id} on this server")
        return job

    def state(self, job_id: str, owner: int | None, since: int, pool: ModelPool) -> dict[str, Any]:
        """Progress messages from index ``since`` on, and the job's state (running, done, error, cancelled)."""
        with self._lock:
            job = self._job(job_id, owner)
            if job["state"] == "running":
                for message in job["process"].poll():
                    job["messages"].append(message)
                    if message.get("event") == "done":
                        job["state"] = "done"
                        pool.forget_profile(job["name"])  # a loaded model with an older profile of that name
                    elif message.get("event") == "error":
                        job["state"] = "cancelled" if job.get("cancelled") else "error"
            return {"job": job_id, "name": job["name"], "state": job["state"], "messages": job["messages"][max(since, 0):],
                    "next": len(job["messages"])}

    def cancel(self, job_id: str, owner: int | None) -> dict[str, Any]:
        with self._lock:
            job = self._job(job_id, owner)
            if job["state"] == "running":
                job["cancelled"] = True
                job["process"].cancel()
            return {"job": job_id, "state": job["state"]}

    def cancel_all(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                if job["state"] == "running":
                    job["process"].cancel()
