"""`python -m trainer <command>`: each command lives in its own module and registers itself here.

A command module exposes `register(subparsers)`, which adds its parser and sets `func=<callable(args) -> int>`.
Heavy imports (torch, sam2, detectron2) stay inside the command functions so `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from trainer import quiet
from trainer.data.sample import DataError

COMMAND_MODULES = (
    "trainer.data.cli",        # validate-data, make-sample-data
    "trainer.sam2_ft.cli",     # sam2
    "trainer.d2_ft.cli",       # detectron2
    "trainer.semantic.cli",    # semantic
    "trainer.video.cli",       # sam2-video
    "trainer.federated.cli",   # federated
    "trainer.evaluate",        # evaluate
    "trainer.export_onnx",     # export-onnx
    "trainer.quickstart",      # quickstart
    "hub_cards.cli",           # push, pull
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Fine-tune SAM2 and Detectron2 on your segmentation data; push the results to the Hub.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a real missing dependency, not a command not yet written
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet.install()  # before torch / sam2 / detectron2 are imported: their import-time warnings are known ones
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
