#!/usr/bin/env python
"""Does slice orientation matter? Dice of slices fed in array order versus as 3D Slicer shows them.

``VolumeSession`` (``waveseg.volume_geometry.take_slice``) hands the model ``vol[k]``,
``vol[:, j]`` and ``vol[:, :, i]`` of the (Z, Y, X) array as they come. 3D Slicer draws the same
planes in its own screen frame (``vtkMRMLSliceNode::Get{Axial,Coronal,Sagittal}SliceToRASMatrix``,
radiological convention): axial = patient left on screen-right, anterior up; coronal = patient
left on screen-right, superior up; sagittal = posterior on screen-right, superior up. For each
volume this script reads the direction matrix (SimpleITK, LPS), finds which array axis points
where, and derives per plane the transpose and row / column flips that turn the array slice into
the on-screen picture (printed, and listed in the report).

For every held-out volume and structure (configs/data_split.json "test" part and
configs/eval_unseen_lesions.json), on axial (control), coronal and sagittal slices that contain
the structure (build_slices.py's foreground and mask-size rules; every ``--every``-th such slice,
at most ``--cap`` per structure and plane, evenly spread), each model is run twice on the same
slice: (a) as the array gives it, (b) in display orientation. Slices are resampled to square
pixels first, as ``VolumeSession`` does, and encoded with the entry's window. Prompts are the
same in both frames: the tight box of the truth (mapped; it is the tight box of the mapped truth),
and 1/3/5 RITM clicks without a box (``next_click``; logits fed back, as evaluate.py's protocol),
where every click is chosen in the array frame from the prediction mapped back there and then
mapped into frame (b), so that tie-breaking is the same. Every mask is mapped back to the array
frame and scored against the same truth (Dice on the square-pixel slice, ``waveseg.metrics``).

Reports mean Dice per orientation, plane and prompt, the paired difference (display - array)
with a 95 % bootstrap CI over slices (and over structures for the pooled rows) and the paired
sign count; per volume too. Per-item results go to ``~/.cache/waveseg/bench_slice_orientation.json``.

    .venv/bin/python scripts/bench_slice_orientation.py --models default litemedsam \
        [--every 4] [--cap 10] [--report reports/slice_orientation.md]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from build_slices import MIN_FOREGROUND, MIN_MASK_PIXELS, _structure_mask
from scripts_common import VOLUMES, load_array
from waveseg.metrics import dice
from waveseg.predictor import Segmenter
from waveseg.preprocess import MODEL_INPUT_SIZE, normalize_intensity
from waveseg.prompting.simulation import next_click, tight_box
from waveseg.volume_geometry import AXIS_NAMES, SlicePixels, take_slice

ROOT = Path(__file__).resolve().parent.parent
SPLITS = (ROOT / "configs" / "data_split.json", ROOT / "configs" / "eval_unseen_lesions.json")
RESULTS = VOLUMES.parent / "bench_slice_orientation.json"
CLICKS = (1, 3, 5)
KINDS = ("box",) + tuple(f"click{n}" for n in CLICKS)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
# Slicer's screen frame per plane, in RAS: (direction of increasing column = screen right,
# direction of increasing row = screen down, i.e. minus Slicer's screen-up axis)
SCREEN = {"axial": ((-1, 0, 0), (0, -1, 0)),      # right -> patient L, down -> P (anterior up)
          "coronal": ((-1, 0, 0), (0, 0, -1)),    # right -> patient L, down -> I (superior up)
          "sagittal": ((0, -1, 0), (0, 0, -1))}   # right -> P (anterior on screen-left), down -> I
RAS_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))  # (negative, positive) end of each RAS axis


@dataclass(frozen=True)
class DisplayMap:
    """Transpose, then flips, that turn an array slice (rows, cols) into Slicer's on-screen picture."""

    transpose: bool
    flip_rows: bool
    flip_cols: bool

    def image(self, a: np.ndarray) -> np.ndarray:
        a = a.T if self.transpose else a
        return np.ascontiguousarray(a[::-1 if self.flip_rows else 1, ::-1 if self.flip_cols else 1])

    def back(self, a: np.ndarray) -> np.ndarray:
        a = a[::-1 if self.flip_rows else 1, ::-1 if self.flip_cols else 1]
        return np.ascontiguousarray(a.T if self.transpose else a)

    def point(self, xy: tuple[float, float], array_hw: tuple[int, int]) -> tuple[float, float]:
        """Array-frame pixel (x, y) -> display-frame pixel (x, y)."""
        x, y = xy
        h, w = array_hw
        if self.transpose:
            x, y, h, w = y, x, w, h
        return (w - 1 - x if self.flip_cols else x, h - 1 - y if self.flip_rows else y)

    def box(self, box: np.ndarray, array_hw: tuple[int, int]) -> np.ndarray:
        (x0, y0), (x1, y1) = self.point(box[:2], array_hw), self.point(box[2:], array_hw)
        return np.array([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], np.float32)

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_cols)

    def describe(self) -> str:
        steps = [s for s, on in (("transpose", self.transpose), ("flip rows (up-down)", self.flip_rows),
                                 ("flip columns (left-right)", self.flip_cols)) if on]
        return " + ".join(steps) if steps else "none (array = display)"


def ras_of_array_axes(direction_lps: np.ndarray) -> np.ndarray:
    """(3, 3): row a = RAS unit vector along numpy axis a (0 = z/k, 1 = y/j, 2 = x/i)."""
    return np.stack([LPS_TO_RAS @ direction_lps[:, 2 - a] for a in range(3)])


def letter(v: np.ndarray) -> str:
    a = int(np.argmax(np.abs(v)))
    return RAS_LETTERS[a][int(v[a] > 0)]


def display_map(axes_ras: np.ndarray, axis: int) -> tuple[str, DisplayMap]:
    """(Slicer plane name, map) for the slice ``take_slice(vol, axis, .)``."""
    plane = ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(axes_ras[axis])))]
    rows_axis, cols_axis = [a for a in range(3) if a != axis]  # take_slice keeps the other axes in order
    right, down = (np.array(v, float) for v in SCREEN[plane])
    transpose = abs(axes_ras[rows_axis] @ right) > abs(axes_ras[cols_axis] @ right)
    if transpose:
        rows_axis, cols_axis = cols_axis, rows_axis
    return plane, DisplayMap(transpose, bool(axes_ras[rows_axis] @ down < 0), bool(axes_ras[cols_axis] @ right < 0))


def held_out_entries() -> list[dict]:
    return [entry for split in SPLITS for entry in json.loads(split.read_text())["test"]]


@dataclass
class Item:
    """One structure on one slice: the truth in the array frame, square pixels."""

    volume: str
    structure: str
    axis: int
    index: int
    truth: np.ndarray


def choose_slices(entry: dict, every: int, cap: int):
    """Yield (entry name, axis, DisplayMap, plane, index, square image, window, [Item]) per chosen slice."""
    path = VOLUMES / entry["image"]
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    spacing = reader.GetSpacing()
    axes_ras = ras_of_array_axes(np.array(reader.GetDirection()).reshape(3, 3))
    image = load_array(entry["image"]).astype(np.float32)
    z0, z1 = entry.get("z_range", [0, image.shape[0]])
    image = image[z0:z1]
    labels = [(load_array(spec["file"])[z0:z1], spec["structures"]) for spec in entry["labels"]]
    window = tuple(entry["window"]) if "window" in entry else None
    for axis in range(3):
        plane, dmap = display_map(axes_ras, axis)
        px = SlicePixels.for_slice(image.shape, spacing, axis)
        scale = (MODEL_INPUT_SIZE / max(px.square_hw)) ** 2  # square pixels -> 256-frame pixels
        chosen: dict[int, list[Item]] = defaultdict(list)
        for label_map, structures in labels:
            for name, rule in structures.items():
                mask3d = _structure_mask(label_map, rule)
                candidates = []
                for k in range(image.shape[axis]):
                    m = take_slice(mask3d, axis, k)
                    if not m.any():
                        continue
                    truth = px.mask_to_square(m)
                    if truth.sum() * scale < MIN_MASK_PIXELS:
                        continue
                    if (normalize_intensity(take_slice(image, axis, k), window) > 0.1).mean() < MIN_FOREGROUND:
                        continue
                    candidates.append((k, truth))
                candidates = candidates[::every]
                keep = np.unique(np.linspace(0, len(candidates) - 1, min(cap, len(candidates))).astype(int)) if candidates else []
                for c in keep:
                    k, truth = candidates[c]
                    chosen[k].append(Item(entry["name"], name, axis, k, truth))
        for k in sorted(chosen):
            yield entry["name"], axis, dmap, plane, k, px.image_to_square(take_slice(image, axis, k)), window, chosen[k]


def run_item(seg: Segmenter, encoded, truth: np.ndarray, dmap: DisplayMap | None) -> dict[str, float]:
    """Box and 1/3/5-click Dice of one structure; ``dmap`` None = array frame, else the display frame."""
    hw = truth.shape
    from_frame = (lambda a: a) if dmap is None else dmap.back
    point = (lambda xy: xy) if dmap is None else (lambda xy: dmap.point(xy, hw))
    box = tight_box(truth)
    out = {"box": dice(from_frame(seg.predict_encoded(encoded, box=box if dmap is None else dmap.box(box, hw)).mask), truth)}
    points, labels, logits, prediction = [], [], None, None  # prediction: array frame
    for n in range(1, max(CLICKS) + 1):
        click = next_click(prediction, truth)  # chosen in the array frame in both runs
        if click is not None:
            points.append(point(click[:2]))
            labels.append(click[2])
            res = seg.predict_encoded(encoded, points=points, labels=labels, mask_input=logits)
            prediction, logits = from_frame(res.mask), res.logits
        if n in CLICKS:
            out[f"click{n}"] = dice(prediction, truth)
    return out


def bootstrap_ci(diffs: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator, n: int = 5000) -> tuple[float, float]:
    """95 % percentile bootstrap CI of the mean of ``diffs``, resampling items (or whole groups)."""
    if len(diffs) < 2:
        return float("nan"), float("nan")
    if groups is None:
        means = diffs[rng.integers(0, len(diffs), (n, len(diffs)))].mean(axis=1)
    else:
        names = np.unique(groups)
        members = [np.nonzero(groups == g)[0] for g in names]
        means = np.empty(n)
        for b in range(n):
            pick = np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])
            means[b] = diffs[pick].mean()
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summary_row(rows: list[dict], kind: str, rng: np.random.Generator, cluster: bool) -> str:
    a = np.array([r["array"][kind] for r in rows])
    d = np.array([r["display"][kind] for r in rows])
    diff = d - a
    groups = np.array([f"{r['volume']}:{r['structure']}:{r['plane']}" for r in rows]) if cluster else None
    lo, hi = bootstrap_ci(diff, None, rng)
    text = f"{a.mean():.3f} | {d.mean():.3f} | {100 * diff.mean():+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    if cluster:
        clo, chi = bootstrap_ci(diff, groups, rng)
        text += f" | [{100 * clo:+.1f}, {100 * chi:+.1f}]"
    eps = 1e-3
    return text + f" | {(diff > eps).sum()}/{(diff < -eps).sum()}/{(np.abs(diff) <= eps).sum()}"


# pooled groups of coronal + sagittal slices; the last two split the volumes post hoc by what they show
POOLS = (
    ("all", lambda r: True),
    ("all but LiTS", lambda r: r["volume"] != "lits117_upper"),  # its header is assumed, not read (fetch_data.py)
    ("brain MR", lambda r: r["volume"] in BRAINS),
    ("body", lambda r: r["volume"] not in BRAINS),
)
BRAINS = ("colin27_unseen_structures", "inia19_macaque", "pyradiomics_brain1", "pyradiomics_brain2")


def volume_maps() -> dict[tuple[str, int], tuple[str, DisplayMap, str]]:
    """(volume, array axis) -> (Slicer plane, DisplayMap, "rows -> / cols ->" anatomical letters)."""
    maps = {}
    for entry in held_out_entries():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(VOLUMES / entry["image"]))
        reader.ReadImageInformation()
        axes_ras = ras_of_array_axes(np.array(reader.GetDirection()).reshape(3, 3))
        for axis in range(3):
            r, c = [a for a in range(3) if a != axis]
            plane, dmap = display_map(axes_ras, axis)
            maps[(entry["name"], axis)] = (plane, dmap, f"{letter(axes_ras[r])} / {letter(axes_ras[c])}")
    return maps


def measure(args: argparse.Namespace) -> tuple[list[dict], str]:
    """Run every model on every chosen slice in both frames; returns (rows, encoder runtime)."""
    segs = {}
    for name in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            segs[name] = Segmenter.from_pretrained(name, runtime=args.runtime)
    rows: list[dict] = []
    for entry in held_out_entries():
        t0 = time.perf_counter()
        n_before = len(rows)
        for volume, axis, dmap, plane, k, image, window, items in choose_slices(entry, args.every, args.cap):
            shown = dmap.image(image)
            for name, seg in segs.items():
                encoded_array = seg.encode(image, window)
                encoded_display = encoded_array if dmap.identity else seg.encode(shown, window)
                for item in items:
                    res_a = run_item(seg, encoded_array, item.truth, None)
                    res_d = res_a if dmap.identity else run_item(seg, encoded_display, item.truth, dmap)
                    rows.append({"model": name, "volume": volume, "structure": item.structure, "axis": axis,
                                 "plane": plane, "index": k, "identity": dmap.identity, "array": res_a, "display": res_d})
        print(f"{entry['name']}: {(len(rows) - n_before) // len(segs)} structure-slices, {time.perf_counter() - t0:.0f} s", flush=True)
    return rows, next(iter(segs.values())).runtime


def write_report(rows: list[dict], models: list[str], cmd: str, seconds: float, runtime: str, report: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    maps = volume_maps()
    lines = ["# Slice orientation: array order versus 3D Slicer's display", "",
             f"Command: `{cmd}` ({seconds / 60:.1f} min on this machine's 2 shared cores; runtime {runtime}).", "",
             "Display maps (from each volume's direction matrix; Slicer's radiological screen frame):", "",
             "| volume | array axis | Slicer plane | array rows -> / cols -> | array slice -> screen |", "|---|---|---|---|---|"]
    volumes_seen = list(dict.fromkeys(r["volume"] for r in rows))
    for volume in volumes_seen:
        for axis in range(3):
            plane, dmap, letters = maps[(volume, axis)]
            lines.append(f"| {volume} | {axis} ({AXIS_NAMES[axis]} in volume_geometry) | {plane} | {letters} | {dmap.describe()} |")
    header = ("| model | plane | prompt | n | Dice array | Dice display | display - array, Dice points [95 % CI, slices] | "
              "sign count display better/worse/tie |")
    lines += ["", "## Overall per plane (axial = control)", "", header, "|---|---|---|---:|---:|---:|---:|---:|"]
    for model in models:
        for plane in ("axial", "coronal", "sagittal"):
            sel = [r for r in rows if r["model"] == model and r["plane"] == plane]
            for kind in KINDS:
                if sel:
                    lines.append(f"| {model} | {plane} | {kind} | {len(sel)} | {summary_row(sel, kind, rng, False)} |")
    lines += ["", "## Coronal + sagittal pooled", "",
              ("Second CI: resampling whole (volume, structure, plane) groups, as slices of one structure are correlated. "
               "Pools: all; all but LiTS (its direction matrix is assumed by fetch_data.py, not read from the source); "
               "brain MR = colin27, inia19, pyradiomics brain1/2, body = LiTS CT, breast MR, lung CT (a post hoc split)."), "",
              ("| model | pool | prompt | n | Dice array | Dice display | display - array [95 % CI, slices] | [95 % CI, structures] | "
               "sign count display better/worse/tie |"), "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for model in models:
        for pool, keep in POOLS:
            sel = [r for r in rows if r["model"] == model and r["plane"] != "axial" and keep(r)]
            for kind in KINDS:
                if sel:
                    lines.append(f"| {model} | {pool} | {kind} | {len(sel)} | {summary_row(sel, kind, rng, True)} |")
    lines += ["", "## Per volume (display - array in Dice points, mean [95 % CI over slices]; n slices)", "",
              "| model | volume | plane | n | box | 1 click | 3 clicks | 5 clicks |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for model in models:
        for volume in volumes_seen:
            for plane in ("axial", "coronal", "sagittal"):
                sel = [r for r in rows if r["model"] == model and r["volume"] == volume and r["plane"] == plane]
                if not sel:
                    continue
                cells = []
                for kind in KINDS:
                    a = np.array([r["array"][kind] for r in sel])
                    diff = np.array([r["display"][kind] for r in sel]) - a
                    if sel[0]["identity"]:
                        cells.append(f"{a.mean():.2f}, same picture")
                        continue
                    lo, hi = bootstrap_ci(diff, None, rng)
                    ci = f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if len(sel) > 1 else ""
                    cells.append(f"{a.mean():.2f} -> {a.mean() + diff.mean():.2f}: {100 * diff.mean():+.1f}{ci}")
                lines.append(f"| {model} | {volume} | {plane} | {len(sel)} | " + " | ".join(cells) + " |")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {report}; measuring took {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "litemedsam"])
    parser.add_argument("--every", type=int, default=4, help="take every n-th slice that holds the structure")
    parser.add_argument("--cap", type=int, default=10, help="at most this many slices per structure and plane")
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--report", default="reports/slice_orientation.md")
    parser.add_argument("--from-results", action="store_true",
                        help=f"rewrite the report from the per-item results of the last run ({RESULTS}) without running models")
    args = parser.parse_args()
    if args.from_results:
        saved = json.loads(RESULTS.read_text())
        rows, seconds, runtime = saved["rows"], saved["seconds"], saved.get("runtime", "onnx")
        for key in ("models", "every", "cap", "runtime"):
            setattr(args, key, saved["args"][key])
    else:
        start = time.perf_counter()
        rows, runtime = measure(args)
        seconds = time.perf_counter() - start
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "from_results"},
                                       "seconds": seconds, "runtime": runtime, "rows": rows}))
    cmd = (f".venv/bin/python scripts/bench_slice_orientation.py --models {' '.join(args.models)} --every {args.every} "
           f"--cap {args.cap} --runtime {args.runtime}" + ("" if args.report == "reports/slice_orientation.md" else f" --report {args.report}"))
    write_report(rows, args.models, cmd, seconds, runtime, Path(args.report), args.seed)


if __name__ == "__main__":
    main()
