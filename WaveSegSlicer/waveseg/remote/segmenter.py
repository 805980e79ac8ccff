"""``RemoteSegmenter``: where ``waveseg.Segmenter`` loads a model, this names one on a server.

    from waveseg.remote import RemoteSegmenter
    seg = RemoteSegmenter("https://seg.example.org:8765", token=open("token.txt").read().strip())
    seg.models()                                         # the server's models and profiles
    vs = seg.volume_session(volume_zyx, spacing=(sx, sy, sz))   # same as Segmenter.volume_session
    vs.box3d((i0, j0, k0), (i1, j1, k1)); vs.click((i, j, k), positive=False); vs.undo()

Imports numpy and the standard library only (no torch): a Slicer without PyTorch can use it.
Construction checks the server's API version (``VersionMismatchError`` with both versions) and
the token (``AuthenticationError``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from waveseg.remote.errors import RemoteError, VersionMismatchError
from waveseg.remote.session import RemoteVolumeSession
from waveseg.remote.transport import Transport
from waveseg.remote.wire import API_VERSION

TOKEN_ENV = "WAVESEG_TOKEN"
TOKEN_FILE_ENV = "WAVESEG_TOKEN_FILE"


def token_from(token: str | None = None, token_file: str | os.PathLike | None = None) -> str | None:
    """The token given, else the first line of ``token_file``, else $WAVESEG_TOKEN, else the file $WAVESEG_TOKEN_FILE."""
    if token:
        return token.strip()
    token_file = token_file or os.environ.get(TOKEN_FILE_ENV)
    if os.environ.get(TOKEN_ENV) and not token_file:
        return os.environ[TOKEN_ENV].strip()
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                lines = [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
        except OSError as exc:
            raise RemoteError(f"cannot read the token file {token_file}: {exc.strerror}") from None
        if not lines:
            raise RemoteError(f"the token file {token_file} is empty")
        return lines[0]
    return None


class RemoteSegmenter:
    """A model on a WaveSeg server. Arguments: url ("http(s)://host:port"), token (or
    token_file / $WAVESEG_TOKEN), model and profile names as the server lists them (None:
    its default model, no profile), timeout in seconds per network operation."""

    def __init__(self, url: str, token: str | None = None, model: str | None = None, profile: str | None = None,
                 token_file: str | os.PathLike | None = None, timeout: float = 600.0, ssl_context=None) -> None:
        self.transport = Transport(url, token_from(token, token_file), timeout, ssl_context)
        self.model, self.profile = (None if model in (None, "", "default") else model), (profile or None)
        info = self.transport.request("GET", "/version")
        if API_VERSION not in info.get("api_versions", []):
            raise VersionMismatchError(f"the server at {url} speaks WaveSeg API {info.get('api_versions')} (waveseg "
                                       f"{info.get('waveseg')}), this client API {API_VERSION}: install the same WaveSeg version on both")
        self.server_version, self.instance = info.get("waveseg"), info.get("instance")
        self.catalog = self.models()  # checks the token now, not at the first click

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def backbone(self) -> str:
        return f"remote:{self.model or 'default'}"

    def models(self) -> dict[str, Any]:
        """{"device", "default", "models": [{"name", "default"}], "profiles": [{"name", "structure", ...}]}."""
        return self.transport.request("GET", "/v1/models")

    def volume_session(self, volume: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0), window: tuple[float, float] | None = None,
                       cache_mb: float | None = None, prefetch: bool | None = None, share_cache_with=None,
                       initial_mask: np.ndarray | None = None, on_notice: Callable[[str], None] | None = None) -> RemoteVolumeSession:
        """A server-side session over a (Z, Y, X) volume (uploaded now); the signature of
        ``Segmenter.volume_session`` (cache_mb, prefetch and share_cache_with are the server's
        business and ignored)."""
        return RemoteVolumeSession(self, volume, spacing, window, initial_mask=initial_mask, on_notice=on_notice)

    def attach(self, session_id: str, volume: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
               window: tuple[float, float] | None = None) -> RemoteVolumeSession:
        """Join an existing session (e.g. from a second window); its mask is fetched."""
        return RemoteVolumeSession(self, volume, spacing, window, _attach=session_id)

    # -- adaptation on the server ----------------------------------------------------------------
    def start_adaptation(self, session: RemoteVolumeSession, name: str, structure: str = "structure", method: str = "decoder",
                         axis: int = 0, steps: int = 400, time_budget_s: float = 30.0) -> str:
        """Start adapting the model on the session's annotated slices into server profile ``name``; returns the job id."""
        reply = self.transport.request("POST", "/v1/adaptations", {"session": session.id, "name": name, "structure": structure,
                                                                  "method": method, "axis": axis, "steps": steps,
                                                                  "time_budget_s": time_budget_s}, headers=session._headers())
        return reply["job"]

    def adaptation(self, job: str, since: int = 0) -> dict[str, Any]:
        """{"state": running|done|error|cancelled, "messages": [...from index since], "next": n} (never blocks)."""
        return self.transport.request("GET", f"/v1/adaptations/{job}?since={int(since)}")

    def cancel_adaptation(self, job: str) -> None:
        self.transport.request("POST", f"/v1/adaptations/{job}/cancel", {})

    def wait_adaptation(self, job: str, progress: Callable[[dict], None] | None = None, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll a job until it ends (scripts and the CLI; UIs poll ``adaptation`` from a timer); returns its last state."""
        since = 0
        while True:
            state = self.adaptation(job, since)
            for message in state["messages"]:
                if progress is not None:
                    progress(message)
            since = state["next"]
            if state["state"] != "running":
                return state
            time.sleep(poll_s)  # pacing a poll loop against a process that reports every few seconds

    def close(self) -> None:
        self.transport.close()
