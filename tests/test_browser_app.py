"""The Space in a real browser (Debian chromium via playwright): upload, two clicks, a scored mask, a screenshot;
the Semantic tab's class map and legend."""

from __future__ import annotations

import contextlib
import json
import shutil
from typing import Iterator

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
AIMS = ((0.35, 0.4), (0.6, 0.6))  # click positions as fractions of the shown image


@contextlib.contextmanager
def app_page(tmp_path, init_script: str | None = None) -> Iterator[tuple[dict, object]]:
    """The app served from a fresh local hub, opened in headless Chromium: (running_app's dict, the page);
    `init_script` runs in the page before its own scripts."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from demo.testing import running_app

    with running_app(tmp_path / "app", with_d2=False) as app, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            if init_script:
                page.add_init_script(init_script)
            page.goto(app["url"], wait_until="domcontentloaded")
            yield app, page
        finally:
            browser.close()


@pytest.mark.browser
def test_without_webassembly_clicks_decode_on_the_server(tmp_path):
    """The server path in a browser that cannot decode (no WebAssembly): a note says so, two clicks, a scored mask."""
    from demo.testing import redrawn  # lazy, as app_page's running_app: demo.testing imports the app

    shown = redrawn("#prompt-canvas img")
    with app_page(tmp_path, init_script="delete window.WebAssembly") as (app, page):
        page.locator("input[type=file]").first.set_input_files(app["image"])
        info = page.locator("#prompt-info textarea")
        value = "() => document.querySelector('#prompt-info textarea').value"
        page.wait_for_function(f"({value})().includes('Clicks decode on the server: this browser has no "
                               "WebAssembly')", timeout=120_000)
        note = info.input_value()
        canvas = page.locator("#prompt-canvas img")
        page.wait_for_function(shown, arg=None, timeout=30_000)  # the upload, drawn
        box = canvas.bounding_box()
        for fx, fy in AIMS:
            before = canvas.get_attribute("src")
            canvas.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
            try:  # the next click waits for this mask's pixels, not just its src (redrawn's docstring)
                page.wait_for_function(f"(before) => ({value})().startsWith('score') && ({shown})(before)",
                                       arg=before, timeout=60_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
                prompts = page.evaluate("() => document.querySelector('#prompt-json textarea')?.value")
                raise AssertionError(f"no mask after the click at {(fx, fy)}: info {info.input_value()!r}, "
                                     f"canvas changed: {canvas.get_attribute('src') != before}, prompts {prompts!r}")
        text = info.input_value()
        page.get_by_text("Prompts (JSON").click()  # the accordion renders its textbox when opened
        page.locator("#prompt-json textarea").wait_for(timeout=10_000)
        clicks = page.locator("#prompt-json textarea").input_value()
        page.screenshot(path=str(tmp_path / "prompt_tab.png"), full_page=True)
    assert "Click on the image" in note and "in your browser" not in note
    assert text.startswith("score ") and "decode" in text and "render" in text
    assert (tmp_path / "prompt_tab.png").stat().st_size > 10_000
    # the clicks landed where aimed, in the image's own pixels (the 128x128 test image is shown unscaled)
    points = json.loads(clicks)["points"]
    assert len(points) == 2 and [p[2] for p in points] == [1, 1]
    for (x, y, _), (fx, fy) in zip(points, AIMS):
        assert abs(x - fx * 128) <= 3 and abs(y - fy * 128) <= 3


@pytest.mark.browser
def test_semantic_tab_colours_every_pixel_and_shows_the_legend(tmp_path):
    with app_page(tmp_path) as (app, page):
        page.get_by_role("tab", name="Semantic").click()
        page.locator("#semantic-upload input[type=file]").set_input_files(app["image"])
        # Gradio shows the name as stem and extension in separate elements
        page.wait_for_function("() => document.querySelector('#semantic-upload').innerText"
                               ".replace(/\\s/g, '').includes('scene.png')", timeout=30_000)
        page.locator("#semantic-run").click()
        value = "() => document.querySelector('#semantic-info textarea').value"
        page.wait_for_function(f"({value})().includes('inference')", timeout=90_000)
        page.locator("#semantic-overlay img").wait_for(timeout=30_000)
        text = page.locator("#semantic-info textarea").input_value()
        rows = page.locator("#semantic-legend .segkit-legend-row").all_inner_texts()
        swatch = page.locator("#semantic-legend .segkit-swatch").nth(1).evaluate(
            "el => getComputedStyle(el).backgroundColor")
        page.screenshot(path=str(tmp_path / "semantic_tab.png"), full_page=True)
    assert "2 of 2 classes found" in text and text.endswith("fp32")
    assert [row.split(" — ")[0] for row in rows] == ["background", "vessel", "liquid"]
    assert all(row.endswith("%") for row in rows)
    assert swatch == "rgb(31, 119, 180)"  # vessel: the first class colour (#1f77b4)
    assert (tmp_path / "semantic_tab.png").stat().st_size > 10_000


MASK_BITS = "() => new TextDecoder().decode(segkit.last.mask.map((v) => v + 48))"  # '0'/'1' per pixel


def _browser_mask(page, shape) -> tuple[np.ndarray, str]:
    """The page's last decoded mask (H x W bool) and the prompts it decoded, as JSON."""
    bits = page.evaluate(MASK_BITS)
    prompts = page.evaluate("() => JSON.stringify(segkit.last.prompts)")
    return np.frombuffer(bits.encode(), np.uint8).reshape(shape) == ord("1"), prompts


def _next_decode(page, commit: bool, action, multimask: bool = False) -> None:
    """Do `action`, then wait for the page's next decode of that kind (a commit or a preview) with the multi-mask box
    as given: leaving the image for the checkbox also redraws (a preview) before the box is checked."""
    seq = page.evaluate("() => segkit.seq")
    action()
    page.wait_for_function("([seq, commit, multimask]) => segkit.last && segkit.last.seq > seq && "
                           "segkit.last.commit === commit && segkit.last.multimask === multimask && !segkit.busy && "
                           "!segkit.pending", arg=[seq, commit, multimask], timeout=60_000)


@pytest.mark.browser
def test_the_browser_decodes_clicks_hover_and_a_box_as_the_server_does(tmp_path):
    """A held-out photo (scikit-image's coffee cup) in the Prompt tab of a model without a repo onnx/ folder (exported
    at load): one click (the best of 3 masks), a hover preview of a second (sam2's single mask), a dragged box, then
    multi-mask output (the best of 3 again); each mask the page drew equals the server path's mask for the same
    prompts, and the prompts reached the server."""
    from PIL import Image
    from skimage import data

    from demo import prompt_tab

    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    shape = data.coffee().shape[:2]
    with app_page(tmp_path) as (app, page):
        page.locator("input[type=file]").first.set_input_files(str(photo))
        page.wait_for_function("() => window.segkit && segkit.ready", timeout=120_000)
        info = page.locator("#prompt-info textarea").input_value()
        canvas = page.locator("#prompt-canvas img")
        box = canvas.bounding_box()
        at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)  # noqa: E731
        seen = {}
        _next_decode(page, True, lambda: page.mouse.click(*at(0.5, 0.45)))
        seen["click"] = _browser_mask(page, shape)
        _next_decode(page, False, lambda: page.mouse.move(*at(0.3, 0.7)))
        seen["hover"] = _browser_mask(page, shape)
        page.get_by_text("Undo").click()  # the click is on the server's history: undo takes it back
        page.wait_for_function("() => segkit.prompts.points.length === 0", timeout=30_000)

        def drag():
            page.mouse.move(*at(0.25, 0.2))
            page.mouse.down()
            page.mouse.move(*at(0.5, 0.5), steps=4)
            page.mouse.move(*at(0.8, 0.85), steps=4)
            page.mouse.up()
        _next_decode(page, True, drag)
        seen["box"] = _browser_mask(page, shape)
        _next_decode(page, False, lambda: page.locator("#prompt-multimask input").check(), multimask=True)  # redrawn
        seen["box, multi-mask"] = _browser_mask(page, shape)
        multi_pick = page.evaluate("() => segkit.last.pick")
        page.get_by_text("Prompts (JSON").click()
        page.wait_for_function("() => { const t = document.querySelector('#prompt-json textarea');"
                               " return t && t.value.includes('\"box\": [') }", timeout=30_000)
        synced = json.loads(page.locator("#prompt-json textarea").input_value())
        page.screenshot(path=str(tmp_path / "browser_decode.png"), full_page=True)
        # the server path, as the app runs it (the same process: the same loaded model), on the same prompts
        server = {name: np.asarray(prompt_tab.segment(str(photo), prompts, "me/sam2-ft", "fp32",
                                                      name.endswith("multi-mask"))[1]) > 0
                  for name, (_, prompts) in seen.items()}
    assert "Clicks decode in your browser" in info
    prompts = {name: json.loads(p) for name, (_, p) in seen.items()}
    assert len(prompts["click"]["points"]) == 1 and len(prompts["hover"]["points"]) == 2
    assert prompts["box"]["box"] is not None and not prompts["box"]["points"]
    assert synced["box"] == prompts["box"]["box"] and synced["points"] == []
    assert seen["box, multi-mask"][1] == seen["box"][1]
    assert multi_pick in (1, 2, 3)  # one of the 3 multimask outputs, not sam2's single mask (output 0)
    for name, (mask, _) in seen.items():
        assert 0.01 < mask.mean() < 0.99, name  # a real mask, not an empty or full frame that always agrees
        union = (mask | server[name]).sum()
        assert (mask & server[name]).sum() / union >= 0.99, name
