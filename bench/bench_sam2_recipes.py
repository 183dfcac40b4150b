"""Which SAM2 recipe learns to follow prompts: held-out metrics of recipe variants, trained in one run.

    python bench/bench_sam2_recipes.py                    # the table in README.md (random init, 256 px, builtin)
    python bench/bench_sam2_recipes.py --variants default,no_clicks --steps 100

Every variant is the default config with a few flags changed, trained from the same random init on the built-in
coins (train split) and evaluated on the held-out split. Prints a markdown table: box / 1 point / 3 points mIoU,
the automatic masks' mean best IoU, and the training time.
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
    "no_clicks": {"correction_clicks": 0},
    "with_mask_prompt": {"prompts": "point,points,box,mask"},
    "loss_dice_ce": {"loss": "dice_ce"},
    "loss_focal_dice_iou": {"loss": "focal_dice_iou"},
    "loss_bce_iou": {"loss": "bce_iou"},
    "box_only": {"prompts": "box", "correction_clicks": 0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    rows = []
    for name in args.variants.split(","):
        flags = {"no_pretrained": True, "image_size": args.image_size, "lr": args.lr, "overlays": 0,
                 "progress": False, **VARIANTS[name]}
        if args.steps:
            flags["steps"] = args.steps
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = run(Sam2TrainConfig(out=out, **flags)).summary
        after = summary["metrics"]["after"]
        rows.append((name, VARIANTS[name], after, time.perf_counter() - start))
        print(f"{name}: {after}", flush=True)

    print("\n| variant | flags | box | 1 point | 3 points | automatic (mean best IoU) | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name, changed, m, seconds in rows:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changed.items()) or "(defaults)"
        print(f"| {name} | {flags} | {m['miou_box']:.2f} | {m['miou_1pt']:.2f} | {m['miou_3pt']:.2f} | "
              f"{m['auto_mean_best_iou']:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
