"""Remote mode in Slicer: the server URL and token file, and the ``RemoteSegmenter`` they give.

The two settings live in Slicer's user settings (``qt.QSettings()``, the application's settings
file: ``qSlicerCoreApplication::userSettings``, v5.10.0 ``Base/QTCore/qSlicerCoreApplication.h:401-404``;
``slicer.util.settingsValue`` reads them the same way, ``Base/Python/slicer/util.py:3440-3448``),
not in the module's parameter node: that node is saved with the scene, and a scene file shared
with a colleague must not carry where a token is, nor make their Slicer talk to a server.
The token itself stays in its file (first line), never in the settings.

With a server URL set, the effect needs neither torch nor WaveSeg's pip requirements: the remote
client (``waveseg.remote``) uses numpy and the standard library only. Everything here is
Slicer-free (the settings object is passed in) so it is tested without Slicer.
"""

from __future__ import annotations

import threading

URL_KEY = "WaveSeg/ServerURL"
TOKEN_FILE_KEY = "WaveSeg/ServerTokenFile"
CATALOG_TIMEOUT_S = 5.0  # listing models happens on the main thread when the effect activates: fail fast


def read(settings) -> tuple[str, str]:
    """(server URL or "", token file or "") from a ``qt.QSettings``-like object; read on the main thread."""
    def value(key: str) -> str:
        return str(settings.value(key) or "").strip() if settings.contains(key) else ""

    return value(URL_KEY), value(TOKEN_FILE_KEY)


def write(settings, url: str, token_file: str) -> None:
    settings.setValue(URL_KEY, url.strip())
    settings.setValue(TOKEN_FILE_KEY, token_file.strip())


class RemoteSegmenterCache:
    """One connected ``waveseg.remote.RemoteSegmenter`` per (url, token file, model, profile);
    ``get`` runs on the model worker thread (it connects and checks version and token)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._segmenter = None

    def get(self, url: str, token_file: str, model: str = "default", profile: str | None = None):
        from waveseg.remote import RemoteSegmenter

        key = (url, token_file or None, model, profile or None)
        with self._lock:
            if self._key != key:
                self._key, self._segmenter = None, None
                self._segmenter = RemoteSegmenter(url, model=model, profile=profile, token_file=token_file or None)
                self._key = key
            return self._segmenter

    def forget(self) -> None:
        with self._lock:
            self._key, self._segmenter = None, None


REMOTE_SEGMENTERS = RemoteSegmenterCache()


def server_catalog(url: str, token_file: str) -> dict:
    """The server's models and profiles ({"models": [...], "profiles": [...]}), asked with a short time-out."""
    from waveseg.remote import RemoteSegmenter

    seg = RemoteSegmenter(url, token_file=token_file or None, timeout=CATALOG_TIMEOUT_S)
    try:
        return seg.catalog
    finally:
        seg.close()


def model_names(url: str, token_file: str) -> list[str]:
    return ["default", *(m["name"] for m in server_catalog(url, token_file)["models"])]


def profiles(url: str, token_file: str) -> list[dict]:
    return list(server_catalog(url, token_file)["profiles"])
