"""The ``waveseg`` command line: ``segment``, ``segment3d``, ``batch``, ``adapt``, ``profiles``, ``info``, ``demo``, ``app``, ``serve``.

Errors in the input (files, prompts, models) print one line, ``waveseg: error: ...``, and exit
with status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from waveseg.adaptation import METHODS
from waveseg.errors import WaveSegError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Timer:
    """Print what a slow step is doing, then how long it took (progress on stderr)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        _log(f"{self.what} ...")
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            _log(f"{self.what}: done in {time.perf_counter() - self.start:.2f} s")


def _load_segmenter(model: str, device: str, profile: str | None = None):
    from waveseg.predictor import Segmenter

    with _Timer(f"loading model {model!r}" + (f" with profile {profile!r}" if profile else "")):
        return Segmenter.from_pretrained(model, device=device, profile=profile)


def _segmenter_for_one_image(args: argparse.Namespace):
    """The torch-free ``GraphSegmenter`` when the graph cache holds this model's graphs (a start in
    about a second instead of several: ``waveseg.graph_segmenter``), else ``Segmenter``."""
    if args.profile is None and args.device == "cpu":
        from waveseg.graph_segmenter import GraphSegmenter

        with _Timer(f"loading model {args.model!r} from the graph cache"):
            seg = GraphSegmenter.from_cache(args.model)
        if seg is not None:
            return seg
        _log("the graph cache has no graphs for this model yet: loading it with torch (this call caches them)")
    return _load_segmenter(args.model, args.device, args.profile)


def _remote_segmenter(args: argparse.Namespace):
    """A ``waveseg.remote.RemoteSegmenter`` for ``--server`` (token from --token-file, $WAVESEG_TOKEN or $WAVESEG_TOKEN_FILE)."""
    from waveseg.remote import RemoteSegmenter

    with _Timer(f"connecting to {args.server}"):
        return RemoteSegmenter(args.server, model=args.model, profile=args.profile, token_file=args.token_file)


def _slice_of(volume, index: int | None) -> np.ndarray:
    if not volume.is_volume:
        if index not in (None, 0):
            raise WaveSegError(f"--slice {index} given, but {volume.source} is a 2D image")
        return volume.array
    if index is None:
        raise WaveSegError(f"{volume.source} is a volume of {volume.array.shape[0]} slices; choose one with --slice K")
    if not 0 <= index < volume.array.shape[0]:
        raise WaveSegError(f"--slice {index} is past the end: the volume has slices 0..{volume.array.shape[0] - 1}")
    return volume.array[index]


def _write_outputs(mask2d: np.ndarray, volume, index: int | None, out: Path, overlay: Path | None,
                   image: np.ndarray, box, points, labels, window) -> None:
    from waveseg.io import write_mask
    from waveseg.overlay import save_overlay

    if out.suffix.lower() == ".png":
        from PIL import Image

        from waveseg.atomic import atomic_path

        with atomic_path(out) as tmp:
            Image.fromarray(mask2d.astype(np.uint8) * 255).save(tmp, format="PNG")
    else:
        full = mask2d
        if volume.is_volume:
            full = np.zeros(volume.array.shape, dtype=bool)
            full[index] = mask2d
        write_mask(full, out, volume)
    _log(f"wrote {out} ({int(mask2d.sum())} pixels in the mask)")
    if overlay is not None:
        save_overlay(overlay, image, mask2d, box=box, points=points, labels=labels, window=window)
        _log(f"wrote {overlay}")


def cmd_segment(args: argparse.Namespace) -> int:
    from waveseg.io import read_image

    points = [tuple(p) for p in args.point or []] + [tuple(p) for p in args.negative or []]
    labels = [1] * len(args.point or []) + [0] * len(args.negative or [])
    if not points and args.box is None:
        raise WaveSegError("give a prompt: --box x0 y0 x1 y1 and/or --point x y / --negative x y")
    volume = read_image(args.image)
    image = _slice_of(volume, args.slice)
    window = tuple(args.window) if args.window else None
    if args.server:
        mask = _segment_remote(args, image, window, points, labels)
        _write_outputs(mask, volume, args.slice, Path(args.output), Path(args.overlay) if args.overlay else None,
                       image, args.box, np.array(points) if points else None, labels, window)
        return 0
    seg = _segmenter_for_one_image(args)
    session = seg.session(image, window=window, roi_zoom={"auto": "auto", "on": True, "off": False}[args.roi_zoom])
    with _Timer(f"encoding and segmenting a {image.shape[1]}x{image.shape[0]} slice"):
        mask = session.set_box(args.box) if args.box is not None else None
        for (x, y), label in zip(points, labels):
            mask = session.add_click(x, y, positive=bool(label))
    _log(f"predicted IoU {session.state.score:.3f}")
    if not mask.any():
        _log("warning: the mask is empty; the file is written but holds no segment voxels")
    _write_outputs(mask, volume, args.slice, Path(args.output), Path(args.overlay) if args.overlay else None,
                   image, args.box, np.array(points) if points else None, labels, window)
    return 0


def _segment_remote(args: argparse.Namespace, image: np.ndarray, window, points, labels) -> np.ndarray:
    """The slice as a one-slice volume session on the server: the box, then each click on it
    (the server's volume session answers, which does not zoom on small boxes as ``segment`` does locally)."""
    if image.ndim != 2:
        raise WaveSegError("--server segments grey-level slices; this image has colour channels")
    session = _remote_segmenter(args).volume_session(image[None], window=window)
    try:
        with _Timer(f"segmenting a {image.shape[1]}x{image.shape[0]} slice on the server"):
            if args.box is not None:
                session.segment_slice(0, 0, box=args.box)
            for (x, y), label in zip(points, labels):
                session.click((x, y, 0), positive=bool(label), repropagate=False)
        return session.mask[0].copy()
    finally:
        session.close()


def cmd_segment3d(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from waveseg.io import read_image, write_mask

    if args.box3d is None and not args.point:
        raise WaveSegError("give a prompt: --box3d i0 j0 k0 i1 j1 k1 and/or --point i j k (voxel coordinates)")
    volume = read_image(args.image)
    if not volume.is_volume:
        raise WaveSegError(f"{args.image} is a 2D image; use 'waveseg segment' for slices")
    seg = _remote_segmenter(args) if args.server else _load_segmenter(args.model, args.device, args.profile)
    session = seg.volume_session(volume.array, spacing=volume.spacing, window=tuple(args.window) if args.window else None)
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[args.axis]
    with tqdm(total=volume.array.shape[axis], desc="propagating", unit="slice", file=sys.stderr) as bar:
        def progress(done: int, planned: int) -> None:
            bar.total = planned
            bar.n = done
            bar.refresh()

        if args.box3d is not None:
            report = session.box3d(args.box3d[:3], args.box3d[3:], axis=axis, progress=progress)
            _log(f"propagated to {len(report.written)} slices; stopped: {report.stopped}")
        for ijk in args.point or []:
            report = session.click(ijk, positive=True, axis=axis, progress=progress)
        for ijk in args.negative or []:
            report = session.click(ijk, positive=False, axis=axis, progress=progress)
    session.close()
    mask = session.mask
    if not mask.any():
        _log("warning: the segmentation is empty; an empty but valid file is written")
    write_mask(mask, args.output, volume, segment_name=args.name)
    _log(f"wrote {args.output} ({int(mask.sum())} voxels in {int(mask.any(axis=(1, 2)).sum())} axial slices)")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from waveseg.batch import cmd_batch as run_batch_file

    return run_batch_file(args)


def cmd_adapt(args: argparse.Namespace) -> int:
    from waveseg.adaptation.fewshot import adapt
    from waveseg.adaptation.profiles import save_profile
    from waveseg.io import read_image

    volume, labels = read_image(args.image), read_image(args.labels)
    if labels.array.shape != volume.array.shape:
        raise WaveSegError(f"labels {labels.array.shape} and image {volume.array.shape} must have the same shape")
    if not volume.is_volume:
        raise WaveSegError("adapt reads a volume and its label map; give --slices K ... of annotated slices")
    for k in args.slices:
        _slice_of(volume, k)
    masks = [labels.array[k] == args.label_value if args.label_value is not None else labels.array[k] > 0 for k in args.slices]
    seg = _load_segmenter(args.model, args.device, args.profile)

    def progress(record: dict) -> None:
        _log(f"{record['phase']}, step {record['step']}: loss {record['loss']:.4f} ({100 * record['fraction']:.0f} % of the budget)")

    result = adapt(seg, [volume.array[k] for k in args.slices], masks, structure=args.structure, method=args.method,
                   window=tuple(args.window) if args.window else None, steps=args.steps, time_budget_s=args.time_budget,
                   progress=progress)
    print(result.message)
    if not result.kept:  # the do-no-harm gate: nothing is written, the base model stays
        return 0
    path = save_profile(args.name, result.delta, result.metadata)
    print(f"profile {args.name!r} written to {path} ({result.seconds:.0f} s); use it with --profile {args.name}")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from waveseg.adaptation import profiles

    if args.action == "list":
        for p in profiles.list_profiles():
            print(f"{p['name']}: {p.get('structure')} on {p.get('base_model')}, {p.get('slices')} slices, "
                  f"Dice {p.get('val_dice_before')} -> {p.get('val_dice_after')}, {p.get('created')}")
    elif args.action == "delete":
        profiles.delete_profile(args.target)
    elif args.action == "export":
        print(profiles.export_profile(args.target, args.destination or "."))
    else:
        print(profiles.import_profile(args.target, args.destination))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from waveseg.io import describe, read_image

    print(describe(read_image(args.image)))
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    try:
        from waveseg.app.main_window import main as app_main
    except ImportError as exc:
        raise WaveSegError(f"the desktop app needs the [app] extra ({exc.name} is missing): pip install 'waveseg[app]'") from None
    return app_main(args.image, model=args.model, device=args.device, profile=args.profile, server=args.server,
                    token_file=args.token_file)


def cmd_demo(args: argparse.Namespace) -> int:
    from waveseg.demo import run_demo

    seg = _load_segmenter(args.model, args.device, args.profile)
    with _Timer("box, corrective click and propagation on the demo volume (Colin27 T1, 16 axial slices)"):
        run_demo(seg, Path(args.output_dir), log=print)
    _log(f"wrote {Path(args.output_dir) / 'demo_mask.nii.gz'} and demo_mask.seg.nrrd (open it in 3D Slicer over "
         "WaveSegSlicer/waveseg/data/colin27_t1_axial.nii.gz)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from waveseg.server.main import serve

    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waveseg", description="Interactive promptable medical image segmentation.")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default="default", help="model name (default, litemedsam, wave-gms, hrmedseg-lite) or path")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--profile", help="adaptation profile to apply (see 'waveseg profiles list'; with --server, one of the server's)")

    def server_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=os.environ.get("WAVESEG_SERVER"),
                       help="URL of a WaveSeg server (waveseg serve) to run the model on, e.g. https://seg.example.org:8765 "
                            "(default $WAVESEG_SERVER); --model and --profile then name the server's")
        p.add_argument("--token-file", help="file whose first line is the server's token (default $WAVESEG_TOKEN or $WAVESEG_TOKEN_FILE)")

    seg = sub.add_parser("segment", help="segment one slice from a box and/or clicks",
                         description="Segment one slice of IMAGE. Coordinates are pixels of that slice: "
                                     "x = column, y = row, 0-based.")
    seg.add_argument("image", help="NIfTI, NRRD, MHA, PNG, TIFF, DICOM file, or a DICOM series folder")
    seg.add_argument("--slice", type=int, help="slice index k of a volume (axis 0 of the (Z, Y, X) array)")
    seg.add_argument("--box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="box prompt in pixels")
    seg.add_argument("--point", type=float, nargs=2, action="append", metavar=("X", "Y"), help="foreground click (repeatable)")
    seg.add_argument("--negative", type=float, nargs=2, action="append", metavar=("X", "Y"), help="background click (repeatable)")
    seg.add_argument("--window", type=float, nargs=2, metavar=("LO", "HI"), help="intensity window, e.g. -160 240 for CT")
    seg.add_argument("--roi-zoom", choices=("auto", "on", "off"), default="auto",
                     help="re-encode a crop around small targets (auto: when the box is under 25 %% of the image; on: whenever the box or mask gives the extent)")
    seg.add_argument("-o", "--output", required=True, help="mask file: .nii.gz, .nrrd, .seg.nrrd (image geometry) or .png")
    seg.add_argument("--overlay", help="also write a PNG overlay of the slice, mask and prompts")
    model_options(seg)
    server_options(seg)
    seg.set_defaults(func=cmd_segment)

    seg3d = sub.add_parser("segment3d", help="segment a structure through a volume from a 3D box and/or clicks",
                           description="Voxel coordinates are (i, j, k) = (column, row, slice) of the (Z, Y, X) array, 0-based.")
    seg3d.add_argument("image", help="a 3D NIfTI, NRRD, MHA file or a DICOM series folder")
    seg3d.add_argument("--box3d", type=float, nargs=6, metavar=("I0", "J0", "K0", "I1", "J1", "K1"),
                       help="two opposite voxel corners; the middle slice is segmented and propagated")
    seg3d.add_argument("--point", type=float, nargs=3, action="append", metavar=("I", "J", "K"), help="foreground click (repeatable)")
    seg3d.add_argument("--negative", type=float, nargs=3, action="append", metavar=("I", "J", "K"), help="background click (repeatable)")
    seg3d.add_argument("--axis", choices=("axial", "coronal", "sagittal"), default="axial", help="slice orientation to prompt and propagate")
    seg3d.add_argument("--window", type=float, nargs=2, metavar=("LO", "HI"), help="intensity window, e.g. -160 240 for CT")
    seg3d.add_argument("--name", default="Segment_1", help="segment name in a .seg.nrrd output")
    seg3d.add_argument("-o", "--output", required=True, help=".nii.gz, .nrrd or .seg.nrrd on the image's grid")
    model_options(seg3d)
    server_options(seg3d)
    seg3d.set_defaults(func=cmd_segment3d)

    ad = sub.add_parser("adapt", help="adapt the model to a structure from a few annotated slices (a named profile)",
                        description="Fine-tune on annotated axial slices of IMAGE (GaLore by default) and save a profile.")
    ad.add_argument("image")
    ad.add_argument("--labels", required=True, help="label map on the image's grid")
    ad.add_argument("--label-value", type=int, help="label value of the structure (default: any non-zero)")
    ad.add_argument("--slices", type=int, nargs="+", required=True, help="indices k of the annotated axial slices")
    ad.add_argument("--name", required=True, help="profile name")
    ad.add_argument("--structure", default="structure")
    ad.add_argument("--method", choices=METHODS, default="decoder")
    ad.add_argument("--steps", type=int, default=400, help="at most this many steps per training run")
    ad.add_argument("--time-budget", type=float, default=30.0, help="seconds for the whole run, validation included (default 30)")
    ad.add_argument("--window", type=float, nargs=2, metavar=("LO", "HI"))
    model_options(ad)
    ad.set_defaults(func=cmd_adapt)

    prof = sub.add_parser("profiles", help="list, delete, export or import adaptation profiles")
    prof.add_argument("action", choices=("list", "delete", "export", "import"))
    prof.add_argument("target", nargs="?", help="profile name (delete/export) or file (import)")
    prof.add_argument("destination", nargs="?", help="export: folder or file; import: new name")
    prof.set_defaults(func=cmd_profiles)

    info = sub.add_parser("info", help="print an image's shape, dtype and geometry")
    info.add_argument("image")
    info.set_defaults(func=cmd_info)

    app = sub.add_parser("app", help="open the desktop app (needs the [app] extra: Qt.py, PySide6, VTK)")
    app.add_argument("image", nargs="?", help="image to open (NIfTI, NRRD, MHA, DICOM series folder)")
    model_options(app)
    server_options(app)
    app.set_defaults(func=cmd_app)

    batch = sub.add_parser("batch", help="segment many images or volumes from a batch file of prompts (JSON or CSV)",
                           description="One item per image or volume: 'segment' (box, x y points) or 'segment3d' (box3d, i j k "
                                       "points) in one process; a failing item is reported and the rest go on (docs/cli.md).")
    batch.add_argument("batch", help="a .json (list of items) or .csv (a header row of keys) batch file")
    model_options(batch)
    batch.set_defaults(func=cmd_batch)

    demo = sub.add_parser("demo", help="box, corrective click and propagation on the embedded sample (Colin27 brain MRI): "
                                       "each step's Dice and overlay PNG, and the mask")
    demo.add_argument("-o", "--output-dir", default="waveseg-demo", help="folder for the outputs (default: waveseg-demo)")
    model_options(demo)
    demo.set_defaults(func=cmd_demo)

    from waveseg.server.main import add_arguments as server_arguments  # argparse only: no FastAPI imported here

    serve = sub.add_parser("serve", help="run the site server that Slicer and app users connect to (needs the [server] extra)",
                           description="Serve WaveSeg models over HTTP (docs/server.md): per-user volume sessions, bearer tokens, TLS.")
    server_arguments(serve)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WaveSegError as exc:
        print(f"waveseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("waveseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
