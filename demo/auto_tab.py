"""Automatic tab: SAM2's automatic mask generator over a point grid (ours: trainer/sam2_ft/automatic.py, same masks,
several times faster on CPU), a progress bar while it decodes, every mask in its own color."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np

from demo import models, render, settings
from demo.errors import user_errors
from demo.images import example_paths, load_image


@user_errors
def generate(path: str | None, model_ref: str, precision: str, points_per_side: float, pred_iou_thresh: float,
             stability_score_thresh: float, min_area: float,
             progress: gr.Progress = gr.Progress()) -> tuple[np.ndarray, str]:
    """(colored overlay of all masks, "N masks | generate ms | render ms")."""
    most = settings.get().auto_max_points_per_side
    if not 1 <= int(points_per_side) <= most:
        raise ValueError(f"points per side: 1..{most} on this Space (the grid's work grows with its square)")
    handle = models.get_sam2(model_ref)
    image = load_image(path, handle.normalization)
    progress(0.0, desc="image embedding")
    start = time.perf_counter()
    masks = models.generate_masks(handle, image, precision, points_per_side=int(points_per_side),
                                  pred_iou_thresh=float(pred_iou_thresh),
                                  stability_score_thresh=float(stability_score_thresh),
                                  min_mask_region_area=int(min_area),
                                  progress=lambda done, total: progress((done, total), desc="decoding grid points",
                                                                        unit="points"))
    generate_ms = (time.perf_counter() - start) * 1000
    # min_mask_region_area only fills holes/removes islands; masks themselves smaller than min_area go here
    masks = [m for m in masks if m["area"] >= min_area]
    start = time.perf_counter()
    overlay = render.instances_overlay(image, [m["segmentation"] for m in masks])
    render_ms = (time.perf_counter() - start) * 1000
    return overlay, (f"{len(masks)} masks | generate {generate_ms:.0f} ms ({int(points_per_side)}² points) | "
                     f"render {render_ms:.0f} ms | {precision}")


def build(model: gr.Dropdown, precision: gr.Radio) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            upload = gr.File(label="Image", file_types=["image"], type="filepath", height=120)
            gr.Examples([[p] for p in example_paths().values()], inputs=[upload],
                        example_labels=list(example_paths()), label="Examples")
            points = gr.Slider(4, settings.get().auto_max_points_per_side, value=12, step=2, label="Points per side",
                               info="grid of N×N prompts; time grows with N²")
            iou = gr.Slider(0.0, 1.0, value=0.8, step=0.01, label="Predicted IoU threshold")
            stability = gr.Slider(0.0, 1.0, value=0.9, step=0.01, label="Stability score threshold")
            min_area = gr.Number(value=100, minimum=0, label="Minimum mask area (pixels)")
            run = gr.Button("Generate masks", variant="primary")
            info = gr.Textbox(label="Result", interactive=False, elem_id="auto-info")
        with gr.Column(scale=2):
            overlay = gr.Image(label="All masks", interactive=False, format="jpeg", buttons=["download", "fullscreen"])
    run.click(generate, [upload, model, precision, points, iou, stability, min_area], [overlay, info],
              api_name="automatic", **settings.heavy_group())
