"""Fine-tune tab: the visitor's own dataset (masks made in the Prompt tab), one-button training, before/after mIoU,
then Compare on a held-out image, downloads (COCO zip, model zip) and a push under the visitor's own account.

Every handler takes and returns the session token (gr.State): the token names the visitor's folder
(demo/sessions.py), so two visitors never see each other's images, masks or models.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from demo import access, models, my_data, prompts as P, render, sessions, settings, train_job
from demo.errors import user_errors
from demo.images import load_image
from demo.prompt_tab import shown_image
from hub_cards.repo import push_run, stage_run
from trainer.data.export import write_coco

THUMB = 160
NO_SUCH_MODEL = "no such model in your session: train a model first (or pick one of yours)"


def _view(session: Path) -> tuple[str, list, gr.Dropdown]:
    """(counts, gallery of thumbnails with their masks, the image picker for removal)."""
    index = my_data.read_index(session)
    gallery = []
    for entry in index["images"]:
        image = my_data.load_rgb(session, entry["id"])
        overlay = render.instances_overlay(image, list(my_data.load_masks(session, entry)))
        classes = ", ".join(m["class"] for m in entry["masks"]) or "no masks (kept for comparing)"
        gallery.append((_thumbnail(overlay), f"{entry['id']}: {classes}"))
    ids = [e["id"] for e in index["images"]]
    return my_data.summary(index), gallery, gr.Dropdown(choices=ids, value=ids[-1] if ids else None)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    thumb = Image.fromarray(image)
    thumb.thumbnail((THUMB, THUMB))
    return np.asarray(thumb)


@user_errors
def add_from_prompt(path: str | None, prompts_json: str, class_name: str, model_ref: str, precision: str,
                    token: str | None) -> tuple:
    """The Prompt tab's current mask (its image, prompts and model) added to the visitor's dataset."""
    if path is None:
        raise ValueError("upload an image in the Prompt tab first")
    handle = models.get_sam2(model_ref)
    image, key = shown_image(path, handle.normalization)
    prompts = P.parse(prompts_json, image.shape)
    if prompts.empty:
        raise ValueError("click on the object (or draw a box) first, then add its mask")
    coords, labels, box = prompts.arrays()
    mask = models.predict_prompt(handle, image, key, precision, coords, labels, box, False).masks[0]
    session = sessions.folder(token)
    image_id = my_data.add_image(session, image)
    my_data.add_mask(session, image_id, mask, class_name)
    counts, gallery, picker = _view(session)
    return f"added a {class_name.strip()} mask to {image_id} · your dataset: {counts}", counts, gallery, picker, \
        session.name


@user_errors
def add_images(paths: list[str] | None, token: str | None) -> tuple:
    """Images without masks: annotate them in the Prompt tab, or keep them to compare models on."""
    session = sessions.folder(token)
    my_data.check_room(session, len(paths or []))  # before decoding any of them
    for path in paths or []:
        my_data.add_image(session, load_image(path))
    return (*_view(session), session.name)


@user_errors
def show(token: str | None) -> tuple:
    session = sessions.folder(token)
    return (*_view(session), session.name)


@user_errors
def remove_mask(image_id: str, mask_number: float, token: str | None) -> tuple:
    """Remove mask #mask_number (1-based, in the order added) of an image."""
    session = sessions.folder(token)
    my_data.remove(session, image_id, int(mask_number) - 1)
    return (*_view(session), session.name)


@user_errors
def remove_image(image_id: str, token: str | None) -> tuple:
    session = sessions.folder(token)
    my_data.remove(session, image_id)
    return (*_view(session), session.name)


def _start(model_ref: str) -> tuple[train_job.Start, str]:
    """What training starts from: the picked model (its folder and sizes), or the app's base model."""
    ref = (model_ref or models.BASE_REF).strip()
    handle = models.get_sam2(ref)
    if ref == models.BASE_REF:
        pretrained = not handle.note.startswith("⚠️")  # the app's base is random-init when offline: train the same
        return train_job.Start(models.BASE_REF if pretrained else None, handle.spec.size, handle.spec.image_size), ref
    folder = access.model_folder(ref, "sam2")
    return train_job.Start(str(folder), handle.spec.size, handle.spec.image_size), ref


@user_errors
def train(model_ref: str, steps: float, token: str | None) -> Iterator[tuple]:
    """Yields (status, loss curve, results, my models picker, token) while the trainer runs, then the results."""
    session = sessions.folder(token)
    start, ref = _start(model_ref)
    picker = gr.Dropdown()
    for p in train_job.train(session, start, int(steps or 0)):
        curve = pd.DataFrame(p.losses or [(0, float("nan"))], columns=["step", "loss"])
        loss = f" · loss {p.loss:.3f}" if p.loss is not None else " · computing the image features"
        status = f"step {p.step}/{p.steps}{loss} · {p.elapsed_s:.0f} s"
        if not p.done:
            yield status, curve, "", picker, session.name
            continue
        mine = sessions.model_ref(session, p.model_name)
        picker = gr.Dropdown(choices=_my_models(session), value=mine)
        yield f"done: {p.steps} steps in {p.elapsed_s:.0f} s, from {ref}", curve, results(p.summary, mine), \
            picker, session.name


def results(summary: dict, ref: str) -> str:
    """Before/after mIoU on the visitor's held-out masks, as a small table."""
    before, after = summary["metrics"].get("before", {}), summary["metrics"].get("after", {})
    n_val = summary.get("dataset", {}).get("num_val", 0)
    rows = [f"| {label} | {before.get(key, float('nan')):.3f} | {after.get(key, float('nan')):.3f} |"
            for key, label in (("miou_box", "box"), ("miou_click_1", "1 click"), ("miou_click_3", "3 clicks"))]
    return "\n".join([f"**Your model:** `{ref}` — mIoU on {n_val} held-out image(s) of yours, before → after:", "",
                      "| prompt | before | after |", "|---|---|---|", *rows])


def _my_models(session: Path) -> list[str]:
    folder = sessions.models_dir(session)
    names = sorted(p.name for p in folder.glob("run-*") if (p / "summary.json").is_file())
    return [sessions.model_ref(session, name) for name in names]


def open_compare(start_ref: str, mine: str | None, token: str | None) -> tuple:
    """After training: the Compare tab on start vs the new model, on an image the model did not train on; the
    header's picker lists the visitor's models too."""
    if not mine or not token:
        return gr.Tabs(), gr.Dropdown(), gr.Dropdown(), gr.File(), gr.Dropdown()
    session = sessions.folder(token)
    held = train_job.held_out_ids(session, my_data.to_dataset(session), _session_model(session, mine)[1])
    image = my_data.data_dir(session) / "images" / f"{held[0]}.png" if held else None
    picker = gr.Dropdown(choices=[models.BASE_REF, *models.local_models("sam2"), *_my_models(session)])
    return (gr.Tabs(selected="compare"), gr.Dropdown(value=start_ref or models.BASE_REF), gr.Dropdown(value=mine),
            gr.File(value=str(image) if image else None), picker)


def _session_model(session: Path, ref: str | None) -> tuple[str, Path]:
    """(name, run folder) of one of this session's models (its run folder is the model folder). A ref that is not
    one, whether it names nothing or climbs out of the session, gets the same answer."""
    prefix = sessions.model_ref(session, "")
    name = ref[len(prefix):] if ref and ref.startswith(prefix) else ""
    run = sessions.own_model(session, name)
    if run is None or not (run / "summary.json").is_file():
        raise ValueError(NO_SUCH_MODEL)
    return name, run


def _zip(folder: Path, dest: Path, session: Path) -> str:
    """folder → dest.zip (the previous one replaced), within the session's disk allowance."""
    Path(f"{dest}.zip").unlink(missing_ok=True)
    sessions.check_space(session, sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()))
    dest.parent.mkdir(parents=True, exist_ok=True)
    return shutil.make_archive(str(dest), "zip", root_dir=folder)


@user_errors
def export_coco(token: str | None) -> tuple[str, str]:
    """The dataset as a COCO folder (annotations.json + images/), zipped: `python -m trainer sam2 --data` reads it."""
    session = sessions.folder(token)
    dataset = my_data.to_dataset(session)
    if not len(dataset):
        raise ValueError("your dataset has no masks yet: add some in the Prompt tab")
    out = session / "exports" / "coco"
    shutil.rmtree(out, ignore_errors=True)
    write_coco(dataset, out, info={"description": "annotated in the segkit Space"})
    return _zip(out, session / "exports" / "my-dataset-coco", session), session.name


@user_errors
def export_model(mine: str | None, token: str | None) -> tuple[str, str]:
    """The model repo folder as a push would upload it (hub_cards' stage_run: sam2's weights, transformers' copy at
    the root, the ONNX decoder, configs, card), zipped."""
    session = sessions.folder(token)
    name, run = _session_model(session, mine)
    staged = session / "exports" / "staged"
    shutil.rmtree(staged, ignore_errors=True)
    # the staged folder (two copies of the weights and the decoder) and its zip, side by side until the zip is done
    sessions.check_space(session, 5 * run.joinpath("model.safetensors").stat().st_size)
    try:
        stage_run(run, staged)
        return _zip(staged, session / "exports" / f"segkit-{name}", session), session.name
    finally:
        shutil.rmtree(staged, ignore_errors=True)


@user_errors
def push(mine: str | None, repo_id: str, token: str | None, oauth: gr.OAuthToken | None = None) -> tuple[str, str]:
    """Push the model under the visitor's own account: on a public Space only with their sign-in token (never the
    Space's); locally the same, or huggingface_hub's own lookup (HF_TOKEN) — and local targets (file:, local:).
    A public Space's push makes a private repo unless SEGKIT_PUSH_PRIVATE=0."""
    session = sessions.folder(token)
    _, run = _session_model(session, mine)
    target = (repo_id or "").strip()
    if access.public():
        if oauth is None:
            raise ValueError("sign in with Hugging Face (the button above) to push to your own account")
        if access.hub_id(target) is None:
            raise ValueError(f"{target!r}: give a Hub repo id, your-name/model-name")
    elif not target:
        raise ValueError("give a repo: your-name/model-name on the Hub, or local:owner/name")
    private = settings.get().push_private and access.public()
    where = push_run(run, target, private=private, token=oauth.token if oauth else None)
    return f"pushed to {where}", session.name


def oauth_available() -> bool:
    """Sign in with Hugging Face only where the Hub runs it: a Space with `hf_oauth: true` in README.md's front
    matter sets OAUTH_CLIENT_ID (and gradio[oauth] is installed from requirements.txt). Elsewhere Gradio's button
    would demand a local login at start-up, so it is left out: the push uses HF_TOKEN locally, and a public Space
    without sign-in refuses to push (it never falls back to the Space's own token)."""
    return bool(settings.get().oauth_client_id) and importlib.util.find_spec("itsdangerous") is not None


def build(model: gr.Dropdown, precision: gr.Radio, prompt: dict[str, Any], compare: dict[str, Any],
          tabs: gr.Tabs) -> None:
    """The tab's layout, plus the Prompt tab's "add to my dataset" wiring (its parts: upload, prompts, class_name,
    add, info) and the jump to Compare after training (its parts: model_a, model_b, upload)."""
    token = gr.State(None, time_to_live=sessions.ttl_s(), delete_callback=sessions.close)
    gr.Markdown("Make masks in the **Prompt** tab (clicks / box until the mask is right, then *Add to my dataset* "
                "with a class name). Masks on at least 2 images; one in five images is held out to measure the "
                "model. Your images and models are yours alone and are deleted when you leave.",
                elem_classes="segkit-note")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            uploads = gr.File(label="More images (no masks yet)", file_count="multiple", file_types=["image"],
                              type="filepath", height=100)
            counts = gr.Markdown("0 images, 0 masks", elem_id="finetune-counts")
            with gr.Row():
                image_id = gr.Dropdown([], label="Image", scale=2)
                mask_number = gr.Number(1, label="Mask #", precision=0, minimum=1, scale=1)
            with gr.Row():
                remove_mask_btn = gr.Button("Remove mask", size="sm")
                remove_image_btn = gr.Button("Remove image", size="sm")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="My dataset", columns=6, height=260, object_fit="contain", format="jpeg",
                                 elem_id="finetune-gallery")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            steps = gr.Number(0, label="Steps (0 = sized to your data)", precision=0, minimum=0)
            with gr.Row():
                train_btn = gr.Button("Train", variant="primary", elem_id="finetune-train")
                cancel_btn = gr.Button("Cancel")
            status = gr.Textbox(label="Training", interactive=False, elem_id="finetune-status")
            result = gr.Markdown(elem_id="finetune-result")
        with gr.Column(scale=2):
            curve = gr.LinePlot(x="step", y="loss", label="loss", height=220)
    with gr.Row():
        mine = gr.Dropdown([], label="My models", allow_custom_value=True, scale=2)
        coco_btn = gr.Button("Download dataset (COCO zip)", elem_id="finetune-coco")
        model_btn = gr.Button("Download model (zip)")
        download = gr.File(label="Download", interactive=False, elem_id="finetune-download")
    with gr.Row():
        if oauth_available():
            gr.LoginButton(scale=1)
        repo = gr.Textbox(label="Push to (your-name/model-name)", scale=2)
        push_btn = gr.Button("Push to the Hub", scale=1)
        pushed = gr.Textbox(label="Push", interactive=False, scale=2)

    view = [counts, gallery, image_id, token]
    prompt["add"].click(add_from_prompt, [prompt["upload"], prompt["prompts"], prompt["class_name"], model, precision,
                                          token], [prompt["info"], *view], api_name="add_to_dataset")
    uploads.upload(add_images, [uploads, token], view, api_name="add_images")
    remove_mask_btn.click(remove_mask, [image_id, mask_number, token], view, api_name="remove_mask")
    remove_image_btn.click(remove_image, [image_id, token], view, api_name="remove_image")
    gr.Button("↻", visible=False).click(show, [token], view, api_name="my_dataset")
    # own concurrency group, wider than the job limit: a job over the limit is refused at once with the busy message
    job = train_btn.click(train, [model, steps, token], [status, curve, result, mine, token], api_name="train",
                          concurrency_id="train", concurrency_limit=train_job.max_jobs() + 2)
    job.success(open_compare, [model, mine, token],
                [tabs, compare["model_a"], compare["model_b"], compare["upload"], model], api_visibility="private")
    cancel_btn.click(None, None, None, cancels=[job])
    coco_btn.click(export_coco, [token], [download, token], api_name="export_coco")
    model_btn.click(export_model, [mine, token], [download, token], api_name="export_model")
    push_btn.click(push, [mine, repo, token], [pushed, token], api_name="push")
