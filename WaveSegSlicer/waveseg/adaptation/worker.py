"""Adaptation as a separate process that reports progress as JSON lines (for Slicer and the app).

    python -m waveseg.adaptation.worker --model default --data slices.npz --name site-liver \
        [--structure liver] [--method decoder] [--time-budget 30] [--window LO HI]

``slices.npz`` holds ``images`` (k, H, W) and ``masks`` (k, H, W). Every line on stdout is one JSON
object: {"event": "progress", "step", "loss", "val_dice"?, "seconds"}, then {"event": "done",
"profile" (null when the gate kept the base model), "kept", "message", "val_dice_before", ...} or {"event": "error", "message"}. SIGTERM
or closing the process cancels; no profile file is written unless the run finished.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> int:
    from waveseg.adaptation import METHODS
    from waveseg.errors import WaveSegError

    parser = argparse.ArgumentParser(prog="python -m waveseg.adaptation.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", required=True)
    parser.add_argument("--name", required=True, help="profile name")
    parser.add_argument("--structure", default="structure")
    parser.add_argument("--method", default="decoder", choices=METHODS)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--time-budget", type=float, default=30.0)
    parser.add_argument("--window", type=float, nargs=2)
    args = parser.parse_args(argv)
    try:
        from waveseg.adaptation.fewshot import adapt
        from waveseg.adaptation.profiles import save_profile
        from waveseg.predictor import Segmenter

        try:
            with np.load(args.data, allow_pickle=False) as data:
                images, masks = list(data["images"]), list(data["masks"])
        except (OSError, KeyError, ValueError) as exc:
            raise WaveSegError(f"{args.data} must be an .npz with 'images' and 'masks' arrays: {exc}") from None
        seg = Segmenter.from_pretrained(args.model)
        result = adapt(seg, images, masks, structure=args.structure, method=args.method, steps=args.steps,
                       time_budget_s=args.time_budget, window=tuple(args.window) if args.window else None,
                       progress=lambda record: _emit({"event": "progress", **record}))
        # the do-no-harm gate: a profile that validation did not show to help is not written
        path = save_profile(args.name, result.delta, result.metadata) if result.kept else None
        _emit({"event": "done", "profile": None if path is None else str(path), "kept": result.kept,
               "message": result.message, "steps": result.steps, "seconds": round(result.seconds, 2),
               "val_dice_before": result.val_dice_before, "val_dice_after": result.val_dice_after})
        return 0
    except WaveSegError as exc:
        _emit({"event": "error", "message": str(exc)})
        return 2
    except KeyboardInterrupt:
        _emit({"event": "error", "message": "cancelled"})
        return 130


if __name__ == "__main__":
    sys.exit(main())
