"""What the page is sent to decode clicks itself (demo/browser_decode.py), with a real random-init SAM2 on a held-out
photo: the fp16 embedding holds the app's masks through onnxruntime, only the visitor's own embedding is served, a
repo's own export is used, the export at load runs in a child process, and a failed export or a missing runtime
leaves the clicks on the server with a note."""

from __future__ import annotations

import os
import sys

import gradio as gr
import numpy as np
import onnxruntime
import pytest
import torch
from skimage import data

from demo import browser_decode, models, ort_assets, prompt_tab
from trainer.sam2_model import onnx_export
from trainer.sam2_model.model import Sam2Spec, build_model, make_predictor

SIZE = 128
PHOTO = data.coffee()  # 400 x 600: no model saw it


def _handle(folder=None) -> models.Sam2Handle:
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", SIZE)).eval()
    return models.Sam2Handle("test-browser", model, Sam2Spec("tiny", SIZE), "test", predictor=make_predictor(model),
                             folder=folder)


@pytest.fixture(scope="module")
def handle():
    """A model with the photo embedded for visitor "a"."""
    handle = _handle()
    models.ensure_embedding(handle, PHOTO, "a:photo", "fp32")
    yield handle
    models.forget("test-browser")


def test_the_fp16_embedding_gives_the_apps_masks_through_the_exported_decoder(handle):
    files, note = browser_decode.payload(handle, "a:photo", "fp32")
    assert note.startswith("Clicks decode in your browser") and len(files) == 2
    header, arrays = browser_decode.read_embedding(files[1])
    assert (header["image_size"], header["height"], header["width"]) == (SIZE, 400, 600)
    features = models.embedding_state(handle, "a:photo", "fp32")["_features"]
    exact = onnx_export.image_inputs(handle.model, features)
    assert list(arrays) == list(onnx_export.IMAGE_INPUTS)
    for name, values in arrays.items():
        np.testing.assert_allclose(values, exact[name], rtol=1e-3, atol=2e-3)
    session = onnxruntime.InferenceSession(files[0], providers=["CPUExecutionProvider"])
    fp16 = {name: values.astype(np.float32) for name, values in arrays.items()}
    scale = np.array([SIZE / 600, SIZE / 400])
    for points, labels in (([[300.0, 180.0]], [1]), ([[300.0, 180.0], [100.0, 60.0]], [1, 0])):
        server = models.predict_prompt(handle, PHOTO, "a:photo", "fp32", np.array(points), np.array(labels), None,
                                       False).masks[0]
        logits, scores = session.run(None, onnx_export.onnx_inputs(fp16, np.array(points) * scale, np.array(labels)))
        pick = 1 + int(scores[0, 1:].argmax()) if len(points) == 1 else 0  # the page's rule, as the app's
        mask = torch.nn.functional.interpolate(torch.from_numpy(logits[:, pick:pick + 1]), (400, 600),
                                               mode="bilinear", align_corners=False)[0, 0].numpy() > 0
        assert 0.01 < server.mean() < 0.99
        assert (mask & server).sum() / (mask | server).sum() >= 0.99


def test_only_the_visitors_own_embedding_is_served(handle):
    """Visitor b never embedded the photo: nothing is written for b (a's embedding stays a's)."""
    assert browser_decode.payload(handle, "b:photo", "fp32") == ([], "")
    session = type("Request", (), {"session_hash": "b"})()
    assert prompt_tab.visitor_key("photo", session) == "b:photo"


@pytest.fixture(scope="module")
def graph(handle, tmp_path_factory):
    """The model's decoder graph as push writes it (fp32)."""
    return onnx_export.export_decoder(handle.model, tmp_path_factory.mktemp("repo") / "decoder.onnx")


def _repo(tmp_path, graph_bytes: bytes):
    folder = tmp_path / "repo"
    (folder / "onnx").mkdir(parents=True)
    (folder / "onnx" / "decoder.onnx").write_bytes(graph_bytes)
    return folder


def _traced_here(*args, **kwargs):
    raise AssertionError("the decoder was traced in the app's process")


def test_a_repos_own_decoder_is_used_and_an_old_one_exported_again(tmp_path, graph, monkeypatch):
    found = browser_decode.decoder(_handle(_repo(tmp_path, graph.read_bytes())))
    assert found.note == "the repo's onnx/decoder.onnx" and found.path.read_bytes() == graph.read_bytes()
    # an earlier version's graph (other inputs) or a file that is no graph: the model's decoder is exported instead,
    # in a child process (torch's export tracer patches nn.Module.__call__ for every thread of its process)
    monkeypatch.setattr(onnx_export, "export_decoder", _traced_here)
    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path / "cache"))  # empty: no export of these weights kept yet
    found = browser_decode.decoder(_handle(_repo(tmp_path / "old", b"an earlier graph")))
    assert found.note.startswith("exported at load")
    inputs = [i.name for i in onnxruntime.InferenceSession(found.path, providers=["CPUExecutionProvider"]).get_inputs()]
    assert inputs == list(onnx_export.INPUTS)
    exported = found.path.read_bytes()  # (loading the model again deletes its earlier load's files)
    # the same weights loaded again (the app's next start): the export kept on disk, no child process
    monkeypatch.setattr(browser_decode, "EXPORT", (sys.executable, "-c", "import sys; sys.exit('exported again')"))
    again = browser_decode.decoder(_handle())
    assert again.note.startswith("exported earlier, from the cache")
    assert again.path.read_bytes() == exported


def test_the_export_cache_keeps_the_newest(tmp_path, monkeypatch):
    monkeypatch.setattr(browser_decode, "EXPORTS_KEPT", 2)
    graph = tmp_path / "decoder.onnx"
    graph.write_bytes(b"graph")
    kept = [tmp_path / "cache" / key / onnx_export.DECODER_NAME for key in ("a", "b", "c")]
    for age, path in enumerate(kept):
        browser_decode._keep(graph, path)
        os.utime(path, (1000 + age, 1000 + age))
    assert [p.is_file() for p in kept] == [False, True, True]
    assert not list((tmp_path / "cache").rglob("*.partial"))


def test_a_failed_export_leaves_clicks_on_the_server_with_a_note(monkeypatch, caplog, tmp_path):
    """The export's child process fails as `trainer export-onnx` does when its check refuses the graph (that
    refusal: tests/test_sam2_onnx.py): the reason is logged, the page is told the clicks stay on the server."""
    monkeypatch.setattr(browser_decode, "EXPORT", (sys.executable, "-c", "import sys; sys.exit('error: refused')"))
    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path))  # no export of these weights kept from another test
    handle = _handle()
    models.ensure_embedding(handle, PHOTO, "a:photo", "fp32")
    try:
        assert browser_decode.payload(handle, "a:photo", "fp32") == (
            [], "Clicks decode on the server: this model's ONNX export failed (see the server log).")
        assert "error: refused" in caplog.text
    finally:
        models.forget("test-browser")


def test_without_the_vendored_runtime_clicks_stay_on_the_server(monkeypatch, tmp_path, handle):
    monkeypatch.setattr(ort_assets, "DIR", tmp_path)
    files, note = browser_decode.payload(handle, "a:photo", "fp32")
    assert files == [] and "onnxruntime-web is not installed" in note


def test_the_page_is_served_the_pinned_runtime(monkeypatch):
    assert ort_assets.ready(), "run setup.sh (python demo/ort_assets.py) to fetch onnxruntime-web"
    monkeypatch.chdir(ort_assets.DIR.parents[2])  # the app runs from the repo root (python app.py, the Dockerfile)
    script = browser_decode.script()
    assert '"gradio_api/file=demo/static/ort/"' in script and "__ORT_BASE__" not in script
    assert str(ort_assets.DIR.parents[2]) not in script  # the page never shows where the Space is installed


def test_prompts_from_the_page_go_through_the_one_parser():
    """A browser click's prompts are checked as typed ones are: bounded, finite, labelled 0 / 1."""
    assert prompt_tab.sync_prompts('{"points": [[3, 4, 1]]}', "", [], None, "")[1] == [""]
    for bad in ('{"points": [[3, 4, 7]]}', '{"points": [[NaN, 4, 1]]}', "x" * 20_000):
        with pytest.raises(gr.Error):
            prompt_tab.sync_prompts(bad, "", [], None, "")


def test_a_closed_sessions_decoders_are_deleted(tmp_path, graph):
    handle = _handle(_repo(tmp_path, graph.read_bytes()))
    handle.ref = "session:abc/model"
    path = browser_decode.decoder(handle).path
    browser_decode.forget("session:abc")
    assert not path.exists()
