"""The app: a shared model picker / precision / device header and one tab per task (each tab is its own module)."""

from __future__ import annotations

import gradio as gr
import torch

from demo import (access, auto_tab, browser_decode, compare_tab, d2_tab, finetune_tab, models, prompt_tab,
                  semantic_tab, settings, video_tab)
from demo.errors import user_errors
from trainer import precision as prec

TITLE = "segkit: SAM2 and Detectron2 fine-tuned segmentation"
CSS = """
#prompt-canvas img, #segkit-overlay { cursor: crosshair; }
#refresh-models { align-self: center; }
.segkit-note { font-size: 0.9em; opacity: 0.85; }
.segkit-legend-row { display: flex; align-items: center; gap: 0.5em; margin: 2px 0; }
.segkit-swatch { display: inline-block; width: 1em; height: 1em; border-radius: 2px; }
"""


def precision_info(device: str) -> str:
    parts = []
    for name, (ok, reason) in prec.available(device).items():
        parts.append(f"{name}: {reason}" if ok else f"{name}: unavailable ({reason})")
    return "; ".join(parts)


def precision_choices(device: str) -> list[tuple[str, str]]:
    """(label, value) pairs: gradio cannot grey out one radio choice, so the label says it and a pick snaps back."""
    choices = []
    for name, (ok, reason) in prec.available(device).items():
        label = name if ok else f"{name} (unavailable)"
        if ok and name == "bf16" and torch.device(device).type == "cpu" and not prec.cpu_has_bf16():
            label = f"{name} (slow on this CPU)"
        choices.append((label, name))
    return choices


def check_precision(name: str) -> str:
    """A precision the device cannot run snaps back to fp32 with the reason shown."""
    ok, reason = prec.check_support(name, models.device())
    if not ok:
        gr.Warning(f"{name} is unavailable on {models.device()}: {reason}. Using fp32.")
        return "fp32"
    if name == "bf16" and models.device().type == "cpu":
        gr.Info(f"bf16 {reason}")
    return name


def sam2_choices() -> list[str]:
    return [models.BASE_REF, *models.local_models("sam2")]


@user_errors
def load_model(ref: str) -> str:
    """Load (or find cached) the picked model and say what it is."""
    return f"**Device:** `{models.device()}` · **Model:** {models.get_sam2(ref).note}"


def picker_info() -> str:
    if access.public():  # a public Space takes no server folders (demo/access.py)
        return "local hub models, your own fine-tuned ones, or type a segkit model's Hub id"
    return "local hub models, or type a Hub id / folder"


def refresh_models() -> gr.Dropdown:
    return gr.Dropdown(choices=sam2_choices())


def build_app() -> gr.Blocks:
    device = models.device()
    limits = settings.get()
    with gr.Blocks(title=TITLE, delete_cache=(limits.gradio_cache_s, limits.gradio_cache_s)) as app:
        gr.Markdown(f"## {TITLE}")
        with gr.Row():
            choices = sam2_choices()  # open on the first fine-tuned model when the local hub has one
            model = gr.Dropdown(choices, value=choices[1] if len(choices) > 1 else models.BASE_REF,
                                label="SAM2 model", allow_custom_value=True,
                                info=picker_info(), scale=4)
            refresh = gr.Button("↻ refresh", size="sm", scale=0, min_width=90, elem_id="refresh-models")
            precision = gr.Radio(precision_choices(str(device)), value="fp32", label="Precision",
                                 info=precision_info(str(device)), scale=4)
        note = gr.Markdown(f"**Device:** `{device}` · loading the model (a first start downloads the base "
                           f"model, about 150 MB)...", label="model",
                           elem_classes="segkit-note")
        with gr.Tabs() as tabs:
            with gr.Tab("Prompt"):
                prompt = prompt_tab.build(model, precision)
            with gr.Tab("Automatic"):
                auto_tab.build(model, precision)
            with gr.Tab("Semantic"):
                semantic_tab.build(precision)
            with gr.Tab("Video"):
                video_tab.build(precision)
            with gr.Tab("Detectron2"):
                d2_tab.build(precision)
            with gr.Tab("Compare", id="compare"):
                compare = compare_tab.build(precision)
            with gr.Tab("Fine-tune", id="finetune"):
                finetune_tab.build(model, precision, prompt, compare, tabs)
        model.change(load_model, [model], [note], api_name="load_model")
        refresh.click(refresh_models, None, [model], api_visibility="private")
        precision.change(check_precision, [precision], [precision], api_visibility="private")
        app.load(load_model, [model], [note], api_visibility="private")
    app.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    return app


def launch_kwargs() -> dict:
    """launch() options (gradio 6 takes theme/css/js here); uploads over the limit are refused before reaching us.
    The page's script decodes the Prompt tab's clicks in the browser with the vendored onnxruntime-web, which
    Gradio serves as static files."""
    gr.set_static_paths(browser_decode.static_paths())
    return {"css": CSS, "theme": gr.themes.Soft(), "max_file_size": settings.get().max_file_bytes,
            "js": browser_decode.script()}
