"""The torch-free client of a WaveSeg server (numpy and the standard library only).

    from waveseg.remote import RemoteSegmenter
    seg = RemoteSegmenter("http://127.0.0.1:8765", token_file="token.txt")
    vs = seg.volume_session(volume_zyx, spacing=(1, 1, 1))    # same shape as waveseg.VolumeSession

See ``waveseg.remote.session`` for what happens when the server restarts, and docs/server.md.
"""

from waveseg.remote.errors import (AuthenticationError, RemoteError, ServerUnreachableError, SessionConflictError, SessionLostError,
                                   VersionMismatchError)
from waveseg.remote.segmenter import RemoteSegmenter, token_from
from waveseg.remote.session import RemoteReport, RemoteVolumeSession

__all__ = ["RemoteSegmenter", "RemoteVolumeSession", "RemoteReport", "RemoteError", "AuthenticationError", "ServerUnreachableError",
           "SessionConflictError", "SessionLostError", "VersionMismatchError", "token_from"]
