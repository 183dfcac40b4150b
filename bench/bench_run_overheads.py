"""Where a run's time goes besides its training steps (issue 30): the evaluations around them.

    python bench/bench_run_overheads.py sam2-clicks [--images 8]   # one SAM2 evaluation with and without clicks
    python bench/bench_run_overheads.py d2 [--steps 10]            # the quickstart's detectron2 run, split in parts

`sam2-clicks`: the random-init sam2.1 tiny at 256 px (the learning guard's and the quickstart's model before
training) evaluated on the first built-in held-out windows, with --eval-clicks 0 and 20 (the click simulation
runs all 20 clicks on a model that never reaches 90 % IoU). `d2`: the quickstart's detectron2 recipe for a few
steps, wall and CPU seconds of its COCO evaluations (before and after) and of the whole run, then cProfile's
heaviest calls. CPU seconds are this process's (all its threads): the fairer figure on a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")


@contextmanager
def timed(label: str):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    print(f"{label}: wall {time.perf_counter() - wall:.1f} s, CPU {time.process_time() - cpu:.1f} s", flush=True)


def sam2_clicks(images: int) -> None:
    import torch

    from trainer.data import load_dataset
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.evaluate import evaluate
    from trainer.sam2_ft.pipeline import build

    cfg = Sam2TrainConfig(no_pretrained=True, image_size=256, seed=0)
    val = load_dataset("builtin").split(cfg.val_fraction, cfg.seed)[1]
    model = build(cfg, None, torch.device("cpu"))
    for clicks in (0, 20):
        with timed(f"evaluation of {images} held-out windows, --eval-clicks {clicks}"):
            evaluate(model, val, images, 0, cfg.seed, False, None, clicks)


def d2(steps: int) -> None:
    import trainer.d2_ft.pipeline as pipeline
    from trainer.d2_ft.config import D2TrainConfig

    evaluate = pipeline._evaluate

    def timed_evaluate(*args, **kwargs):
        with timed("COCO evaluation"):
            return evaluate(*args, **kwargs)

    pipeline._evaluate = timed_evaluate
    profile = cProfile.Profile()
    with tempfile.TemporaryDirectory() as out, timed(f"whole run, {steps} steps"):
        profile.enable()
        pipeline.run(D2TrainConfig(no_pretrained=True, depth=18, min_size=256, lr=0.01, steps=steps,
                                   out=f"{out}/run", progress=False))
        profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("sam2-clicks", "d2"))
    parser.add_argument("--images", type=int, default=8, help="sam2-clicks: held-out windows evaluated")
    parser.add_argument("--steps", type=int, default=10, help="d2: training steps")
    args = parser.parse_args()
    sam2_clicks(args.images) if args.what == "sam2-clicks" else d2(args.steps)


if __name__ == "__main__":
    main()
