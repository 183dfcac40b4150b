"""`python -m trainer push RUN_DIR --repo user/name|file:PATH` and `python -m trainer pull REF`."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    push = subparsers.add_parser(
        "push", help="publish a run folder as a model repo (Hub or local hub) with a model card",
        description="Stage RUN_DIR as a model repo (weights, configs, metrics, curves, overlays, README.md card; "
                    "never state/) and push it. Hub auth: HF_TOKEN or `hf auth login` (never a flag).")
    push.add_argument("run_dir", metavar="RUN_DIR")
    push.add_argument("--repo", required=True,
                      help="user/name (Hub), file:PATH (a folder), or local:user/name (the local hub)")
    push.add_argument("--private", action="store_true", help="create the Hub repo as private")
    push.add_argument("--revision", default=None, help="branch to push to (created if missing); default main")
    push.set_defaults(func=push_main)

    pull = subparsers.add_parser("pull", help="download/resolve a model repo and print its local folder",
                                 description="REF: Hub id, local hub name (user/name), a folder, or file:PATH.")
    pull.add_argument("ref", metavar="REF")
    pull.add_argument("--kind", choices=["sam2", "sam2-video", "detectron2", "semantic"], default=None, help="fail unless the model is this kind")
    pull.add_argument("--revision", default=None)
    pull.set_defaults(func=pull_main)


def push_main(args: argparse.Namespace) -> int:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from hub_cards.kinds import HubError
    from hub_cards.repo import push_run

    try:
        print(f"pushed: {push_run(args.run_dir, args.repo, private=args.private, revision=args.revision)}")
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def pull_main(args: argparse.Namespace) -> int:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from hub_cards.kinds import HubError
    from hub_cards.fetch import pull

    try:
        print(pull(args.ref, kind=args.kind, revision=args.revision))
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
