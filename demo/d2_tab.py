"""Detectron2 tab: a fine-tuned Mask R-CNN's instances with class names and scores."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np

from demo import models, render, settings
from demo.errors import user_errors
from demo.images import example_paths, load_image

COLUMNS = ["#", "class", "score", "area (px)"]


@user_errors
def detect(path: str | None, model_ref: str, precision: str, score_threshold: float) -> tuple[np.ndarray, list, str]:
    """(overlay with boxes and "class score" labels, one row per instance, summary)."""
    handle = models.get_detectron2(model_ref)
    image = load_image(path, handle.normalization)
    start = time.perf_counter()
    out = models.detect(handle, image, float(score_threshold), precision)
    infer_ms = (time.perf_counter() - start) * 1000
    labels = [f"{name} {score:.2f}" for name, score in zip(out["class_names"], out["scores"])]
    overlay = render.instances_overlay(image, list(out["masks"]), out["boxes"], labels)
    rows = [[i + 1, name, round(float(score), 3), int(mask.sum())]
            for i, (name, score, mask) in enumerate(zip(out["class_names"], out["scores"], out["masks"]))]
    return overlay, rows, f"{len(rows)} instances | inference {infer_ms:.0f} ms | {precision}"


def build(precision: gr.Radio) -> None:
    choices = models.local_models("detectron2")
    missing = models.detectron2_missing()
    if missing:
        gr.Markdown(f"⚠️ **{missing}.** Install it with `./setup.sh` (see the README's Installing section).",
                    elem_id="d2-missing")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(choices, value=choices[0] if choices else None, label="Detectron2 model",
                                allow_custom_value=True, info="local hub models, or type a Hub id / folder")
            upload = gr.File(label="Image", file_types=["image"], type="filepath", height=120)
            gr.Examples([[p] for p in example_paths().values()], inputs=[upload],
                        example_labels=list(example_paths()), label="Examples")
            threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Score threshold")
            run = gr.Button("Detect", variant="primary", interactive=missing is None)
            info = gr.Textbox(label="Result", interactive=False, elem_id="d2-info")
        with gr.Column(scale=2):
            overlay = gr.Image(label="Instances", interactive=False, format="jpeg", buttons=["download", "fullscreen"])
            table = gr.Dataframe(headers=COLUMNS, label="Instance table", interactive=False)
    run.click(detect, [upload, model, precision, threshold], [overlay, table, info], api_name="detectron2",
              **settings.heavy_group())
