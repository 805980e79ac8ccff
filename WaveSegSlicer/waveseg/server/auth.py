"""Bearer tokens: read from a file, compared in constant time.

The token file holds one token per line (blank lines and ``#`` comments ignored); each must be
at least 16 characters so that a guess is hopeless. ``python -c "import secrets;
print(secrets.token_urlsafe(32))" >> tokens.txt`` makes one. The file should be readable by the
server's user only; a warning is printed when others may read it.
"""

from __future__ import annotations

import hmac
import os
import stat
import sys
from pathlib import Path

from waveseg.errors import WaveSegError

MIN_TOKEN_LENGTH = 16


def read_tokens(path: str | os.PathLike) -> tuple[str, ...]:
    """The tokens in ``path``; a clear ``WaveSegError`` if the file is missing, empty or weak."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WaveSegError(f"cannot read the token file {path}: {exc.strerror}") from None
    tokens = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))
    if not tokens:
        raise WaveSegError(f"the token file {path} holds no token (one per line)")
    short = [n + 1 for n, t in enumerate(tokens) if len(t) < MIN_TOKEN_LENGTH or any(c.isspace() for c in t)]
    if short:
        raise WaveSegError(f"token(s) {short} in {path} are shorter than {MIN_TOKEN_LENGTH} characters or contain spaces")
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"waveseg serve: warning: {path} is readable by other users (chmod 600 {path})", file=sys.stderr)
    return tokens


def token_index(authorization: str | None, tokens: tuple[str, ...]) -> int | None:
    """Which token an ``Authorization: Bearer ...`` header carries (its index), else None.

    Every token is compared, each with ``hmac.compare_digest``, so the time taken does not tell
    which token or how many leading characters matched.
    """
    if not authorization or not authorization.startswith("Bearer "):
        return None
    given = authorization[len("Bearer "):].strip().encode()
    found = None
    for n, token in enumerate(tokens):
        if hmac.compare_digest(given, token.encode()):
            found = n
    return found
