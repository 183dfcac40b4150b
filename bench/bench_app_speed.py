"""The Space's speed through gradio_client (request -> overlay back), as ratios measured in the same run.

    python bench/bench_app_speed.py click       a click with the cached embedding vs a first click (new image),
                                                and the bare SAM2ImagePredictor (set_image / predict) as baseline
    python bench/bench_app_speed.py auto        automatic mask generation time vs points per side
    python bench/bench_app_speed.py precision   a first click (embedding) in fp32 vs bf16
    python bench/bench_app_speed.py load        20 concurrent clients x 2 clicks: p50 / p95 latency, errors
    python bench/bench_app_speed.py all

Random-init sam2.1 tiny (offline), --image-size 1024 by default (the real model's), on the astronaut photo.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
warnings.filterwarnings("ignore")
BASE = "facebook/sam2.1-hiera-tiny"
PROMPT = json.dumps({"points": [[256, 200, 1]]})


def photo(folder: Path, variant: int) -> str:
    """The astronaut photo with one pixel changed per variant: a new image hash, so a new embedding."""
    from skimage import data

    image = data.astronaut().copy()
    image[0, 0, 0] = variant % 256
    path = folder / f"astronaut-{variant}.png"
    Image.fromarray(image).save(path)
    return str(path)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def click(client, path: str, precision: str = "fp32") -> str:
    from gradio_client import handle_file

    return client.predict(handle_file(path), PROMPT, BASE, precision, False, api_name="/segment")[3]


def bench_click(app, client, folder: Path, repeats: int) -> None:
    import torch

    from demo import models

    click(client, photo(folder, 0))  # warm-up: model load, first-call allocations
    first = [timed(lambda i=i: click(client, photo(folder, 100 + i))) for i in range(repeats)]
    cached_path = photo(folder, 1)
    click(client, cached_path)
    cached = [timed(lambda: click(client, cached_path)) for _ in range(repeats * 3)]
    # the same request, the client not fetching the overlay/mask files (their URLs are in the response)
    from gradio_client import Client

    no_download = Client(app["url"], verbose=False, download_files=False)
    cached_urls = [timed(lambda: click(no_download, cached_path)) for _ in range(repeats * 3)]
    floor = [timed(lambda: no_download.predict(BASE, api_name="/load_model")) for _ in range(repeats * 3)]
    from demo import prompt_tab

    handler = [timed(lambda: prompt_tab.segment(cached_path, PROMPT, BASE, "fp32", False)) for _ in range(repeats * 3)]
    # the bare predictor on the same model and image: what the app adds on top
    handle = models.get_sam2(BASE)
    image = np.asarray(Image.open(cached_path))
    with torch.inference_mode():
        set_image = [timed(lambda: handle.predictor.set_image(image)) for _ in range(repeats)]
        predict = [timed(lambda: handle.predictor.predict(point_coords=np.array([[256, 200]]),
                                                          point_labels=np.array([1]), multimask_output=False))
                   for _ in range(repeats * 3)]
    med = statistics.median
    print(f"click, first (embed + decode) : {med(first) * 1000:7.0f} ms  (median of {len(first)})")
    print(f"click, cached embedding       : {med(cached) * 1000:7.0f} ms  (median of {len(cached)})")
    print(f"  -> cached speed-up          : {med(first) / med(cached):7.1f}x")
    print(f"click, cached, no file fetch  : {med(cached_urls) * 1000:7.0f} ms  (gradio_client download_files=False)")
    print(f"  -> cached speed-up          : {med(first) / med(cached_urls):7.1f}x")
    print(f"bare predictor set_image      : {med(set_image) * 1000:7.0f} ms")
    print(f"bare predictor predict        : {med(predict) * 1000:7.0f} ms")
    print(f"app handler, in-process       : {med(handler) * 1000:7.0f} ms  (read + decode + render, no transport)")
    print(f"gradio round trip floor       : {med(floor) * 1000:7.0f} ms  (/load_model on a loaded model)")
    print(f"  -> app overhead per cached click: {(med(cached) - med(predict)) * 1000:.0f} ms over the bare predict")


def bench_auto(app, client, folder: Path, sides: list[int]) -> None:
    from gradio_client import handle_file

    path = photo(folder, 2)
    times = {}
    for side in sides:
        start = time.perf_counter()
        _, info = client.predict(handle_file(path), BASE, "fp32", side, 0.0, 0.0, 0, api_name="/automatic")
        times[side] = time.perf_counter() - start
        print(f"automatic, {side:2d}x{side:<2d} points : {times[side]:7.1f} s  ({info})")
    print(f"  -> {sides[-1]}² vs {sides[0]}² points: {times[sides[-1]] / times[sides[0]]:.1f}x time for "
          f"{(sides[-1] / sides[0]) ** 2:.0f}x prompts")


def bench_precision(app, client, folder: Path) -> None:
    click(client, photo(folder, 3), "bf16")  # warm-up of the bf16 kernels
    fp32 = timed(lambda: click(client, photo(folder, 4), "fp32"))
    bf16 = timed(lambda: click(client, photo(folder, 5), "bf16"))
    print(f"first click fp32 : {fp32 * 1000:7.0f} ms")
    print(f"first click bf16 : {bf16 * 1000:7.0f} ms")
    print(f"  -> bf16 / fp32 : {bf16 / fp32:7.2f}x (CPU without bf16 instructions: expect > 1)")


def bench_load(app, client, folder: Path, clients: int, each: int) -> None:
    from gradio_client import Client

    path = photo(folder, 6)
    click(client, path)  # the shared embedding exists; the load test measures clicks

    def user(_: int) -> list[float | None]:
        own = Client(app["url"], verbose=False)
        out = []
        for _ in range(each):
            try:
                out.append(timed(lambda: click(own, path)))
            except Exception:  # counted, not raised: the figure is the error count
                out.append(None)
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [t for ts in pool.map(user, range(clients)) for t in ts]
    wall = time.perf_counter() - start
    ok = sorted(t for t in results if t is not None)
    p50, p95 = ok[len(ok) // 2], ok[min(len(ok) - 1, int(len(ok) * 0.95))]
    single = statistics.median(timed(lambda: click(client, path)) for _ in range(5))
    print(f"load: {clients} clients x {each} clicks, {len(results) - len(ok)} errors, {len(ok) / wall:.1f} clicks/s")
    print(f"  p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; a lone client {single * 1000:.0f} ms "
          f"(p95 / lone = {p95 / single:.1f}x, queue concurrency 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["click", "auto", "precision", "load", "all"])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sides", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()

    from gradio_client import Client

    from demo.testing import running_app

    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp, \
            running_app(tmp, with_d2=False, image_size=args.image_size) as app:
        client, folder = Client(app["url"], verbose=False), Path(tmp)
        print(f"image size {args.image_size}, astronaut 512x512, random-init sam2.1 tiny, CPU")
        if args.what in ("click", "all"):
            bench_click(app, client, folder, args.repeats)
        if args.what in ("auto", "all"):
            bench_auto(app, client, folder, args.sides)
        if args.what in ("precision", "all"):
            bench_precision(app, client, folder)
        if args.what in ("load", "all"):
            bench_load(app, client, folder, args.clients, 2)


if __name__ == "__main__":
    main()
