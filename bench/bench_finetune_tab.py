"""The Fine-tune tab: does a training job slow down other visitors' clicks, and how long does a job take?

    python bench/bench_finetune_tab.py [--image-size 1024] [--masks 20] [--clicks 20] [--steps 0] [--click-gap 0]

Through gradio_client, in one run: visitor A adds --masks masks (box prompts on synthetic scenes) and starts /train;
visitor B's /segment clicks (cached embedding) are timed while nothing trains (idle) and while A's job runs, back to
back or --click-gap seconds apart (a visitor who looks at each mask).
Random-init sam2.1 tiny (offline), so the mIoU figures only show the wiring; the latencies and times are real.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
warnings.filterwarnings("ignore")
BASE = "facebook/sam2.1-hiera-tiny"


def scenes(folder: Path, masks: int, size: int) -> list[tuple[str, list[float]]]:
    """(image path, box) prompts: up to 2 objects per synthetic scene until `masks` of them."""
    from trainer.data.synthetic import make_dataset

    out = []
    for i, sample in enumerate(make_dataset((masks + 1) // 2, size, seed=5)):
        path = folder / f"scene{i}.png"
        Image.fromarray(sample.image).save(path)
        for mask in list(np.asarray(sample.masks))[:2]:
            ys, xs = np.nonzero(mask)
            out.append((str(path), [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]))
    return out[:masks]


def clicks(client, image: str, n: int, stop=lambda i: False, gap_s: float = 0.0) -> list[float]:
    """Latency (ms) of n /segment calls with a moving point on a cached embedding."""
    from gradio_client import handle_file

    times = []
    for i in range(n):
        if stop(i):
            break
        prompt = json.dumps({"points": [[20 + 4 * (i % 20), 30 + 5 * (i % 15), 1]]})  # inside the 128-px scene
        start = time.perf_counter()
        client.predict(handle_file(image), prompt, BASE, "fp32", False, api_name="/segment")
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(gap_s)
    return times


def stats(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"n": len(times), "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--masks", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--click-gap", type=float, default=0.0, help="seconds between B's clicks while A trains")
    parser.add_argument("--steps", type=int, default=0, help="0 = the tab's own sizing (2 per mask, 20..40)")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    from demo import train_job
    from demo.testing import running_app

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["SEGKIT_SESSION_DIR"] = str(tmp / "sessions")
        prompts = scenes(tmp, args.masks, min(args.image_size, 512))
        with running_app(tmp, with_d2=False, with_semantic=False, image_size=args.image_size) as app:
            alice, bob = Client(app["url"], verbose=False), Client(app["url"], verbose=False)
            start = time.perf_counter()
            for path, box in prompts:
                alice.predict(handle_file(path), json.dumps({"points": [], "box": box}), "vessel", BASE, "fp32",
                              api_name="/add_to_dataset")
            annotate_s = time.perf_counter() - start
            clicks(bob, app["image"], 2)  # bob's embedding computed and cached
            idle = clicks(bob, app["image"], args.clicks)
            start = time.perf_counter()
            job = alice.submit(BASE, args.steps, api_name="/train")
            while train_job._running == 0 and not job.done():
                time.sleep(0.1)
            done = lambda i: job.done() or (i >= args.clicks and train_job._running == 0)  # noqa: E731
            busy = clicks(bob, app["image"], 10**6, stop=done, gap_s=args.click_gap)
            status, _, result, _ = job.result()
            train_s = time.perf_counter() - start
    print(json.dumps({"image_size": args.image_size, "masks": len(prompts), "annotate_s": round(annotate_s, 1),
                      "train_wall_s": round(train_s, 1), "click_gap_s": args.click_gap, "train_status": status,
                      "clicks_idle": stats(idle), "clicks_while_training": stats(busy),
                      "slowdown_p50": round(stats(busy)["p50_ms"] / stats(idle)["p50_ms"], 2),
                      "result": result}, indent=1))


if __name__ == "__main__":
    main()
