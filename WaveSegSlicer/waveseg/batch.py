"""``waveseg batch``: many images or volumes, one prompt set each, in one process.

The model is loaded (and its onnxruntime graphs exported or read from the cache) once for the
whole batch instead of once per command. A batch file lists items; each item is one
``waveseg segment`` (a slice: ``box`` and/or 2D ``point``/``negative``) or one ``waveseg
segment3d`` (a volume: ``box3d`` and/or 3D ``point``/``negative``). Formats (docs/cli.md):

- JSON: a list of objects, or ``{"items": [...]}``; keys as below, numbers as JSON numbers.
- CSV: a header row with the same keys as columns; a box is ``"x0 y0 x1 y1"``, several points
  are separated by ``;`` (``"90 150; 100 120"``); empty cells are absent keys.

Keys: ``image`` and ``output`` (required; relative paths are relative to the batch file's
folder), ``slice``, ``box``, ``box3d``, ``point``, ``negative``, ``window``, ``axis``
(axial/coronal/sagittal), ``name`` (segment name) and ``overlay`` (2D only). Coordinates are as
in the single commands: 2D (x, y) pixels of the slice, x = column; 3D (i, j, k) voxels =
(column, row, slice).

An item that fails (a missing file, a prompt outside the image, an unknown key) is reported
with its number and the batch goes on; its output is not written (all writes are atomic).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from waveseg.errors import WaveSegError

KEYS = ("image", "output", "slice", "box", "box3d", "point", "negative", "window", "axis", "name", "overlay")
_LENGTHS = {"box": 4, "box3d": 6, "window": 2}
AXES = {"axial": 0, "coronal": 1, "sagittal": 2}


@dataclasses.dataclass
class BatchItem:
    """One prompt set: ``volume`` (3D, propagated) or a slice (2D)."""

    number: int  # 1-based position in the batch file
    image: Path
    output: Path
    volume: bool
    slice: int | None = None
    box: list[float] | None = None  # (x0, y0, x1, y1) or (i0, j0, k0, i1, j1, k1)
    point: list[list[float]] = dataclasses.field(default_factory=list)  # (x, y) or (i, j, k) each
    negative: list[list[float]] = dataclasses.field(default_factory=list)
    window: tuple[float, float] | None = None
    axis: str = "axial"
    name: str = "Segment_1"
    overlay: Path | None = None


@dataclasses.dataclass
class ItemResult:
    item: BatchItem | None
    number: int
    error: str | None = None
    voxels: int = 0


def _numbers(value: Any, what: str) -> list[float]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise WaveSegError(f"{what} must be numbers, got {value!r}") from None


def _point_list(value: Any, what: str) -> list[list[float]]:
    if isinstance(value, str):
        return [_numbers(p, what) for p in value.split(";") if p.strip()]
    if value and all(isinstance(v, (int, float)) for v in value):  # one point written flat: [x, y]
        value = [value]
    return [_numbers(p, what) for p in value or []]


def parse_item(raw: dict[str, Any], number: int, folder: Path) -> BatchItem:
    """One batch entry -> ``BatchItem``; ``WaveSegError`` naming the problem if it is malformed."""
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise WaveSegError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    for key in ("image", "output"):
        if not raw.get(key):
            raise WaveSegError(f"'{key}' is missing")
    values: dict[str, Any] = {}
    for key, n in _LENGTHS.items():
        if raw.get(key) not in (None, ""):
            values[key] = _numbers(raw[key], key)
            if len(values[key]) != n:
                raise WaveSegError(f"'{key}' needs {n} numbers, got {len(values[key])}")
    point, negative = (_point_list(raw.get(k), k) for k in ("point", "negative"))
    dims = {len(p) for p in point + negative}
    volume = "box3d" in values or dims == {3}
    if "box" in values and "box3d" in values:
        raise WaveSegError("give 'box' (a slice) or 'box3d' (a volume), not both")
    if dims - {3 if volume else 2}:
        raise WaveSegError(f"points must all have {3 if volume else 2} coordinates ({'i j k' if volume else 'x y'})")
    if not point and not negative and "box" not in values and "box3d" not in values:
        raise WaveSegError("give a prompt: box, box3d, point or negative")
    axis = str(raw.get("axis") or "axial")
    if axis not in AXES:
        raise WaveSegError(f"axis {axis!r} is not one of {', '.join(AXES)}")
    slice_index = raw.get("slice")
    if slice_index not in (None, ""):
        try:
            slice_index = int(float(slice_index))
        except (TypeError, ValueError):
            raise WaveSegError(f"slice must be an integer, got {slice_index!r}") from None
    else:
        slice_index = None
    return BatchItem(
        number=number, image=folder / str(raw["image"]), output=folder / str(raw["output"]), volume=volume,
        slice=slice_index, box=values.get("box3d", values.get("box")), point=point, negative=negative,
        window=tuple(values["window"]) if "window" in values else None, axis=axis, name=str(raw.get("name") or "Segment_1"),
        overlay=folder / str(raw["overlay"]) if raw.get("overlay") else None,
    )


def read_batch(path: str | Path) -> list[dict[str, Any] | ItemResult]:
    """The raw entries of a JSON or CSV batch file (an entry that cannot be read is an error result)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WaveSegError(f"batch file {path} cannot be read: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and None in rows[0]:
            raise WaveSegError(f"{path}: a row has more cells than the header has columns")
        return [{k.strip(): v.strip() for k, v in row.items() if v and v.strip()} for row in rows]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WaveSegError(f"batch file {path} is not valid JSON ({exc}); use .json or .csv") from None
    if isinstance(data, dict):
        data = data.get("items")
    if not isinstance(data, list):
        raise WaveSegError(f"batch file {path}: expected a list of items or {{\"items\": [...]}}")
    return [entry if isinstance(entry, dict) else {"_not_an_object": entry} for entry in data]


def _run_slice(segmenter, item: BatchItem, volume) -> int:
    from waveseg.cli import _slice_of, _write_outputs

    image = _slice_of(volume, item.slice)
    points = [tuple(p) for p in item.point] + [tuple(p) for p in item.negative]
    labels = [1] * len(item.point) + [0] * len(item.negative)
    session = segmenter.session(image, window=item.window)
    mask = session.set_box(item.box) if item.box is not None else None
    for (x, y), label in zip(points, labels):
        mask = session.add_click(x, y, positive=bool(label))
    _write_outputs(mask, volume, item.slice, item.output, item.overlay, image, item.box,
                   np.array(points) if points else None, labels, item.window)
    return int(mask.sum())


def _run_volume(segmenter, item: BatchItem, volume) -> int:
    from waveseg.io import write_mask

    if not volume.is_volume:
        raise WaveSegError(f"{item.image} is a 2D image; use 'box' and 2D points for slices")
    session = segmenter.volume_session(volume.array, spacing=volume.spacing, window=item.window)
    try:
        axis = AXES[item.axis]
        if item.box is not None:
            session.box3d(item.box[:3], item.box[3:], axis=axis)
        for ijk in item.point:
            session.click(ijk, positive=True, axis=axis)
        for ijk in item.negative:
            session.click(ijk, positive=False, axis=axis)
    finally:
        session.close()
    write_mask(session.mask, item.output, volume, segment_name=item.name)
    return int(session.mask.sum())


def run_batch(segmenter, entries: list[dict[str, Any]], folder: Path,
              progress: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
    """Run every entry with one ``segmenter``; a failing entry gives an error result, the rest go on.

    folder: where relative paths of the entries point from (the batch file's folder).
    progress: called after each entry with its result."""
    from waveseg.io import read_image

    results, cached = [], (None, None)  # consecutive items on one image read it once
    for number, raw in enumerate(entries, start=1):
        result = ItemResult(None, number)
        try:
            if "_not_an_object" in raw:
                raise WaveSegError(f"an item must be an object with image, output and a prompt, got {raw['_not_an_object']!r}")
            item = result.item = parse_item(raw, number, folder)
            if cached[0] != item.image:
                cached = (item.image, read_image(item.image))
            result.voxels = (_run_volume if item.volume else _run_slice)(segmenter, item, cached[1])
        except WaveSegError as exc:
            result.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one bad item (e.g. a corrupt file a reader chokes on) must not end the batch
            result.error = f"{type(exc).__name__}: {exc}"
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def cmd_batch(args) -> int:
    """``waveseg batch FILE``: exit 0 when every item was written, 1 when some failed, 2 for a bad batch file."""
    import sys

    from tqdm import tqdm

    from waveseg.cli import _load_segmenter, _log

    path = Path(args.batch)
    entries = read_batch(path)
    if not entries:
        raise WaveSegError(f"batch file {path} holds no items")
    segmenter = _load_segmenter(args.model, args.device, args.profile)
    with tqdm(total=len(entries), desc="batch", unit="item", file=sys.stderr) as bar:
        def progress(result: ItemResult) -> None:
            if result.error:  # above the bar, at once: a long batch shows its failures as they happen
                bar.write(f"item {result.number}: error: {result.error}", file=sys.stderr)
            bar.update(1)

        results = run_batch(segmenter, entries, path.parent, progress)
    failed = [r for r in results if r.error]
    for r in results:
        print(f"item {r.number}: " + (f"error: {r.error}" if r.error else f"wrote {r.item.output} ({r.voxels} voxels)"))
    _log(f"{len(results) - len(failed)} of {len(results)} items written" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0
