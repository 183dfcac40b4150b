"""`python -m trainer export-onnx MODEL`: a SAM2 model's prompt encoder + mask decoder as MODEL/onnx/decoder.onnx.

The graph is the decoder's per-prompt work: it decodes a click or a box wherever onnxruntime runs, from an image's
features after their image-side part (onnx_export.image_inputs, once per image; trainer/sam2_model/onnx_export.py
says what goes in and out); `push` exports it into every SAM2 repo. The export is checked against sam2's own decoder
before it is kept. The app runs this command in a child process to export a model without a repo `onnx/` folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-onnx", help="export a SAM2 model's prompt encoder + mask decoder to ONNX (MODEL/onnx/decoder.onnx)",
        description="Export the prompt encoder and mask decoder of the SAM2 model in MODEL (a run folder or a "
                    "pulled repo) to ONNX for onnxruntime / onnxruntime-web, and check it against PyTorch.")
    parser.add_argument("model", metavar="MODEL", help="a SAM2 run folder or model folder")
    parser.add_argument("--out", default=None, help="the .onnx file (default: MODEL/onnx/decoder.onnx)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from trainer.checkpoint import CheckpointError
    from trainer.sam2_model.model import load_folder
    from trainer.sam2_model.onnx_export import DECODER_NAME, MAX_ABS_DIFF, ONNX_DIR, ExportError, export_decoder

    folder = Path(args.model)
    try:
        model, spec = load_folder(folder)
        path = export_decoder(model, args.out or folder / ONNX_DIR / DECODER_NAME)  # checked before it is kept
    except (CheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported: {path} ({path.stat().st_size / 2**20:.1f} MiB; sam2.1 {spec.size} at {spec.image_size} px; "
          f"its logits within {MAX_ABS_DIFF:g} of PyTorch's)")
    return 0
