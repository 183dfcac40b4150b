"""Compare tab: base vs fine-tuned SAM2 on the same image and prompts, side by side, with their mask IoU."""

from __future__ import annotations

import gradio as gr
import numpy as np

from demo import models, prompts as P, render, settings
from demo.errors import user_errors
from demo.images import example_paths, image_key, load_image
from demo.prompt_tab import click


@user_errors
def compare(path: str | None, prompts_json: str, model_a: str, model_b: str,
            precision: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(overlay A, overlay B, "IoU agreement ..."); no prompt yet = a centre point."""
    handles = [models.get_sam2(ref) for ref in (model_a, model_b)]
    images = [load_image(path, handle.normalization) for handle in handles]  # each model sees its own input
    prompts = P.parse(prompts_json, images[0].shape)
    if prompts.empty:
        prompts = P.Prompts(points=[[images[0].shape[1] / 2, images[0].shape[0] / 2, 1]])
    coords, labels, box = prompts.arrays()
    results, overlays = [], []
    for handle, image in zip(handles, images):
        result = models.predict_prompt(handle, image, image_key(image), precision, coords, labels, box, False)
        results.append(result)
        overlays.append(render.mask_overlay(image, result.masks[0], **prompts.draw_kwargs()))
    agreement = render.iou(results[0].masks[0], results[1].masks[0])
    info = (f"IoU agreement {agreement:.3f} | A score {results[0].scores[0]:.3f}, "
            f"B score {results[1].scores[0]:.3f} | decode {results[0].decode_ms:.0f} / {results[1].decode_ms:.0f} ms")
    return overlays[0], overlays[1], info


def build(precision: gr.Radio) -> dict[str, gr.Component]:
    """The tab; returns the parts the Fine-tune tab opens it with (models A and B, the image)."""
    local = models.local_models("sam2")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model_a = gr.Dropdown([models.BASE_REF, *local], value=models.BASE_REF, label="Model A (base)",
                                  allow_custom_value=True)
            model_b = gr.Dropdown([models.BASE_REF, *local], value=local[0] if local else models.BASE_REF,
                                  label="Model B (fine-tuned)", allow_custom_value=True)
            upload = gr.File(label="Image", file_types=["image"], type="filepath", height=120)
            gr.Examples([[p] for p in example_paths().values()], inputs=[upload],
                        example_labels=list(example_paths()), label="Examples")
            mode = gr.Radio(list(P.MODES), value=P.MODES[0], label="Click on A adds")
            with gr.Row():
                run = gr.Button("Compare", variant="primary")
                clear = gr.Button("Clear prompts")
            info = gr.Textbox(label="Result", interactive=False, elem_id="compare-info")
            prompts_box = gr.Textbox(label="prompts (JSON)", lines=2)
        with gr.Column(scale=3):
            with gr.Row():
                left = gr.Image(label="A", interactive=False, format="jpeg")
                right = gr.Image(label="B", interactive=False, format="jpeg")
    history = gr.State([])
    inputs = [upload, prompts_box, model_a, model_b, precision]
    heavy = settings.heavy_group()
    run.click(compare, inputs, [left, right, info], api_name="compare", **heavy)
    upload.change(lambda: ("", []), None, [prompts_box, history], api_visibility="private") \
        .then(compare, inputs, [left, right, info], api_visibility="private", **heavy)
    left.select(click, [prompts_box, history, mode], [prompts_box, history], api_visibility="private") \
        .then(compare, inputs, [left, right, info], api_visibility="private", **heavy)
    clear.click(lambda: ("", []), None, [prompts_box, history], api_visibility="private") \
        .then(compare, inputs, [left, right, info], api_visibility="private", **heavy)
    return {"model_a": model_a, "model_b": model_b, "upload": upload}
