"""fp32 vs bf16 autocast for Mask R-CNN training and inference on this device (fp16 AMP needs a GPU: detectron2's
AMPTrainer asserts CUDA, and CPU autocast to fp16 is not a supported training mode).

    python bench/bench_d2_precision.py [--iters 4 --repeats 4 --size 160] [--device cuda --precisions fp32,fp16,bf16]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_d2_common import bench_cfg, parse, setup, time_variants, timed  # noqa: E402


def main() -> None:

    from detectron2.utils.env import seed_all_rng

    from trainer.d2_ft.loop import D2Trainer
    from trainer.d2_ft.model import InstanceSegmenter
    from trainer.data.synthetic import make_scene
    from trainer.precision import resolve

    args = parse(__doc__, iters=4)
    names = ["fp32", "bf16"] if args.device == "cpu" else ["fp32", "fp16", "bf16"]
    plan = setup(args, save_every=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resolve() warns that bf16 on CPU is slow: that is what we measure
        precisions = {name: resolve(name, args.device) for name in names}
    image = make_scene(5, size=args.size).image

    def train(precision):
        def go() -> float:
            seed_all_rng(0)  # same weights and data order for every precision
            return timed(D2Trainer(bench_cfg(plan), precision).train)
        return go

    def infer(precision):
        seed_all_rng(0)
        trainer = D2Trainer(bench_cfg(plan), precision)
        segmenter = InstanceSegmenter(trainer.unwrapped, trainer.cfg, plan.spec.class_names, precision)
        segmenter.predict(image, 0.0)  # warm-up
        return lambda: timed(lambda: [segmenter.predict(image, 0.0) for _ in range(args.iters)])

    train_s = time_variants({n: train(p) for n, p in precisions.items()}, args.repeats)
    infer_s = time_variants({n: infer(p) for n, p in precisions.items()}, args.repeats)
    print(f"\n{args.iters} iterations/images, batch 2, R-{args.depth} GN, {args.size}px, device {args.device}, "
          f"{args.threads} thread(s); median of {args.repeats}")
    for name in names:
        print(f"  {name}: train {args.iters / train_s[name]:6.3f} it/s (x{train_s['fp32'] / train_s[name]:.2f} vs fp32)"
              f"   inference {args.iters / infer_s[name]:6.3f} img/s (x{infer_s['fp32'] / infer_s[name]:.2f})")


if __name__ == "__main__":
    main()
