"""The one CLI wrapper every trainer command shares: flags from its config dataclass, --resume from the saved
config.yaml, the same error handling, a printed report, and --push-to when the run finished.

A trainer module registers itself with

    register_trainer(subparsers, TrainerCommand(name="sam2", help=..., description=...,
                     config="trainer.sam2_ft.config:Sam2TrainConfig", run="trainer.sam2_ft.pipeline:run",
                     report=print_report))

`config` and `run` are "module:attr" strings so that `python -m trainer --help` imports no torch.
The config class is a dataclass with `validate()`, `to_dict()` (holding "kind") and `from_dict()`; `run(cfg)`
returns an object with `path`, `summary` (empty on ranks other than 0) and optionally `status`
("finished" | "paused" | "stopped").
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trainer import options


def load(ref: str) -> Any:
    """'package.module:attr' -> the attribute (imported on demand)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class TrainerCommand:
    name: str
    help: str
    description: str
    config: str  # "module:ConfigClass"
    run: str  # "module:run"
    report: Callable[[Any, Any], None]  # (result, cfg) -> prints the run's outcome
    kind: str | None = None  # the "kind" a resumable config.yaml must hold (default: name)
    aliases: dict[str, list[str]] | None = None  # extra flag names per field, e.g. {"num_workers": ["--num-gpus"]}


def register_trainer(subparsers, command: TrainerCommand) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(command.name, help=command.help, description=command.description)
    options.add_arguments(parser, load(command.config), command.aliases)
    parser.set_defaults(func=lambda args: run_trainer(args, command))
    return parser


def saved_config(args: argparse.Namespace, config_cls: type, kind: str) -> Any:
    """The config a run was started with (RUN_DIR/config.yaml), for --resume."""
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from trainer.runlog import RunDir

    if not args.out:
        raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
    run = RunDir(args.out)
    if not run.config_path.is_file():
        raise FileNotFoundError(f"{run.config_path}: not found; nothing to resume")
    data = run.read_config() or {}
    if data.get("kind", kind) != kind:
        raise ValueError(f"{run.config_path}: a {data.get('kind')!r} run, not a {kind} run")
    saved = config_cls.from_dict(data)
    if hasattr(saved, "stop_after"):
        saved.stop_after = 0  # a pause applies to the session that asked for it
    return saved


def run_trainer(args: argparse.Namespace, command: TrainerCommand) -> int:
    """Parse -> run -> report -> push. Exit codes: 0 done (or paused), 1 stopped by bad steps, 2 bad input."""
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from trainer.checkpoint import CheckpointError
    from trainer.precision import PrecisionError

    config_cls = load(command.config)
    try:
        base = saved_config(args, config_cls, command.kind or command.name) if args.resume else None
        cfg = options.from_args(config_cls, args, base).validate()
        result = load(command.run)(cfg)
    except (CheckpointError, PrecisionError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not result.summary:  # not rank 0: that process reports and pushes
        return 0
    command.report(result, cfg)
    status = getattr(result, "status", "finished")
    if status == "stopped":
        return 1
    if status == "finished" and getattr(cfg, "push_to", None):
        return push(result.path, cfg.push_to)
    return 0


def push(run_path: Path, target: str) -> int:
    try:
        # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
        from hub_cards.kinds import HubError
        from hub_cards.repo import push_run  # lazy: only runs that push need the Hub code
    except ImportError as err:
        print(f"error: the run is saved in {run_path} but cannot be pushed: {err}", file=sys.stderr)
        return 2
    try:
        print(f"pushed: {push_run(run_path, target)}")
    except HubError as err:
        print(f"error: the run is saved in {run_path} but the push failed: {err}", file=sys.stderr)
        return 2
    return 0
