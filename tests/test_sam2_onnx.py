"""The ONNX prompt decoder: exported from a real random-init SAM2, run by onnxruntime on CPU, and compared with
sam2's SAM2ImagePredictor and with the app's click path (PointDecoder) on a photo no model saw (scikit-image's
coffee cup)."""

import numpy as np
import onnxruntime
import pytest
import torch
from onnx_exports import reuse_onnx_exports  # noqa: F401 (a fixture)
from skimage import data

from trainer.checkpoint import save_weights
from trainer.cli import main as cli
from trainer.sam2_model import onnx_export
from trainer.sam2_model.model import Sam2Spec, build_model, inference_mode, make_predictor, save_spec
from trainer.sam2_model.point_decoder import PointDecoder
from trainer.sam2_model.point_decoder import predict as app_predict

SIZE = 128
pytestmark = pytest.mark.usefixtures("reuse_onnx_exports")  # one export of the module's model, checked in each test


@pytest.fixture(scope="module")
def exported(tmp_path_factory, reuse_onnx_exports):
    """(model, predictor holding the photo, onnxruntime session of the model's exported decoder)."""
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", SIZE))
    path = onnx_export.export_decoder(model, tmp_path_factory.mktemp("onnx") / "decoder.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with inference_mode(model):
        predictor = make_predictor(model)
        predictor.set_image(data.coffee())
        yield model, predictor, session


def _onnx(model, predictor, session, points=None, labels=None, box=None):
    """Low-res logits 4 x h x w and scores 4 for a prompt in image pixels, converted as the predictor converts it;
    the graph's image inputs from the predictor's features (onnx_export.image_inputs)."""
    _, coords, point_labels, box_coords = predictor._prep_prompts(points, labels, box, None, normalize_coords=True)
    parts = []
    if box_coords is not None:
        parts.append((box_coords.reshape(1, 2, 2), torch.tensor([[2.0, 3.0]])))
    if coords is not None:
        parts.append((coords.reshape(1, -1, 2), point_labels.reshape(1, -1).float()))
    coords, point_labels = (torch.cat(column, 1).numpy() for column in zip(*parts))
    feed = onnx_export.onnx_inputs(onnx_export.image_inputs(model, predictor._features), coords, point_labels)
    logits, scores = session.run(None, feed)
    return logits[0], scores[0]


def _upsample(predictor, logits: np.ndarray) -> np.ndarray:
    """One mask's low-res logits (h x w) at the photo's size, thresholded, as the predictor does it."""
    upsampled = predictor._transforms.postprocess_masks(torch.from_numpy(logits)[None, None], predictor._orig_hw[-1])
    return (upsampled[0, 0] > 0).numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0  # sam2's predictor gives masks as 0. / 1. floats
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


PROMPTS = {  # in the photo's pixels (400 x 640)
    "one click": dict(points=np.array([[320.0, 200.0]]), labels=np.array([1])),
    "clicks": dict(points=np.array([[320.0, 200.0], [150.0, 80.0], [400.0, 260.0]]), labels=np.array([1, 0, 1])),
    "box": dict(box=np.array([200.0, 100.0, 480.0, 330.0])),
    "box and click": dict(box=np.array([200.0, 100.0, 480.0, 330.0]), points=np.array([[150.0, 80.0]]),
                          labels=np.array([0])),
}


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("multimask", [False, True])
def test_masks_match_sam2s_image_predictor(exported, prompt, multimask):
    model, predictor, session = exported
    p = PROMPTS[prompt]
    with torch.inference_mode():
        masks, scores, _ = predictor.predict(point_coords=p.get("points"), point_labels=p.get("labels"),
                                             box=p.get("box"), multimask_output=multimask)
    logits, onnx_scores = _onnx(model, predictor, session, p.get("points"), p.get("labels"), p.get("box"))
    assert all(0.01 < m.mean() < 0.99 for m in masks)  # real masks, not an empty or full frame that always agrees
    chosen = slice(1, 4) if multimask else slice(0, 1)
    np.testing.assert_allclose(onnx_scores[chosen], scores, atol=1e-4)
    for ours, theirs in zip(logits[chosen], masks):
        assert _iou(_upsample(predictor, ours), theirs) >= 0.99


@pytest.mark.parametrize("prompt", PROMPTS)
def test_the_apps_click_rule_gives_the_apps_mask(exported, prompt):
    """The app shows, for one click, the best-scored of the 3 masks, else the single mask (demo/models.py): the same
    choice made on the graph's outputs gives the app's PointDecoder mask."""
    model, predictor, session = exported
    p = PROMPTS[prompt]
    features = predictor._features
    decoder = PointDecoder(model, features["image_embed"][-1:], [f[-1:] for f in features["high_res_feats"]])
    single_click = p.get("box") is None and len(p["points"]) == 1
    with torch.inference_mode():
        masks, _ = app_predict(predictor, decoder, p.get("points"), p.get("labels"), p.get("box"), single_click, top=1)
    logits, scores = _onnx(model, predictor, session, p.get("points"), p.get("labels"), p.get("box"))
    pick = 1 + int(scores[1:].argmax()) if single_click else 0
    assert _iou(_upsample(predictor, logits[pick]), masks[0]) >= 0.99


def test_cli_exports_a_model_folder_and_refuses_a_folder_without_one(exported, tmp_path, capsys):
    model, _, _ = exported
    save_weights(model.state_dict(), tmp_path / "model" / "model.safetensors")
    save_spec(Sam2Spec("tiny", SIZE), tmp_path / "model")
    assert cli(["export-onnx", str(tmp_path / "model")]) == 0
    assert (tmp_path / "model" / "onnx" / "decoder.onnx").is_file()
    assert "exported:" in capsys.readouterr().out
    assert cli(["export-onnx", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing" in err and "Traceback" not in err


def test_an_export_that_differs_from_pytorch_is_refused_and_leaves_no_file(exported, tmp_path, monkeypatch):
    model, _, _ = exported
    monkeypatch.setattr(onnx_export, "MAX_ABS_DIFF", -1.0)  # any difference at all is too much
    with pytest.raises(onnx_export.ExportError, match="differs from sam2's"):
        onnx_export.export_decoder(model, tmp_path / "decoder.onnx")
    assert list(tmp_path.iterdir()) == []


def test_push_stages_the_decoder_and_a_failed_export_pushes_without_it(exported, tmp_path, monkeypatch):
    """stage_run (what push uploads) holds onnx/decoder.onnx and the card's onnxruntime snippet; when the export
    fails (here the exporter itself; a failed check is test_an_export_that_differs...) the repo is pushed without
    both, with a warning (the app then decodes on the server)."""
    from test_hub_push_pull import _fill_run, _summary

    from hub_cards import stage_run
    from trainer.runlog import RunDir

    model, _, _ = exported
    run = RunDir(tmp_path / "run")
    save_weights(model.state_dict(), run.weights_path)
    save_spec(Sam2Spec("tiny", SIZE), run.path)
    _fill_run(run, "sam2", _summary("sam2", {"miou_box": 0.4}, {"miou_box": 0.6}, "miou_box"))
    repo = stage_run(run.path, tmp_path / "repo", repo_id="someone/decoded")
    assert (repo / "onnx" / "decoder.onnx").is_file() and "onnxruntime.InferenceSession" in (repo / "README.md").read_text()

    def exporter_fails(*args, **kwargs):
        raise RuntimeError("an operator the exporter does not know")

    monkeypatch.setattr(torch.onnx, "export", exporter_fails)
    with pytest.warns(UserWarning, match="pushed without onnx/decoder.onnx.*torch.onnx.export failed"):
        repo = stage_run(run.path, tmp_path / "repo-without", repo_id="someone/not-decoded")
    assert not (repo / "onnx").exists()
    assert "onnxruntime.InferenceSession" not in (repo / "README.md").read_text() and (repo / "sam2.safetensors").is_file()
