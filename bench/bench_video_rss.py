"""Peak resident memory of the video trainer's feature cache at 1024 px over the built-in 16 training clips x 8
frames (issue 26: goal <= 4 GB; before, `sam2-video` kept every frame view: 16 clips x 4 views x 8 frames x 42 MiB
= ~21 GiB).

    PYTHONPATH=. python bench/bench_video_rss.py cache [--cache-budget 2048]   # the cache alone (any machine)
    PYTHONPATH=. python bench/bench_video_rss.py run [--steps 64]               # a whole run (needs a big machine)

cache: the engine's FeatureCache as `trainer sam2-video` builds it (run_cache: --cache-budget MiB of RAM), fed the
frame features a run draws (sam2.1 tiny's FPN levels at 1024 px, 42 MiB per frame in float16) for every view of
every clip, one clip (8 frames) per step, each frame's key its content digest; peak RSS of that process.
run: `python -m trainer sam2-video` at 1024 px (random-init sam2.1 tiny, no evaluation, batch 1 clip) in a child
process; its peak RSS (ru_maxrss). A 1024-px step's own activations are several GiB beyond the cache (a 256-px
8-frame step peaks 2.6 GiB above the resident model, bench_video.py), so this mode wants a machine with room.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from trainer.engine.feature_cache import FeatureCache, image_key
from trainer.engine.memory import tune_malloc

CLIPS, VIEWS, FRAMES = 16, 4, 8
FPN_SHAPES = [(256, 256, 256), (256, 128, 128), (256, 64, 64)]  # sam2.1 tiny's backbone_fpn at 1024 px


def peak_rss_gib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def cache_only(budget_mib: float) -> None:
    tune_malloc(1024)  # as the trainer's loop does on a CPU at this size
    cache = FeatureCache("cpu", budget_bytes=int(budget_mib * 2**20))  # what run_cache builds without --cache-dir
    start, base = time.perf_counter(), peak_rss_gib()
    for view in range(VIEWS):
        for clip in range(CLIPS):
            keys = [image_key(np.full((64, 64, 3), [clip, view, t], np.uint8)) for t in range(FRAMES)]
            cache.get_batch(keys, lambda rows: {"backbone_fpn": [torch.ones(len(rows), *s) for s in FPN_SHAPES]})
    drawn = CLIPS * VIEWS * FRAMES * sum(np.prod(s) for s in FPN_SHAPES) * 2 / 2**30
    print(f"feature cache, --cache-budget {budget_mib:g} MiB: {CLIPS} clips x {VIEWS} views x {FRAMES} frames at "
          f"1024 px drawn ({drawn:.1f} GiB of float16 features): peak RSS {peak_rss_gib():.2f} GiB (process "
          f"{base:.2f} GiB before), cache holds {cache.nbytes / 2**30:.2f} GiB in {len(cache)} entries, "
          f"{cache.evictions} evicted, {time.perf_counter() - start:.0f} s")


def whole_run(steps: int, budget_mib: float) -> None:
    with tempfile.TemporaryDirectory(prefix="segkit-bench-") as out:
        argv = [sys.executable, "-m", "trainer", "sam2-video", "--data", "builtin", "--no-pretrained",
                "--image-size", "1024", "--frames", str(FRAMES), "--steps", str(steps), "--no-eval", "--overlays",
                "0", "--no-progress", "--cache-budget", str(budget_mib), "--save-every", "0", "--out", f"{out}/run"]
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    print(f"sam2-video 1024 px, {FRAMES} frames, {steps} steps, --cache-budget {budget_mib:g} MiB: peak RSS "
          f"{peak_rss_gib(resource.RUSAGE_CHILDREN):.2f} GiB ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("cache", "run"))
    parser.add_argument("--cache-budget", type=float, default=2048.0, help="MiB (the trainer's default)")
    parser.add_argument("--steps", type=int, default=CLIPS * VIEWS, help="run: steps of one clip each")
    args = parser.parse_args()
    cache_only(args.cache_budget) if args.mode == "cache" else whole_run(args.steps, args.cache_budget)


if __name__ == "__main__":
    main()
