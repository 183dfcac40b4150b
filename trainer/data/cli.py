"""`python -m trainer validate-data PATH` and `python -m trainer make-sample-data OUT_DIR`."""

from __future__ import annotations

import argparse

from trainer.data.readers import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    validate = subparsers.add_parser(
        "validate-data", help="check a dataset and list every problem",
        description="Decode every image and mask and report each problem as '<file>: <problem>'. "
                    "Exit code 0 when clean, 1 when anything is wrong.")
    validate.add_argument("path", help="dataset folder or annotation file, a Hugging Face Hub id, 'builtin', a clip "
                                       "folder (JPEGImages/ or videos/ + Annotations/) or 'builtin-clips'")
    validate.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                          help="input format (default: detected from the layout)")
    validate.set_defaults(func=run_validate)

    sample = subparsers.add_parser(
        "make-sample-data", help="write the built-in sample dataset (COCO) to a folder",
        description="Write the built-in dataset (tiles of scikit-image's coins photo, one mask per coin) as "
                    "OUT_DIR/annotations.json + OUT_DIR/images/, to see the COCO layout the trainers read.")
    sample.add_argument("out_dir")
    sample.set_defaults(func=run_make_sample_data)


def run_validate(args: argparse.Namespace) -> int:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from trainer.data.validate import check

    path, format = args.path, args.format
    from trainer.data import clips

    if path == "builtin-clips" or clips.detect_clip_format(path):  # video clips: trainer sam2-video's data
        _, report = clips.check_clips(clips.builtin_clips_path() if path == "builtin-clips" else path)
        for problem in report.problems:
            print(problem)
        print(clips.clip_summary(report))
        return 0 if report.ok else 1
    if path == "builtin":
        from trainer.data.builtin import builtin_dataset_path

        path, format = builtin_dataset_path(), "coco"
    _, report = check(path, format)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 0 if report.ok else 1


def run_make_sample_data(args: argparse.Namespace) -> int:
    # lazy: a command module is imported by `python -m trainer --help`, which must not pay for torch
    from trainer.data.builtin import write_builtin
    from trainer.data.validate import check

    out = write_builtin(args.out_dir)
    _, report = check(out, "coco")
    print(f"wrote {out}/annotations.json and {out}/images/ ({report.summary()})")
    return 0 if report.ok else 1
