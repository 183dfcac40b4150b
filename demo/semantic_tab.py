"""Semantic tab: a semantic model (SAM2 encoder + UNet head) labels every pixel, no prompts; a legend gives each
class's colour and share of the image."""

from __future__ import annotations

import html
import time

import gradio as gr
import numpy as np

from demo import models, settings
from demo.errors import user_errors
from demo.images import example_paths, load_image
from trainer.semantic.overlays import colorize


def legend(class_names: list[str], colors: list[str], shares: np.ndarray) -> str:
    """HTML rows: colour swatch, class name, percentage of the image's pixels (background is left unpainted)."""
    rows = []
    for name, color, share in zip(class_names, colors, shares):
        swatch = "transparent; border: 1px dashed #888" if name == "background" else color
        rows.append(f'<div class="segkit-legend-row" data-class="{html.escape(name)}" data-share="{share:.4f}">'
                    f'<span class="segkit-swatch" style="background: {swatch}"></span>'
                    f"{html.escape(name)} — {100 * share:.1f} %</div>")
    return f'<div class="segkit-legend">{"".join(rows)}</div>'


@user_errors
def segment(path: str | None, model_ref: str, precision: str) -> tuple[np.ndarray, str, str]:
    """(class map over the image, legend HTML, "N classes | inference ms | render ms | precision")."""
    handle = models.get_semantic(model_ref)
    image = load_image(path, handle.normalization)
    start = time.perf_counter()
    labels = models.segment_classes(handle, image, precision)
    infer_ms = (time.perf_counter() - start) * 1000
    names, colors = handle.segmenter.class_names, handle.segmenter.colors
    start = time.perf_counter()
    overlay = colorize(image, labels, colors)
    shares = np.bincount(labels.ravel(), minlength=len(names)) / labels.size
    render_ms = (time.perf_counter() - start) * 1000
    found = int((shares[1:] > 0).sum())
    return overlay, legend(names, colors, shares), (f"{found} of {len(names) - 1} classes found | inference "
                                                    f"{infer_ms:.0f} ms | render {render_ms:.0f} ms | {precision}")


def build(precision: gr.Radio) -> None:
    choices = models.local_models("semantic")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(choices, value=choices[0] if choices else None, label="Semantic model",
                                allow_custom_value=True, info="local hub models, or type a Hub id / folder")
            upload = gr.File(label="Image", file_types=["image"], type="filepath", height=120,
                             elem_id="semantic-upload")
            gr.Examples([[p] for p in example_paths().values()], inputs=[upload],
                        example_labels=list(example_paths()), label="Examples")
            run = gr.Button("Segment every pixel", variant="primary", elem_id="semantic-run")
            info = gr.Textbox(label="Result", interactive=False, elem_id="semantic-info")
            key = gr.HTML(label="Classes", elem_id="semantic-legend")
        with gr.Column(scale=2):
            overlay = gr.Image(label="Class map", interactive=False, format="png", buttons=["download", "fullscreen"],
                               elem_id="semantic-overlay")
    run.click(segment, [upload, model, precision], [overlay, key, info], api_name="semantic", **settings.heavy_group())
