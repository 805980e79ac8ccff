"""On-disk cache of exported ONNX graphs, keyed by the exact weights they were exported from.

Exporting a module with ``torch.onnx.export`` costs seconds at a process's first use (tracing,
plus importing ``torch.onnx`` and ``onnx``); a cached graph is read back in milliseconds. The key
is a SHA-256 over everything the exported bytes depend on: the graph's name (the caller's
description of the computation), its input/output names and dynamic axes, the example inputs'
shapes and dtypes, torch's version and the opset, and the **bytes of every tensor** of the
watched modules (names, dtypes, shapes, values) together with their structure (``repr``). The
weights are hashed as they are in memory, not taken from the weights file's checksum, so a model
changed in memory (an adaptation profile applied, a fine-tuning step) gets its own graph and
never a stale one.

A cache file is ``MAGIC``, the SHA-256 of the graph bytes, a newline, then the graph bytes; it is
written atomically (``waveseg.atomic``). A file whose digest does not match (truncated, corrupt,
half-copied) is deleted and rebuilt, never run. The folder is ``$WAVESEG_CACHE/graphs`` or
``$XDG_CACHE_HOME/waveseg/graphs`` (default ``~/.cache/waveseg/graphs``); ``WAVESEG_CACHE=off``
turns the cache off. The least recently used graphs are removed beyond ``MAX_BYTES`` in total
(``$WAVESEG_CACHE_MB`` overrides), so adapting many times does not fill the disk.

Computing a key needs torch (the tensors in memory). So that a process can start without torch
(``waveseg.graph_segmenter``), a graph made from weights that are still exactly a model file's is
also reachable through an **alias**: a small ``<sha256>.alias`` file, named by the weights file's
SHA-256 (from its model card, checked when it was loaded), the graph's role and onnxruntime's
version (``alias_name``), holding the graph's key. An alias whose graph is gone or damaged is
removed and counts as a miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

from waveseg.atomic import write_bytes_atomic

MAGIC = b"WAVESEG-ONNX-GRAPH 2\n"
ALIAS_MAGIC = "WAVESEG-ONNX-ALIAS 1"
# the roles of the graphs that have aliases, and the names of their inputs (the graph segmenter feeds them)
ENCODER_ROLE = "encoder"  # image (1, 3, 256, 256) -> embedding (1, 256, 64, 64)
FIRST_DECODE_ROLE = "first decode"  # embedding, point_coords, point_labels, mask_input, has_mask_input -> low_res_logits, iou
MAX_BYTES = 1 << 30  # 1 GiB: about 12 weight sets of wave-gms's 5 graphs (about 80 MB each)
_log = logging.getLogger(__name__)


def cache_dir() -> Path | None:
    """The graphs folder, or None when ``WAVESEG_CACHE`` is "off" (also "0", "none")."""
    env = os.environ.get("WAVESEG_CACHE")
    if env is not None and env.strip().lower() in ("off", "0", "none", ""):
        return None
    if env:
        return Path(env).expanduser() / "graphs"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "waveseg" / "graphs"


def tensors_digest(modules: Iterable, digest=None):
    """Feed every tensor of ``modules`` (state_dict: parameters and buffers, sorted by name) and
    each module's ``repr`` into a SHA-256 (hashlib object, returned). About 1 ms per MB on this CPU."""
    import torch

    digest = digest or hashlib.sha256()
    for index, module in enumerate(modules):
        digest.update(f"module {index}: {module!r}\n".encode())
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
            if t.numel():
                digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest


def graph_key(name: str, inputs: Sequence[str], outputs: Sequence[str], dynamic_axes: dict | None,
              example: Sequence, watched: Iterable, opset: int) -> str:
    """Hex SHA-256 naming the graph that exporting ``name`` with these inputs and weights gives.

    example: the example tensors (only their shapes and dtypes enter the key); watched: the
    modules whose tensors the graph holds (their values enter the key)."""
    import torch

    digest = hashlib.sha256(MAGIC)
    digest.update(repr((name, tuple(inputs), tuple(outputs), sorted((dynamic_axes or {}).items()),
                        [(tuple(t.shape), str(t.dtype)) for t in example], torch.__version__, opset)).encode())
    return tensors_digest(watched, digest).hexdigest()


def _path(key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{key}.onnx"


def load(key: str) -> bytes | None:
    """The cached graph bytes for ``key``, or None (not cached, cache off, or a damaged file,
    which is deleted so that the caller rebuilds it)."""
    path = _path(key)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError:  # missing (the usual miss) or unreadable
        return None
    header = len(MAGIC) + 65  # magic, 64 hex digits, newline
    payload = raw[header:]
    if raw[:len(MAGIC)] != MAGIC or raw[len(MAGIC):header - 1].decode("ascii", "replace") != hashlib.sha256(payload).hexdigest():
        _log.warning("graph cache file %s is damaged (truncated or modified); rebuilding it", path)
        discard(key)
        return None
    try:
        os.utime(path)  # least recently used pruning goes by modification time
    except OSError:
        pass
    return payload


def discard(key: str) -> None:
    """Delete ``key``'s file (e.g. when onnxruntime refuses a graph whose digest matched)."""
    path = _path(key)
    if path is not None:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def store(key: str, graph: bytes) -> None:
    """Write ``graph`` for ``key`` atomically, then prune; a folder that cannot be written
    (read-only home, full disk) only costs the next process an export."""
    path = _path(key)
    if path is None:
        return
    try:
        write_bytes_atomic(path, MAGIC + hashlib.sha256(graph).hexdigest().encode() + b"\n" + graph)
        prune(path.parent, keep=path)
    except OSError as exc:
        _log.warning("cannot write the graph cache %s (%s); graphs will be exported again next time", path, exc)


def prune(folder: Path, keep: Path | None = None) -> None:
    """Remove the least recently used ``*.onnx`` files until the folder holds at most the limit."""
    limit = int(float(os.environ.get("WAVESEG_CACHE_MB", MAX_BYTES / 2**20)) * 2**20)
    files = []
    for p in folder.glob("*.onnx"):
        try:
            stat = p.stat()
        except OSError:  # removed meanwhile by another process
            continue
        files.append((stat.st_mtime, stat.st_size, p))
    total = sum(size for _, size, _ in files)
    for _, size, p in sorted(files, key=lambda f: f[0]):
        if total <= limit:
            break
        if p != keep:
            p.unlink(missing_ok=True)
            total -= size


def alias_name(weights_sha256: str, role: str, ort_version: str) -> str:
    """The torch-free name of the ``role`` graph ("encoder", "first decode") of the weights whose
    file has SHA-256 ``weights_sha256``, as onnxruntime ``ort_version`` optimised it."""
    return f"{ALIAS_MAGIC} | weights {weights_sha256} | {role} | onnxruntime {ort_version}"


def _alias_path(name: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{hashlib.sha256(name.encode()).hexdigest()}.alias"


def store_alias(name: str, key: str) -> None:
    """Let ``load_alias(name)`` find the graph stored under ``key``; atomic, best effort."""
    path = _alias_path(name)
    if path is None:
        return
    try:
        if not path.exists() or path.read_text().strip() != key:
            write_bytes_atomic(path, key.encode())
    except OSError as exc:
        _log.warning("cannot write the graph cache alias %s (%s)", path, exc)


def load_alias(name: str) -> bytes | None:
    """The graph bytes an alias points to, or None (no alias, cache off, graph gone or damaged)."""
    path = _alias_path(name)
    if path is None:
        return None
    try:
        key = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    graph = load(key) if len(key) == 64 and all(c in "0123456789abcdef" for c in key) else None
    if graph is None:  # pruned, damaged or a foreign file: the next full start writes it again
        path.unlink(missing_ok=True)
    return graph
