"""Does our trainer cost anything? Iterations/s of `trainer.d2_ft` (D2Trainer + run-folder hooks: metrics.jsonl,
tqdm, safetensors export, resume checkpoints) vs a plain detectron2 DefaultTrainer on the same cfg and data.

    python bench/bench_d2_trainer.py [--iters 6 --repeats 4 --size 160]
Goal: ratio >= 0.95. Both trainers checkpoint once, at the end (ours also exports model.safetensors there); the
cost of one periodic save is timed separately, since a 300-iteration run saves only every --save-every (100).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_d2_common import bench_cfg, parse, setup, time_variants, timed  # noqa: E402


def main() -> None:
    from detectron2.engine import DefaultTrainer, hooks
    from detectron2.utils.env import seed_all_rng

    from trainer.checkpoint import save_weights
    from trainer.d2_ft.hooks import ExportHook, MetricsHook, ProgressHook
    from trainer.d2_ft.loop import D2Trainer
    from trainer.d2_ft.model import save_spec
    from trainer.runlog import RunDir

    args = parse(__doc__)
    save_every = args.iters
    plan = setup(args, save_every=save_every)
    run = RunDir(plan.run_path)
    logging.getLogger("detectron2").setLevel(logging.WARNING)  # same console cost for both

    def plain() -> float:
        seed_all_rng(0)  # same weights, data order and flips in both trainers: only the trainer differs
        cfg = bench_cfg(plan)
        cfg.OUTPUT_DIR = str(run.path / "plain")
        trainer = DefaultTrainer(cfg)
        trainer.resume_or_load(resume=False)
        return timed(trainer.train)

    def export(trainer: D2Trainer) -> None:  # what the pipeline's ExportHook writes
        save_weights(trainer.unwrapped.state_dict(), run.weights_path)
        save_spec(plan.spec, run.path, trainer.cfg)

    def ours() -> float:
        seed_all_rng(0)
        trainer = D2Trainer(bench_cfg(plan), plan.precision)
        trainer.start(False, plan.init)
        trainer.register_hooks([ExportHook(lambda: export(trainer), save_every), hooks.EvalHook(0, lambda: {}),
                                MetricsHook(run), ProgressHook(enabled=True)])
        return timed(trainer.train)

    ours()  # warm-up: first-call allocations, image cache, imports
    seconds = time_variants({"detectron2 DefaultTrainer": plain, "ours (D2Trainer + hooks)": ours}, args.repeats)
    base = seconds["detectron2 DefaultTrainer"]
    trainer = D2Trainer(bench_cfg(plan), plan.precision)
    save_s = time_variants({"checkpointer": lambda: timed(lambda: trainer.checkpointer.save("bench")),
                            "export": lambda: timed(lambda: export(trainer))}, args.repeats)
    print(f"\n{args.iters} iterations, batch 2, R-{args.depth} GN, {args.size}px, device {args.device}, "
          f"{args.threads} thread(s); median of {args.repeats}")
    for name, s in seconds.items():
        print(f"  {name:28s} {args.iters / s:6.3f} it/s   ratio vs DefaultTrainer {base / s:5.3f}")
    print(f"  one periodic save: detectron2 resume checkpoint {save_s['checkpointer']:.2f} s (both trainers) + "
          f"our safetensors export {save_s['export']:.2f} s = {save_s['export'] / (base / args.iters):.2f} "
          f"iterations' time, i.e. {save_s['export'] / (base / args.iters):.2f}% at --save-every 100")


if __name__ == "__main__":
    main()
