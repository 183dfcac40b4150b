"""Peak resident memory of a 1024-px `trainer sam2-video` run over the built-in 16 training clips x 8 frames, with the
engine's bounded feature cache (issue 26: goal <= 4 GB; unbounded, 16 clips x 4 views x 8 frames x 42 MiB would
reach ~21 GiB).

    PYTHONPATH=. python bench/bench_video_rss.py [--steps 8] [--cache-budget 2048] [--image-size 1024]

The run is `python -m trainer sam2-video` in a fresh process (random-init sam2.1 tiny, no evaluation, batch 1 clip
per step, so each step draws a new view of 8 frames until the 4 views of each clip repeat); its peak RSS is the
child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time


def peak_rss_run(steps: int, budget: float, size: int, frames: int) -> tuple[float, float]:
    """(peak RSS in GiB, wall seconds) of one run in a child process."""
    with tempfile.TemporaryDirectory(prefix="segkit-bench-") as out:
        argv = [sys.executable, "-m", "trainer", "sam2-video", "--data", "builtin", "--no-pretrained",
                "--image-size", str(size), "--frames", str(frames), "--steps", str(steps), "--no-eval",
                "--overlays", "0", "--no-progress", "--cache-budget", str(budget), "--save-every", "0",
                "--device", "cpu", "--out", f"{out}/run"]
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, wall  # ru_maxrss: KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="steps (1 clip each): 8 new views fill 2 GiB")
    parser.add_argument("--cache-budget", type=float, default=2048.0, help="MiB (the trainer's default)")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    rss, wall = peak_rss_run(args.steps, args.cache_budget, args.image_size, args.frames)
    per_view = 42.0 * (args.image_size / 1024) ** 2 * args.frames  # MiB of float16 FPN levels per clip view
    print(f"sam2-video {args.image_size} px, {args.frames} frames, {args.steps} steps, --cache-budget "
          f"{args.cache_budget:g} MiB: peak RSS {rss:.2f} GiB ({wall:.0f} s); the steps drew up to "
          f"{args.steps * per_view / 1024:.1f} GiB of features, the cache keeps <= {args.cache_budget / 1024:.1f}")


if __name__ == "__main__":
    main()
