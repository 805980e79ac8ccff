"""``waveseg serve``: check the security settings, then run the app with uvicorn.

Without a token file the server listens only on a loopback address (127.0.0.1, ::1, localhost):
anyone who can reach a port could otherwise use it. TLS comes from uvicorn's own options
(``--ssl-certfile``/``--ssl-keyfile``, passed to ``uvicorn.run``); without TLS on another address
the tokens travel in clear, so the server warns (put it behind a TLS proxy or give a certificate).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from waveseg.errors import MissingDependencyError, WaveSegError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; another needs --token-file)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token-file", help="file with one bearer token per line (required unless on loopback)")
    parser.add_argument("--model", action="append", help="model to serve (repeatable; the first is the default; default: 'default')")
    parser.add_argument("--device", default="auto", help="torch device: auto (cuda when present, else cpu), cpu, cuda, cuda:1")
    parser.add_argument("--ssl-certfile", help="TLS certificate (PEM) for HTTPS, passed to uvicorn")
    parser.add_argument("--ssl-keyfile", help="TLS private key (PEM) for HTTPS, passed to uvicorn")
    parser.add_argument("--max-volume-mb", type=float, default=1024, help="largest uploaded volume, decompressed (MiB)")
    parser.add_argument("--max-body-mb", type=float, default=512, help="largest request body (MiB)")
    parser.add_argument("--session-timeout", type=float, default=3600, help="close sessions idle this many seconds (default 3600)")
    parser.add_argument("--max-sessions-mb", type=float, default=8192, help="memory bound of all sessions; least recently used close first")
    parser.add_argument("--session-cache-mb", type=float, default=256, help="slice-embedding cache per session (MiB)")
    parser.add_argument("--model-threads", type=int, default=1, help="threads running model calls (default 1)")
    parser.add_argument("--prefetch", action="store_true", help="encode neighbouring slices ahead (off by default with many users)")
    parser.add_argument("--fd", type=int, help="serve on an already bound socket (file descriptor), e.g. from systemd or a test")
    parser.add_argument("--log-level", default="info")


def config_from_args(args: argparse.Namespace):
    from waveseg.server.auth import read_tokens
    from waveseg.server.config import ServerConfig

    tokens = read_tokens(args.token_file) if args.token_file else ()
    if not tokens and not is_loopback(args.host):
        raise WaveSegError(f"refusing to listen on {args.host} without a token: give --token-file FILE (one token per line), "
                           "or listen on 127.0.0.1")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise WaveSegError("TLS needs both --ssl-certfile and --ssl-keyfile")
    if not is_loopback(args.host) and not args.ssl_certfile:
        print(f"waveseg serve: warning: {args.host} without TLS: tokens and images travel unencrypted; give --ssl-certfile "
              "and --ssl-keyfile, or serve behind a TLS proxy (docs/server.md)", file=sys.stderr)
    return ServerConfig(tokens=tokens, models=tuple(args.model or ("default",)), device=args.device, max_volume_mb=args.max_volume_mb,
                        max_body_mb=args.max_body_mb, session_timeout_s=args.session_timeout, max_sessions_mb=args.max_sessions_mb,
                        session_cache_mb=args.session_cache_mb, model_threads=args.model_threads, prefetch=args.prefetch)


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from waveseg.server.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(f"the server needs the [server] extra ({exc.name} is missing): pip install 'waveseg[server]'") from None
    config = config_from_args(args)
    app = create_app(config)
    scheme = "https" if args.ssl_certfile else "http"
    print(f"waveseg serve: {scheme}://{args.host}:{args.port}/v1/ (models {', '.join(config.models)}; "
          f"{'token required' if config.tokens else 'no token: loopback only'})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, fd=args.fd, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
                log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0
