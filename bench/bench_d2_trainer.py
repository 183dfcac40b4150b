"""Does our trainer cost anything? Iterations/s of `trainer.d2_ft` (D2Trainer + run-folder hooks: metrics.jsonl,
tqdm, safetensors export, resume checkpoints) vs a plain detectron2 DefaultTrainer on the same cfg and data.

    python bench/bench_d2_trainer.py [--iters 12 --repeats 3 --size 192]
Goal: ratio >= 0.95.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_d2_common import bench_cfg, parse, setup, time_variants, timed  # noqa: E402


def main() -> None:
    from detectron2.engine import DefaultTrainer, hooks

    from trainer.checkpoint import save_weights
    from trainer.d2_ft.hooks import ExportHook, MetricsHook, ProgressHook
    from trainer.d2_ft.loop import D2Trainer
    from trainer.d2_ft.model import save_spec
    from trainer.runlog import RunDir

    args = parse(__doc__)
    save_every = max(args.iters // 2, 1)  # both trainers checkpoint twice per run
    plan = setup(args, save_every=save_every)
    run = RunDir(plan.run_path)
    logging.getLogger("detectron2").setLevel(logging.WARNING)  # same console cost for both

    def plain() -> float:
        cfg = bench_cfg(plan)
        cfg.OUTPUT_DIR = str(run.path / "plain")
        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=False)
        return timed(trainer.train)

    def ours() -> float:
        cfg = bench_cfg(plan)
        trainer = D2Trainer(cfg, plan.precision)
        trainer.start(False, plan.init)

        def export() -> None:
            save_weights(trainer.unwrapped.state_dict(), run.weights_path)
            save_spec(plan.spec, run.path, cfg)

        trainer.register_hooks([ExportHook(export, save_every), hooks.EvalHook(0, lambda: {}),
                                MetricsHook(run), ProgressHook(enabled=True)])
        return timed(trainer.train)

    ours()  # warm-up: first-call allocations, image cache, imports
    seconds = time_variants({"detectron2 DefaultTrainer": plain, "ours (D2Trainer + hooks)": ours}, args.repeats)
    base = seconds["detectron2 DefaultTrainer"]
    print(f"\n{args.iters} iterations, batch 2, R-{args.depth} GN, {args.size}px, device {args.device}, "
          f"{args.threads} thread(s); median of {args.repeats}")
    for name, s in seconds.items():
        print(f"  {name:28s} {args.iters / s:6.3f} it/s   ratio vs DefaultTrainer {base / s:5.3f}")


if __name__ == "__main__":
    main()
