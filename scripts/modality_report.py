"""Per-modality rows of ``scripts/evaluate.py --by-modality``: slice sets, grouping, tables, goal gaps.

Every mask of a ``scripts/build_slices.py`` set carries ``mask_modality`` ("CT", "MR", ...),
``mask_source`` (the package or atlas it came from) and ``mask_patient``. evaluate.py runs every
model on the same chosen masks with the same prompts; this module cuts those per-mask results
into one group per modality and per (modality, source) and summarises each group with
evaluate.py's own ``summarize``, so a group's row is computed exactly as the whole set's row is.
The goals are issue #23's, on every modality row: box Dice >= LiteMedSAM's + 0.03, Dice after 5
clicks >= 0.90, NoC@85 <= 5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REFERENCE = "litemedsam"
BOX_MARGIN, CLICK5_GOAL, NOC85_GOAL = 0.03, 0.90, 5.0
_PER_MASK_KEYS = ("mask_modality", "mask_source", "mask_patient")


def load_slices(paths: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """One slice set from several build_slices.py ``test.npz`` files (mask_slice re-indexed).

    Files written before build_slices.py recorded modality, source and patient get "unknown" as
    modality and the set name (``mask_name`` up to ":") as source and patient."""
    parts = []
    for path in paths:
        data = dict(np.load(path))
        names = data["mask_name"]
        set_names = np.array([str(n).split(":")[0] for n in names])
        data.setdefault("mask_modality", np.full(len(names), "unknown"))
        data.setdefault("mask_source", set_names)
        data.setdefault("mask_patient", set_names)
        parts.append(data)
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p["images"]) for p in parts[:-1]])
    merged = {key: np.concatenate([p[key] for p in parts]) for key in
              ("images", "valid_hw", "source", "masks", "mask_name", *_PER_MASK_KEYS)}
    merged["mask_slice"] = np.concatenate([p["mask_slice"] + off for p, off in zip(parts, offsets)])
    return merged


def group_keys(data: dict[str, np.ndarray]) -> np.ndarray:
    """(M,) "modality / source" of every mask."""
    return np.array([f"{m} / {s}" for m, s in zip(data["mask_modality"], data["mask_source"])])


def choose_per_group(data: dict[str, np.ndarray], per_group: int) -> np.ndarray:
    """Sorted mask indices: at most ``per_group`` of every (modality, source), evenly spread over it."""
    keys = group_keys(data)
    chosen = []
    for key in sorted(set(keys)):
        members = np.flatnonzero(keys == key)
        chosen.append(members[np.unique(np.linspace(0, len(members) - 1, min(per_group, len(members))).astype(int))])
    return np.sort(np.concatenate(chosen))


def _subset(results: dict, positions: np.ndarray) -> dict:
    """The per-mask lists of one model's results at ``positions``; scalars (timings) kept."""
    n = len(results["box"])
    return {k: ([v[i] for i in positions] if isinstance(v, list) and len(v) == n else v) for k, v in results.items()}


def group_summaries(per_mask: dict[str, dict], data: dict[str, np.ndarray], summarize: Callable[[dict], dict]) -> dict:
    """{"modality": {name: row}, "source": {"modality / source": row}, "all": row}, a row being
    {"n", "slices", "patients", "models": {label: summarize(...)}}; every model's results must
    cover the same masks (evaluate.py runs all on the same chosen masks)."""
    first = next(iter(per_mask.values()))
    index = np.array(first["mask_index"])
    for label, results in per_mask.items():
        if not np.array_equal(np.array(results["mask_index"]), index):
            raise ValueError(f"{label} was evaluated on other masks than {next(iter(per_mask))}")
    columns = {"modality": data["mask_modality"][index], "source": group_keys(data)[index],
               "all": np.full(len(index), "all")}
    out: dict = {}
    for level, values in columns.items():
        rows = {}
        for name in sorted(set(values)):
            positions = np.flatnonzero(values == name)
            masks = index[positions]
            rows[name] = {"n": len(positions), "slices": len(set(data["mask_slice"][masks].tolist())),
                          "patients": len(set(data["mask_patient"][masks].tolist())),
                          "models": {label: summarize(_subset(r, positions)) for label, r in per_mask.items()}}
        out[level] = rows["all"] if level == "all" else rows
    return out


def goal_gaps(row: dict, label: str) -> dict[str, float] | None:
    """Measured minus goal for one model on one row (positive = goal met with margin; for NoC,
    goal minus measured), on the protocol columns and on the ROI-zoom (public API) columns."""
    ref = row["models"].get(REFERENCE)
    if ref is None or label == REFERENCE:
        return None
    s = row["models"][label]
    return {"box": s["box"] - (ref["box"] + BOX_MARGIN), "box_roi": s["box_roi"] - (ref["box_roi"] + BOX_MARGIN),
            "click5": s["click5"] - CLICK5_GOAL, "click5_roi": s["click5_roi"] - CLICK5_GOAL,
            "noc85": NOC85_GOAL - s["noc85"], "noc85_roi": NOC85_GOAL - s["noc85_roi"]}


def _rows(grouped: dict) -> list[tuple[str, str, dict]]:
    rows = [(name, "all sources", row) for name, row in grouped["modality"].items()]
    rows += [(key.split(" / ")[0], key.split(" / ", 1)[1], row) for key, row in grouped["source"].items()]
    rows.append(("all", "all sources", grouped["all"]))
    return rows


def tables(grouped: dict, roi: bool = True) -> list[str]:
    """Markdown lines: per-modality and per-source Dice/NSD table, the ROI-zoom table, the goal gaps.

    roi: whether the ROI-zoom session protocols ran (``evaluate.py --no-roi`` skips them): without
    them the ROI-zoom table and the gaps' ROI-zoom halves are left out.
    """
    lines = ["", "## Per modality and per source", "",
             ("Dice and NSD (normalised surface Dice at 2 pixels, MONAI `compute_surface_dice`) in the 256 x 256 "
              "model frame; n = masks, slices, patients (volumes or images whose patient is not otherwise known)."), "",
             ("| modality | source | n (slices, patients) | model | box | box NSD | jittered box | 1 click | 3 clicks | "
              "5 clicks | 5-click NSD | NoC@85 | NoC@90 | box + 5 clicks | box + 5 NSD |"),
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for modality, source, row in _rows(grouped):
        for label, s in row["models"].items():
            lines.append(f"| {modality} | {source} | {row['n']} ({row['slices']}, {row['patients']}) | {label} | "
                         f"{s['box']:.3f} | {s['nsd_box']:.3f} | {s['box_jitter']:.3f} | {s['click1']:.3f} | "
                         f"{s['click3']:.3f} | {s['click5']:.3f} | {s['nsd_click5']:.3f} | {s['noc85']:.1f} | "
                         f"{s['noc90']:.1f} | {s['box_5clicks']:.3f} | {s['nsd_box_5clicks']:.3f} |")
    if roi:
        lines += ["", "With ROI zoom (`InteractiveSession(roi_zoom=\"auto\")`, the public API's default), same prompts:", "",
                  "| modality | source | n | model | box | 5 clicks | NoC@85 | box + 5 clicks |", "|---|---|---:|---|---:|---:|---:|---:|"]
        for modality, source, row in _rows(grouped):
            for label, s in row["models"].items():
                lines.append(f"| {modality} | {source} | {row['n']} | {label} | {s['box_roi']:.3f} | {s['click5_roi']:.3f} | "
                             f"{s['noc85_roi']:.1f} | {s['box_5clicks_roi']:.3f} |")
    lines += ["", (f"Goal gaps per modality (issue #23: box >= LiteMedSAM + {BOX_MARGIN:.2f}, 5 clicks >= {CLICK5_GOAL:.2f}, "
                   f"NoC@85 <= {NOC85_GOAL:.0f}); measured minus goal, negative = missed by that much; "
                   f"{'protocol / ROI zoom' if roi else 'protocol'}:"), "",
              "| modality | model | box | 5 clicks | NoC@85 (clicks) |", "|---|---|---:|---:|---:|"]
    for modality, row in [*grouped["modality"].items(), ("all", grouped["all"])]:
        for label in row["models"]:
            gaps = goal_gaps(row, label)
            if gaps:
                cells = [f"{gaps[k]:+.3f}" + (f" / {gaps[k + '_roi']:+.3f}" if roi else "") for k in ("box", "click5")]
                noc = f"{gaps['noc85']:+.1f}" + (f" / {gaps['noc85_roi']:+.1f}" if roi else "")
                lines.append(f"| {modality} | {label} | {cells[0]} | {cells[1]} | {noc} |")
    return lines


def to_json(grouped: dict) -> dict:
    """``grouped`` with numpy values as plain floats and lists (per-structure detail dropped)."""
    def plain(v):  # a number, an array, or dicts and lists of them (the stroke protocol's summary)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v.tolist() if isinstance(v, np.ndarray) else float(v)

    def row(r: dict) -> dict:
        return {"n": r["n"], "slices": r["slices"], "patients": r["patients"],
                "models": {label: {k: plain(v) for k, v in s.items() if k != "by_structure"}
                           for label, s in r["models"].items()}}
    return {"modality": {k: row(v) for k, v in grouped["modality"].items()},
            "source": {k: row(v) for k, v in grouped["source"].items()}, "all": row(grouped["all"])}
