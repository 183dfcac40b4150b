"""Which SAM2 recipe learns to follow prompts: held-out metrics of recipe variants, trained in one run.

    python bench/bench_sam2_recipes.py                    # the table in README.md (random init, 256 px, builtin)
    python bench/bench_sam2_recipes.py --variants default,augment_none --steps 100 --seeds 0,1,2
    python bench/bench_sam2_recipes.py --variants default --seeds 0,1,2    # the default's held-out figures

Every variant is the default config with a few flags changed, trained from the same random init on the built-in
coins' training windows and evaluated on its held-out windows (the photo's other half, other scales). Prints a
markdown table: box / 1 point / 3 points mIoU, the correlation of predicted and true log areas (box), the interactive
figures (mIoU after 1 / 3 / 5 simulated clicks, NoC@85 of 20), the automatic masks' mean best IoU, the training's
images/s and the wall time (training + evaluation), one row per variant and seed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.pipeline import run

warnings.filterwarnings("ignore")

VARIANTS: dict[str, dict] = {
    "default": {},
    "augment_none": {"augment": "none"},
    "augment_flip": {"augment": "flip"},
    "augment_strong": {"augment": "strong"},
    "objects_4_clicks_1": {"max_objects": 4, "correction_clicks": 1},  # the defaults before augmentation
    "clicks_1": {"correction_clicks": 1},
    "objects_4": {"max_objects": 4},
    # how many augmented views of each image the feature cache keeps (issue 31; the default, 0, picks 1-8 from the
    # run's draws per image: 8 for these runs)
    "cache_views_1": {"cache_views": 1},
    "cache_views_2": {"cache_views": 2},
    "steps_600": {"steps": 600},
    "no_clicks": {"correction_clicks": 0},
    "with_mask_prompt": {"prompts": "point,points,box,mask"},
    "loss_dice_ce": {"loss": "dice_ce"},
    "loss_focal_dice_iou": {"loss": "focal_dice_iou"},
    "loss_bce_iou": {"loss": "bce_iou"},
    "box_only": {"prompts": "box", "correction_clicks": 0},
    # where the corrective clicks go (issue 29): all drawn uniformly from the error (sam2's training rule, the
    # default before issue 29), or all at the larger error's centre (the interactive evaluation's rule)
    "centre_clicks_0": {"centre_clicks": 0.0},
    "centre_clicks_1": {"centre_clicks": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0", help="comma list of seeds (init, sampling, augmentation)")
    parser.add_argument("--auto-points-per-side", type=int, default=8, help="0 skips the automatic masks")
    args = parser.parse_args()

    rows = []
    for name in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            flags = {"no_pretrained": True, "image_size": args.image_size, "lr": args.lr, "overlays": 0,
                     "progress": False, "seed": seed, "eval_images": 0,
                     "auto_points_per_side": args.auto_points_per_side, **VARIANTS[name]}
            if args.steps:
                flags["steps"] = args.steps
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                summary = run(Sam2TrainConfig(out=out, **flags)).summary
            after = summary["metrics"]["after"]
            images_per_s = summary["images_per_s"]
            rows.append((name, seed, VARIANTS[name], after, images_per_s, time.perf_counter() - start))
            print(f"{name} seed {seed}: {after}", flush=True)

    print("\n| variant | flags | seed | box | 1 point | 3 points | area corr. (box) | clicks 1 / 3 / 5 | NoC@85 | "
          "automatic | images/s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, seed, changed, m, images_per_s, seconds in rows:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changed.items()) or "(defaults)"
        clicks = " / ".join(f"{m[f'miou_click_{k}']:.2f}" for k in (1, 3, 5))
        print(f"| {name} | {flags} | {seed} | {m['miou_box']:.2f} | {m['miou_1pt']:.2f} | {m['miou_3pt']:.2f} | "
              f"{m['area_corr_box']:.2f} | {clicks} | {m['noc_85']:.1f} | {m['auto_mean_best_iou']:.2f} | "
              f"{images_per_s:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
