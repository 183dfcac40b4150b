"""Click-to-mask latency in a real browser (headless Debian chromium via playwright), cached embedding, 1024 px:
the page decoding clicks itself (onnxruntime-web) and the server path, in one run, on the same page (issue 32).

    python bench/bench_browser_click.py [--clicks 20] [--image-size 1024]

The app is served in this process with a random-init sam2.1 tiny at --image-size (its decoder exported at load); a
1024x1024 photo (scikit-image astronaut, upscaled) is uploaded and embedded once. Then:
  browser  the pointer rests on a spot (its hover preview drawn), then clicks there: timed from the mouse event
           until the page has drawn the mask (in the page: the event's timestamp to the drawn overlay; from here:
           the click sent to the page seeing it drawn); a click in one gesture with its move (mouse.click at a new
           spot: it waits for that move's decode); the hover preview (pointer moved -> mask drawn), the
           embedding's transfer (fetch, fp16 -> fp32) and the decoder's time per click in onnxruntime-web (WASM,
           one thread) against the server's PyTorch decode (the info box's "decode") of the same model.
  server   the page's decoding switched off (segkit.disable()): each click goes to the app (Gradio's select event)
           and is timed until the new overlay is loaded in the page and the info box shows its score.
Prints p50 / p95 of each and their ratio.
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


def photo(folder: Path, side: int) -> str:
    from skimage import data

    path = folder / "astronaut-1024.png"
    Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC).save(path)
    return str(path)


def stage_ms(info: str, stages: tuple[str, ...] = ("decode", "render")) -> float:
    """The stages' ms from the info box ("score 0.91 | embed cached | decode 64 ms | render 10 ms | fp32")."""
    parts = dict(p.strip().rsplit(" ", 2)[:2] for p in info.split("|") if p.strip().endswith(" ms"))
    return sum(float(parts.get(k, 0)) for k in stages)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


BROWSER_DONE = "([seq]) => segkit.last && segkit.last.seq > seq && !segkit.busy && !segkit.pending"


def browser_clicks(page, at, rng, clicks: int) -> dict[str, list[float]]:
    """Per click where the pointer rested first: "click" (here: sent -> drawn; the mask is the hover preview's),
    "page" (the event's timestamp -> drawn), "hover" (pointer moved -> preview drawn: a decode), "decode" (the
    graph's run in the page, upsampling included), "run" (the graph's run alone), "cold" (a click with the move in
    the same gesture: it waits for the decode its move started)."""
    out: dict[str, list[float]] = {"click": [], "page": [], "hover": [], "decode": [], "run": [], "cold": [],
                                   "reused": []}
    for i in range(clicks + 2):  # two warm-up clicks
        x, y = at(*rng.uniform(0.1, 0.9, 2))
        seq = page.evaluate("() => segkit.seq")
        start = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_function(BROWSER_DONE + " && segkit.last.commit", arg=[seq], timeout=60_000, polling="raf")
        cold = (time.perf_counter() - start) * 1000
        x, y = at(*rng.uniform(0.1, 0.9, 2))
        seq = page.evaluate("() => segkit.seq")
        start = time.perf_counter()
        page.mouse.move(x, y)
        page.wait_for_function(BROWSER_DONE, arg=[seq], timeout=60_000, polling="raf")
        hover = (time.perf_counter() - start) * 1000
        page.evaluate("() => { segkit.hoverDecodeMs = segkit.last.decode_ms; "
                      "segkit.hoverRunMs = segkit.last.run_ms; }")
        seq = page.evaluate("() => segkit.seq")
        start = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_function(BROWSER_DONE + " && segkit.last.commit", arg=[seq], timeout=60_000, polling="raf")
        took = (time.perf_counter() - start) * 1000
        last = page.evaluate("() => [segkit.last.ms, segkit.last.reused]")
        if i >= 2:
            out["hover"].append(hover)
            out["click"].append(took)
            out["page"].append(last[0])
            out["decode"].append(page.evaluate("() => segkit.hoverDecodeMs") or 0)
            out["run"].append(page.evaluate("() => segkit.hoverRunMs") or 0)
            out["cold"].append(cold)
            out["reused"].append(float(last[1]))
    return out


def server_clicks(page, canvas, at, rng, clicks: int) -> dict[str, list[float]]:
    """Per click: "click" (sent -> new overlay shown), "response" (-> new overlay URL in the page), "handler" (the
    app's decode + render), "decode" (the app's PyTorch decode)."""
    from demo.testing import redrawn  # lazy, as main's running_app: demo.testing imports the app

    overlay = f"(before) => ({INFO})().startsWith('score') && ({redrawn('#prompt-canvas img')})(before)"
    out: dict[str, list[float]] = {"click": [], "response": [], "handler": [], "decode": []}
    for i in range(clicks + 2):  # two warm-up clicks
        before = canvas.get_attribute("src")
        x, y = at(*rng.uniform(0.1, 0.9, 2))
        start = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_function(NEW_SRC, arg=[before], timeout=60_000, polling=5)
        response = time.perf_counter()
        page.wait_for_function(overlay, arg=before, timeout=60_000, polling=5)
        if i >= 2:
            info = page.evaluate(INFO)
            out["click"].append((time.perf_counter() - start) * 1000)
            out["response"].append((response - start) * 1000)
            out["handler"].append(stage_ms(info))
            out["decode"].append(stage_ms(info, ("decode",)))
    return out


def clear(page) -> None:
    page.get_by_text("Clear", exact=True).click()
    page.wait_for_function("() => !segkit.ready || segkit.prompts.points.length === 0", timeout=60_000)


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
            running_app(tmp, with_d2=False, with_semantic=False, image_size=args.image_size) as app, \
            sync_playwright() as p:
        image = photo(Path(tmp), 1024)
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1400})
        page.goto(app["url"], wait_until="domcontentloaded")
        start = time.perf_counter()
        page.locator("input[type=file]").first.set_input_files(image)
        page.wait_for_function("() => window.segkit && segkit.ready", timeout=900_000)
        ready_s = time.perf_counter() - start
        timings = page.evaluate("() => segkit.timings")
        canvas = page.locator("#prompt-canvas img")
        box = canvas.bounding_box()
        at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)  # noqa: E731
        rng = np.random.default_rng(0)
        page_side = browser_clicks(page, at, rng, args.clicks)
        clear(page)
        page.evaluate("() => segkit.disable()")
        server = server_clicks(page, canvas, at, rng, args.clicks)
        browser.close()
    b50, s50 = percentile(page_side["click"], 50), percentile(server["click"], 50)
    print(f"image 1024x1024, model input {args.image_size}, random-init sam2.1 tiny, CPU, headless chromium, "
          f"{args.clicks} clicks per path, cached embedding")
    print(f"upload -> page decoding: {ready_s:.1f} s (embed, export at load, transfers); decoder session "
          f"{timings['decoder_ms']:.0f} ms; embedding {timings['embedding_bytes'] / 2**20:.1f} MiB fp16: fetch "
          f"{timings['embedding_fetch_ms']:.0f} ms, + fp16 -> fp32 {timings['embedding_ms'] - timings['embedding_fetch_ms']:.0f} ms")
    print("| path | click -> mask shown p50 | p95 | |")
    print("|---|---|---|---|")
    print(f"| server (PyTorch, Gradio round trip) | {s50:.0f} ms | {percentile(server['click'], 95):.0f} ms | "
          f"app's handler p50 {statistics.median(server['handler']):.0f} ms (decode "
          f"{statistics.median(server['decode']):.0f}) |")
    print(f"| **browser (onnxruntime-web)** | **{b50:.0f} ms** | {percentile(page_side['click'], 95):.0f} ms | "
          f"in the page p50 {statistics.median(page_side['page']):.0f} ms (decode "
          f"{statistics.median(page_side['decode']):.0f}); {s50 / b50:.1f}x the server path; "
          f"{sum(page_side['reused']):.0f} of {args.clicks} showed their hover preview's mask |")
    print(f"| browser, click in the same gesture as the move | {percentile(page_side['cold'], 50):.0f} ms | "
          f"{percentile(page_side['cold'], 95):.0f} ms | |")
    print(f"| browser hover preview (pointer moved -> mask) | {percentile(page_side['hover'], 50):.0f} ms | "
          f"{percentile(page_side['hover'], 95):.0f} ms | |")
    print(f"decoder per click: onnxruntime-web (WASM, 1 thread) {statistics.median(page_side['decode']):.0f} ms "
          f"(the graph's run {statistics.median(page_side['run']):.0f} ms, the rest upsampling and threshold) vs "
          f"the server's PyTorch eager {statistics.median(server['decode']):.0f} ms (the app's PointDecoder)")


if __name__ == "__main__":
    main()
