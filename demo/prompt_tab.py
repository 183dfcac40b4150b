"""Prompt tab: click points (positive/negative) or a box on the image, get SAM2's mask(s) with scores and timings.

A click answers straight away, outside the queue, only when everything it needs is ready: the model loaded, the upload
decoded and its embedding cached; then it runs only the prompt decoder (tens of ms). Otherwise it hands over to a
queued step in the clicks' own concurrency group ("click", SEGKIT_CLICK_CONCURRENCY), so no click can make the server
decode, load or embed outside the queue's bounds.

In the browser (demo/browser_decode.py, demo/static/browser_decode.js): once an upload is embedded, the page fetches the
model's ONNX decoder and the visitor's own embedding and decodes every click, box and hover itself with
onnxruntime-web; a click then only sends the new prompts (checked by the same parser) so Undo, the API and the
Fine-tune tab see them. Without WebAssembly, the vendored runtime or an export, clicks stay on the server (a note says
so); the server path is also the API's (`segment`).
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from demo import browser_decode, models, prompts as P, render, settings
from demo.errors import user_errors
from demo.images import example_paths, image_key, load_image, load_upload

HINT = "Click on the image to add a point."
CLICK_GROUP = "click"
_shown = models.LRU(8)  # uploads as shown, with their content key: decoded once per file, not per click


@user_errors
def show_image(path: str | None, model_ref: str) -> tuple[Any, str, list, str]:
    """A new image: shown as the model sees it (8-bit RGB, downscaled), prompts cleared."""
    if path is None:
        return None, "", [], "Upload an image or pick an example."
    image, how = load_upload(path, models.get_sam2(model_ref).normalization)
    how = f" ({how})" if how else ""
    return image, "", [], f"{image.shape[1]}x{image.shape[0]} image{how}. Computing its embedding..."


@user_errors
def embed(path: str | None, model_ref: str, precision: str, request: gr.Request = None) -> str:
    """Precompute the image embedding so the first click only decodes."""
    if path is None:
        return "Upload an image or pick an example."
    handle = models.get_sam2(model_ref)
    image, key = shown_image(path, handle.normalization)
    key = visitor_key(key, request)
    ms = models.ensure_embedding(handle, image, key, precision)
    took = f"embedding {ms:.0f} ms" if ms else "embedding cached"
    return f"{image.shape[1]}x{image.shape[0]} image, {took}. {HINT}"


@user_errors
def segment(path: str | None, prompts_json: str, model_ref: str, precision: str, multimask: bool,
            request: gr.Request = None) -> tuple[np.ndarray, np.ndarray | None, list, str]:
    """(overlay, mask PNG, candidate masks with scores, info with scores and per-stage latency)."""
    if path is None:
        return None, None, [], "Upload an image or pick an example."
    handle = models.get_sam2(model_ref)
    image, key = shown_image(path, handle.normalization)
    key = visitor_key(key, request)
    prompts = P.parse(prompts_json, image.shape)
    if prompts.empty:
        return render.draw_prompts(image, **prompts.draw_kwargs()), None, [], HINT
    coords, labels, box = prompts.arrays()
    result = models.predict_prompt(handle, image, key, precision, coords, labels, box, bool(multimask))
    start = time.perf_counter()
    overlay = render.mask_overlay(image, result.masks[0], **prompts.draw_kwargs())
    mask_png = Image.fromarray(result.masks[0])  # a 1-bit PNG: 1/8 of the bytes to compress and send
    candidates = [(render.mask_overlay(image, m), f"#{i + 1} {s:.3f}")
                  for i, (m, s) in enumerate(zip(result.masks, result.scores))] if multimask else []
    render_ms = (time.perf_counter() - start) * 1000
    scores = ", ".join(f"{s:.3f}" for s in result.scores)
    embed = "embed cached" if result.cached else f"embed {result.embed_ms:.0f} ms"
    info = (f"score {scores} | {embed} | decode {result.decode_ms:.0f} ms | render {render_ms:.0f} ms | "
            f"{precision}")
    return overlay, mask_png, candidates, info


@user_errors
def click(prompts_json: str, history: list, mode: str, evt: gr.SelectData) -> tuple[str, list]:
    """evt.index is (x, y) in the shown image's pixels, which are the predictor's pixels (same array)."""
    x, y = evt.index[:2]
    updated = P.add_click(P.parse(prompts_json), float(x), float(y), mode)
    return updated.to_json(), [*history, prompts_json or ""]


@user_errors
def click_and_segment(prompts_json: str, history: list, mode: str, path: str | None, model_ref: str, precision: str,
                      multimask: bool, evt: gr.SelectData, request: gr.Request = None) -> tuple:
    """A click in one round trip when it needs only the decoder: the new prompts, the history, segment()'s outputs
    and False; else the new prompts and history, the outputs left as they are, and True (pending: the queued step
    segments)."""
    prompts_json, history = click(prompts_json, history, mode, evt)
    if not ready(path, model_ref, precision, request):
        return prompts_json, history, *[gr.skip()] * 4, True
    return prompts_json, history, *segment(path, prompts_json, model_ref, precision, multimask, request), False


def segment_pending(pending: bool, path: str | None, prompts_json: str, model_ref: str, precision: str,
                    multimask: bool, request: gr.Request = None) -> tuple:
    """The queued half of a click that was not ready: segment() (which loads, decodes and embeds as needed)."""
    if not pending:
        return *[gr.skip()] * 4, False
    return *segment(path, prompts_json, model_ref, precision, multimask, request), False


def ready(path: str | None, model_ref: str, precision: str, request: gr.Request = None) -> bool:
    """Whether a click on `path` needs only the prompt decoder: model loaded, upload decoded, embedding cached."""
    handle = models.loaded_sam2(model_ref)
    shown = _shown.get(_shown_key(path, handle.normalization)) if handle is not None and path else None
    return shown is not None and models.embedding_ready(handle, visitor_key(shown[1], request), precision)


def visitor_key(key: str, request: gr.Request | None) -> str:
    """The embedding cache's key for an image: a visitor's own upload is embedded for that visitor alone (a shared
    one, answering "embed cached", would tell them that someone else looked at the same picture); the bundled
    examples, public anyway, share one embedding across visitors."""
    session = getattr(request, "session_hash", None)
    return key if session is None or key in _example_keys() else f"{session}:{key}"


@lru_cache(maxsize=1)
def _example_keys() -> frozenset[str]:
    return frozenset(image_key(load_image(path, None)) for path in example_paths().values())


def _shown_key(path: str, normalization: str | None) -> tuple:
    try:
        modified = os.stat(path).st_mtime_ns
    except OSError:  # missing: load_image says so in its own words
        modified = -1
    return str(path), normalization, modified


def shown_image(path: str, normalization: str | None) -> tuple[np.ndarray, str]:
    """The upload as shown (decoded, normalised, downscaled) and its content key, decoded once per file, not per
    click."""
    key = _shown_key(path, normalization)
    shown = _shown.get(key)
    if shown is None:
        image = load_image(path, normalization)
        image.flags.writeable = False  # shared by every click on this upload
        shown = image, image_key(image)
        _shown.put(key, shown)
    return shown


@user_errors
def browser_payload(path: str | None, model_ref: str, precision: str, info: str,
                    request: gr.Request = None) -> tuple[list[str], str]:
    """The decoder and the visitor's own embedding for the page (none: clicks stay on the server), and the info box
    with a note on where clicks decode."""
    handle = models.loaded_sam2(model_ref)
    if path is None or handle is None:
        return [], info
    image, key = shown_image(path, handle.normalization)
    files, note = browser_decode.payload(handle, visitor_key(key, request), precision)
    return files, f"{info} {note}".strip()


@user_errors
def sync_prompts(new: str, old: str, history: list, path: str | None, model_ref: str) -> tuple[str, list]:
    """A click decoded in the browser: its prompts, checked by the one parser (bounds, inside the image), become the
    tab's prompts; the old ones go on the undo history. Outside the queue, like a ready click: it never loads or
    decodes anything (an image not decoded yet is checked without its size; segment() checks it again)."""
    handle = models.loaded_sam2(model_ref)
    shown = _shown.get(_shown_key(path, handle.normalization)) if handle is not None and path else None
    return P.parse(new, None if shown is None else shown[0].shape).to_json(), [*history, old or ""]


def segment_unless_browser(browser: bool, path: str | None, prompts_json: str, model_ref: str, precision: str,
                           multimask: bool, request: gr.Request = None) -> tuple:
    """segment() for the UI's own steps (undo, clear, multi-mask) when the page does not decode them itself."""
    if browser:
        return (gr.skip(),) * 4
    return segment(path, prompts_json, model_ref, precision, multimask, request)


def undo(history: list) -> tuple[str, list]:
    if not history:
        return "", []
    return history[-1], history[:-1]


def build(model: gr.Dropdown, precision: gr.Radio) -> dict[str, Any]:
    """The tab; returns the parts the Fine-tune tab wires its "add to my dataset" to."""
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            upload = gr.File(label="Image", file_types=["image"], type="filepath", height=120, elem_id="prompt-upload")
            gr.Examples(list(map(lambda p: [p], example_paths().values())), inputs=[upload],
                        example_labels=list(example_paths()), label="Examples (scikit-image photos)")
            mode = gr.Radio(list(P.MODES), value=P.MODES[0], label="Click adds", elem_id="prompt-mode")
            multimask = gr.Checkbox(label="Multi-mask output (3 candidates)", value=False, elem_id="prompt-multimask")
            with gr.Row():
                undo_btn = gr.Button("Undo", size="sm")
                clear_btn = gr.Button("Clear", size="sm", elem_id="prompt-clear")
            info = gr.Textbox(label="Result", value="Upload an image or pick an example.", lines=2,
                              interactive=False, elem_id="prompt-info")
            with gr.Row():
                class_name = gr.Textbox(label="Class", placeholder="e.g. coin", scale=2, elem_id="class-name")
                add = gr.Button("Add to my dataset", size="sm", scale=1, elem_id="add-to-dataset")
            with gr.Accordion("Prompts (JSON, editable; also the API's input)", open=False):
                prompts_box = gr.Textbox(label="prompts", show_label=False, elem_id="prompt-json", lines=2,
                                         placeholder='{"points": [[x, y, 1]], "box": null}')
        with gr.Column(scale=2):
            canvas = gr.Image(label="Click to prompt", interactive=False, format="jpeg", elem_id="prompt-canvas",
                              buttons=["fullscreen"])
            with gr.Row():
                mask = gr.Image(label="Mask (PNG)", interactive=False, format="png", image_mode="L", height=220,
                                buttons=["download"])
                candidates = gr.Gallery(label="Candidates", columns=3, height=220, format="jpeg")
    history = gr.State([])
    pending = gr.State(False)
    # the page's decoding: the files it fetches, whether it decodes, and how a browser click reports its prompts
    browser_files = gr.File(file_count="multiple", visible="hidden", elem_id="segkit-browser-files")
    browser_on = gr.Checkbox(False, visible="hidden", elem_id="segkit-browser-on")
    browser_prompts = gr.Textbox(visible="hidden", elem_id="segkit-browser-prompts")
    sync = gr.Button("sync", visible="hidden", elem_id="segkit-sync")

    seg_inputs = [upload, prompts_box, model, precision, multimask]
    seg_outputs = [canvas, mask, candidates, info]
    clicks = {"concurrency_id": CLICK_GROUP, "concurrency_limit": settings.get().click_concurrency}
    private = {"api_visibility": "private"}
    # a new image or model: the page stops decoding, the image is shown afresh and embedded, then the page is sent
    # the decoder and the embedding and decodes again; only the upload's own steps are the API's
    for changed, api in ((upload.change, [{"api_name": "load_image"}, {"api_name": "embed"}]),
                         (model.change, [private, private]), (precision.change, [private, private])):
        changed(None, None, [browser_on], js="() => window.segkit ? segkit.reset() : false", **private) \
            .then(show_image, [upload, model], [canvas, prompts_box, history, info], **api[0]) \
            .then(embed, [upload, model, precision], [info], **api[1]) \
            .then(browser_payload, [upload, model, precision, info], [browser_files, info], **private) \
            .then(None, [browser_files], [browser_on], js="(f) => window.segkit ? segkit.load(f) : false", **private)
    sync.click(sync_prompts, [browser_prompts, prompts_box, history, upload, model], [prompts_box, history],
               js="(n, p, h, u, m) => [segkit.promptsJson(), p, h, u, m]", queue=False, show_progress="hidden",
               **private)
    redraw = {"fn": None, "inputs": [prompts_box], "js": "(p) => window.segkit && segkit.setPrompts(p)", **private}
    prompts_box.submit(segment, seg_inputs, seg_outputs, api_name="segment", **clicks).then(**redraw)  # owns the name
    # a ready click decodes a cached embedding (~tens of ms): straight to the server, not through the queue's round
    # trips; one that is not ready is segmented by the queued step in the clicks' own group
    canvas.select(click_and_segment, [prompts_box, history, mode, upload, model, precision, multimask],
                  [prompts_box, history, *seg_outputs, pending], api_visibility="private", queue=False,
                  show_progress="minimal") \
        .then(segment_pending, [pending, *seg_inputs], [*seg_outputs, pending], api_visibility="private",
              show_progress="minimal", **clicks)
    undo_btn.click(undo, [history], [prompts_box, history], **private) \
        .then(segment_unless_browser, [browser_on, *seg_inputs], seg_outputs, **private, **clicks).then(**redraw)
    clear_btn.click(lambda: ("", []), None, [prompts_box, history], **private) \
        .then(segment_unless_browser, [browser_on, *seg_inputs], seg_outputs, **private, **clicks).then(**redraw)
    multimask.change(segment_unless_browser, [browser_on, *seg_inputs], seg_outputs, **private, **clicks) \
        .then(**redraw)
    return {"upload": upload, "prompts": prompts_box, "class_name": class_name, "add": add, "info": info}
