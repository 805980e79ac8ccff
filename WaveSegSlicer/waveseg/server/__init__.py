"""The WaveSeg site server (optional extra ``[server]``: FastAPI + uvicorn).

    waveseg serve --host 127.0.0.1 --port 8765 --token-file tokens.txt

Many Slicer and app users share one (GPU) machine: each holds a server-side volume session
(``waveseg.server.sessions``), uploads its volume once, sends prompts and receives only the
slices that changed. The torch-free client is ``waveseg.remote``. docs/server.md explains the
API, security (tokens, TLS, limits) and several servers behind nginx.
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    """``waveseg.server.app.create_app`` (imported lazily: FastAPI is an optional extra)."""
    from waveseg.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)
