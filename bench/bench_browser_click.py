"""Click-to-mask latency in a real browser (headless Debian chromium via playwright), cached embedding, 1024 px.

    python bench/bench_browser_click.py [--clicks 20] [--image-size 1024]

The app is served in this process with a random-init sam2.1 tiny at --image-size; a 1024x1024 photo (scikit-image
astronaut, upscaled) is uploaded and embedded once, then each click is timed from the mouse event until the new
overlay is loaded in the page and the info box shows its score. Prints p50 / p95, and the server-side split of
the same clicks (the app's handler: decode, render; the rest is Gradio's round trip, transfer and the browser).
"""

from __future__ import annotations

import argparse
import shutil
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
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
INFO = "() => document.querySelector('#prompt-info textarea').value"
NEW_SRC = "([before]) => { const img = document.querySelector('#prompt-canvas img'); return img && img.getAttribute('src') !== before; }"
NEW_OVERLAY = ("([before]) => { const img = document.querySelector('#prompt-canvas img');"
               " const info = document.querySelector('#prompt-info textarea').value;"
               " return img && img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0"
               " && info.startsWith('score'); }")


def photo(folder: Path, side: int) -> str:
    from skimage import data

    path = folder / "astronaut-1024.png"
    Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC).save(path)
    return str(path)


def stage_ms(info: str) -> float:
    """decode + render ms from the info box ("score 0.91 | embed cached | decode 64 ms | render 10 ms | fp32")."""
    parts = dict(p.strip().rsplit(" ", 2)[:2] for p in info.split("|") if p.strip().endswith(" ms"))
    return sum(float(parts.get(k, 0)) for k in ("decode", "render"))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=1024)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from demo.testing import running_app

    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp, \
            running_app(tmp, with_d2=False, image_size=args.image_size) as app, sync_playwright() as p:
        image = photo(Path(tmp), 1024)
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1400})
        page.goto(app["url"], wait_until="domcontentloaded")
        page.locator("input[type=file]").first.set_input_files(image)
        page.wait_for_function(f"({INFO})().includes('Click on the image')", timeout=300_000)
        canvas = page.locator("#prompt-canvas img")
        box = canvas.bounding_box()
        rng = np.random.default_rng(0)
        latencies, responses, server = [], [], []
        for i in range(args.clicks + 2):  # two warm-up clicks
            before = canvas.get_attribute("src")
            x, y = rng.uniform(0.1, 0.9, 2)
            start = time.perf_counter()
            canvas.click(position={"x": box["width"] * x, "y": box["height"] * y})
            page.wait_for_function(NEW_SRC, arg=[before], timeout=60_000, polling=5)
            response = time.perf_counter()
            page.wait_for_function(NEW_OVERLAY, arg=[before], timeout=60_000, polling=5)
            if i >= 2:
                latencies.append((time.perf_counter() - start) * 1000)
                responses.append((response - start) * 1000)
                server.append(stage_ms(page.evaluate(INFO)))
        info = page.evaluate(INFO)
        browser.close()
    print(f"image 1024x1024, model input {args.image_size}, random-init sam2.1 tiny, CPU, headless chromium")
    print(f"click -> new overlay shown: p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms "
          f"({len(latencies)} clicks, cached embedding)")
    print(f"  response in the page (new overlay URL): p50 {statistics.median(responses):.0f} ms; of it in the app's "
          f"handler (the info box's decode + render): p50 {statistics.median(server):.0f} ms; the rest is Gradio's "
          f"round trip, then the overlay's fetch and decode in the browser. Last info: {info}")


if __name__ == "__main__":
    main()
