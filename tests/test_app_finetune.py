"""The Fine-tune tab through gradio_client, as a visitor's browser drives it: masks from the Prompt tab's box prompts →
the visitor's dataset → train (a few steps, real random-init sam2 at 256 px) → compare → COCO and model downloads
→ push to a local target; two sessions never see each other's data; a second training job is refused while busy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx_exports import reuse_onnx_exports  # noqa: F401 (a fixture)
from PIL import Image

from demo import my_data, sessions, train_job

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

BASE = "facebook/sam2.1-hiera-tiny"
pytestmark = pytest.mark.usefixtures("reuse_onnx_exports")  # the model download and the push stage the same decoder


def _scenes(folder: Path, n: int) -> list[tuple[str, list[float]]]:
    """n synthetic photos (PNG) with one object's box each (the Prompt tab's box prompt)."""
    from trainer.data.synthetic import make_dataset

    out = []
    for i, sample in enumerate(make_dataset(n, 128, seed=3)):
        path = folder / f"scene{i}.png"
        Image.fromarray(sample.image).save(path)
        ys, xs = np.nonzero(np.asarray(sample.masks)[0])
        out.append((str(path), [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]))
    return out


def _add(client: Client, path: str, box: list[float], class_name: str = "vessel") -> str:
    prompts = json.dumps({"points": [], "box": box})
    return client.predict(handle_file(path), prompts, class_name, BASE, "fp32", api_name="/add_to_dataset")[0]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module: each test's clients (and browser) are new sessions, so none sees another's data."""
    from demo.testing import running_app

    tmp_path = tmp_path_factory.mktemp("finetune-app")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEGKIT_SESSION_DIR", str(tmp_path / "sessions"))
        env.setenv("SEGKIT_TRAIN_STEPS", "4")
        with running_app(tmp_path, with_d2=False, with_semantic=False) as served:
            yield {**served, "scenes": _scenes(tmp_path, 3)}


def test_annotate_train_compare_export_push(app, tmp_path):
    alice, bob = Client(app["url"], verbose=False), Client(app["url"], verbose=False)
    for path, box in app["scenes"]:
        assert "added a vessel mask" in _add(alice, path, box)
    _add(alice, *app["scenes"][0], class_name="bowl")
    counts, gallery, _ = alice.predict(api_name="/my_dataset")
    assert counts.startswith("3 images, 4 masks (bowl 1, vessel 3)") and len(gallery) == 3
    counts = alice.predict("img0", 2, api_name="/remove_mask")[0]
    assert counts.startswith("3 images, 3 masks (vessel 3)")
    assert bob.predict(api_name="/my_dataset")[0].startswith("0 images, 0 masks")  # bob sees none of alice's
    with pytest.raises(Exception, match="no masks yet"):
        bob.predict(api_name="/export_coco")

    status, _, result, mine = alice.predict(BASE, 0, api_name="/train")
    assert status.startswith("done: 4 steps") and "before → after" in result
    ref = mine["value"] if isinstance(mine, dict) else mine
    assert ref.startswith(sessions.PREFIX)
    held_out = sessions.root() / ref[len(sessions.PREFIX):].split("/")[0] / "data" / "images" / "img2.png"
    overlay_a, overlay_b, info = alice.predict(handle_file(str(held_out)), "", BASE, ref, "fp32",
                                               api_name="/compare")
    assert info.startswith("IoU agreement")

    coco_zip = alice.predict(api_name="/export_coco")
    coco = tmp_path / "coco"
    zipfile.ZipFile(coco_zip).extractall(coco)
    checked = subprocess.run([sys.executable, "-m", "trainer", "validate-data", str(coco)], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parents[1])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(json.loads((coco / "annotations.json").read_text())["annotations"]) == 3

    names = zipfile.ZipFile(alice.predict(ref, api_name="/export_model")).namelist()
    assert {"model.safetensors", "model_config.yaml", "README.md"} <= set(names)
    assert alice.predict(ref, "local:visitor/vessels", api_name="/push").startswith("pushed to")
    assert (app["hub"] / "visitor" / "vessels" / "model.safetensors").is_file()
    with pytest.raises(Exception, match="train a model first"):
        bob.predict(ref, "local:bob/stolen", api_name="/push")  # alice's model is not bob's to push


def _wait(condition, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.2)


def test_a_second_training_job_is_refused_while_one_runs(app, monkeypatch):
    """Bob is refused while alice's job runs; alice cancels hers (through the client, as the tab's Cancel does) and
    the slot is free again. (A job that runs to the end: test_annotate_train_compare_export_push.)"""
    monkeypatch.setenv("SEGKIT_TRAIN_STEPS", "500")  # far more than the test waits for
    alice, bob = Client(app["url"], verbose=False), Client(app["url"], verbose=False)
    for client in (alice, bob):
        for path, box in app["scenes"][:2]:
            _add(client, path, box)
    job = alice.submit(BASE, 0, api_name="/train")
    _wait(lambda: train_job._running == 1)
    with pytest.raises(Exception, match="the Space is training 1 other model"):
        bob.predict(BASE, 0, api_name="/train")
    assert not job.done()  # still training: the refusal did not touch it
    _wait(lambda: job.outputs())  # its first progress message: the handler's generator is at a yield
    job.cancel()
    _wait(lambda: train_job._running == 0)
    assert train_job._running == 0 and not job.status().success


def test_bad_annotations_are_explained(app):
    client = Client(app["url"], verbose=False)
    path, box = app["scenes"][0]
    with pytest.raises(Exception, match="click on the object"):
        client.predict(handle_file(path), "", "vessel", BASE, "fp32", api_name="/add_to_dataset")
    with pytest.raises(Exception, match="class name"):
        _add(client, path, box, class_name="../etc")
    _add(client, path, box)
    with pytest.raises(Exception, match="at least 2 images"):
        client.predict(BASE, 0, api_name="/train")


def test_session_folders_are_bounded_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_SESSION_DIR", str(tmp_path))
    monkeypatch.setenv("SEGKIT_SESSION_MB", "0.05")
    session = sessions.folder(None)
    assert sessions.folder(session.name) == session and sessions.folder("not-a-token") != session
    with pytest.raises(sessions.StorageFull, match="your workspace is full"):
        my_data.add_image(session, np.zeros((200, 200, 3), np.uint8))
    monkeypatch.setenv("SEGKIT_SESSION_TTL_S", "0")
    sessions.sweep()
    assert not session.exists() and sessions.model_folder(sessions.model_ref(session, "run-0")) is None
    other = sessions.folder(None)
    sessions.close(other.name)  # gr.State's delete_callback at session end
    assert not other.exists()


def test_training_slots(monkeypatch):
    monkeypatch.delenv("SEGKIT_TRAIN_STEPS", raising=False)  # the steps a visitor's job gets, not the tests' fixed 4
    train_job._acquire()
    try:
        with pytest.raises(train_job.Busy, match="at most 1 at a time"):
            train_job._acquire()
    finally:
        train_job._release()
    assert train_job.steps_for(2) == 20 and train_job.steps_for(15) == 30 and train_job.steps_for(100) == 40


CHROMIUM = __import__("shutil").which("chromium")


@pytest.mark.browser
def test_browser_annotate_train_compare_export(app, tmp_path):
    """Each step in headless Chromium, with a screenshot: masks added from the Prompt tab, the dataset gallery, a
    training run, the Compare tab it opens, the COCO download."""
    sync_api = pytest.importorskip("playwright.sync_api")

    shots = tmp_path / "shots"
    shots.mkdir()
    scenes = app["scenes"][:2]
    value = "(sel) => (document.querySelector(sel) || {}).value || ''"
    text = "(sel) => (document.querySelector(sel) || {}).innerText || ''"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            # the server path's clicks (its info box says "score ..." and "Click on the image"): once the base
            # model's decoder is exported (by an earlier test of this module's app) the page would decode the clicks
            # itself, which tests/test_browser_app.py covers; this test is about the Fine-tune flow
            page.add_init_script("delete window.WebAssembly")
            page.goto(app["url"], wait_until="domcontentloaded")
            upload = page.locator("#prompt-upload input[type=file]")
            upload.wait_for(state="attached", timeout=120_000)
            for n, (path, box) in enumerate(scenes, start=1):
                if n > 1:  # cleared first, and seen cleared: else the clear's steps may land after the new image's
                    page.locator("#prompt-upload button[aria-label=Clear]").click()
                    page.wait_for_function(f"({value})('#prompt-info textarea').includes('Upload an image')",
                                           timeout=60_000)
                upload.set_input_files(path)
                # 180 s, not 60: the base model's decoder is exported for the page at its first load (tens of
                # seconds on 2 quiet cores, minutes when they are shared)
                page.wait_for_function(f"({value})('#prompt-info textarea').includes('Click on the image')",
                                       timeout=180_000)
                canvas = page.locator("#prompt-canvas img")
                canvas.wait_for(timeout=60_000)
                shown = canvas.bounding_box()
                x, y = (box[0] + box[2]) / 2 / 128 * shown["width"], (box[1] + box[3]) / 2 / 128 * shown["height"]
                canvas.click(position={"x": x, "y": y})
                page.wait_for_function(f"({value})('#prompt-info textarea').startsWith('score')", timeout=180_000)
                page.locator("#class-name textarea, #class-name input").first.fill("vessel")
                page.locator("#add-to-dataset").click()
                page.wait_for_function(f"({value})('#prompt-info textarea').includes('{n} images, {n} masks')",
                                       timeout=180_000)
            page.screenshot(path=str(shots / "1_prompt_added.png"), full_page=True)
            page.get_by_role("tab", name="Fine-tune").click()
            page.wait_for_function(f"({text})('#finetune-counts').includes('2 images, 2 masks')", timeout=30_000)
            page.screenshot(path=str(shots / "2_dataset.png"), full_page=True)
            thumbs = page.locator("#finetune-gallery img").count()
            page.locator("#finetune-train").click()
            page.wait_for_function(f"({value})('#finetune-status textarea').startsWith('done')", timeout=240_000)
            result = page.locator("#finetune-result").inner_text()
            page.wait_for_function(f"({value})('#compare-info textarea').startsWith('IoU agreement')",
                                   timeout=120_000)  # training opened the Compare tab on a held-out image
            page.screenshot(path=str(shots / "3_compare.png"), full_page=True)
            page.get_by_role("tab", name="Fine-tune").click()
            page.locator("#finetune-coco").click()
            page.wait_for_function(f"({text})('#finetune-download').includes('my-dataset-coco')", timeout=60_000)
            page.screenshot(path=str(shots / "4_export.png"), full_page=True)
        finally:
            browser.close()
    assert thumbs == 2 and "before → after" in result
    assert all(shot.stat().st_size > 10_000 for shot in shots.iterdir()) and len(list(shots.iterdir())) == 4


def test_cancel_kills_the_child_and_leaves_no_model(tmp_path, monkeypatch):
    from trainer.data.synthetic import make_dataset

    monkeypatch.setenv("SEGKIT_SESSION_DIR", str(tmp_path))
    session = sessions.folder(None)
    for sample in make_dataset(2, 128, seed=1):
        my_data.add_mask(session, my_data.add_image(session, sample.image), np.asarray(sample.masks)[0], "vessel")
    job = train_job.train(session, train_job.Start(None, "tiny", 256), steps=500, poll_s=0.1)
    first = next(job)
    assert first.step == 0 and not first.done and train_job._running == 1
    job.close()  # what Gradio does to the handler's generator on Cancel
    assert train_job._running == 0 and not (sessions.models_dir(session) / "run-0").exists()
