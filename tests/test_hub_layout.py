"""Pushed repos in each ecosystem's own layout (issue 28): a sam2 / sam2-video repo is laid out like the official
facebook/sam2.1-hiera-* repos (transformers' files at the root, sam2's weights as sam2.safetensors), a detectron2
repo holds a plain cfg.dump(); every segkit loader reads it, and repos pushed before that layout still load.

Real random-init models (sam2.1 tiny, detectron2's shrunk Mask R-CNN) pushed in the test; nothing is mocked.
"""

from __future__ import annotations

import logging
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from onnx_exports import reuse_onnx_exports  # noqa: F401 (a fixture)
from PIL import Image

from hub_cards import load_model, pull, stage_run
from test_hub_push_pull import _fill_run, _summary
from trainer.checkpoint import CheckpointError, load_weights, save_weights
from trainer.runlog import RunDir
from trainer.sam2_model import hf_format
from trainer.sam2_model.model import Sam2Spec, build_model, make_predictor, save_spec

SIZE = 256
pytestmark = pytest.mark.usefixtures("reuse_onnx_exports")  # each sam2 push stages the same decoder
MIN_IOU = 0.99
MODEL_TYPE_WARNING = "You are using a model of type"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@contextmanager
def transformers_log() -> Iterator[list[str]]:
    """Every message transformers logs meanwhile (its loggers do not reach pytest's caplog)."""
    messages: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _hub_snapshot(run_dir: Path, repo_id: str, cache: Path) -> Path:
    """stage_run into a Hub cache laid out like a download (what snapshot_download / hf_hub_download read offline)."""
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    repo = stage_run(run_dir, storage / "snapshots" / COMMIT, repo_id=repo_id)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(COMMIT)
    return repo


@pytest.fixture()
def offline_hub(tmp_path, monkeypatch) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def _sam2_run(root: Path, kind: str) -> tuple[Path, torch.nn.Module]:
    from trainer.video.model import VideoSpec

    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", SIZE)).eval()
    run = RunDir(root)
    save_weights(model.state_dict(), run.weights_path)
    save_spec(VideoSpec("tiny", SIZE) if kind == "sam2-video" else Sam2Spec("tiny", SIZE), run.path)
    main = "jf_mask" if kind == "sam2-video" else "miou_box"
    _fill_run(run, kind, _summary(kind, {main: 0.4}, {main: 0.6}, main))
    return run.path, model


@pytest.fixture(scope="module")
def sam2_run(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    return _sam2_run(tmp_path_factory.mktemp("sam2_run"), "sam2")


@pytest.fixture(scope="module")
def video_run(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    return _sam2_run(tmp_path_factory.mktemp("video_run"), "sam2-video")


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    """A held-out window of the built-in coins photo (never trained on) and its coins' boxes (xyxy)."""
    from trainer.data.builtin import builtin_samples

    sample = next(s for s in builtin_samples() if s.split == "heldout" and len(s.masks) >= 2)
    boxes = []
    for mask in sample.masks.dense():
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return sample.image, np.array(boxes, dtype=np.float32)


def _same_weights(expected: dict[str, torch.Tensor], model: torch.nn.Module) -> bool:
    """Every tensor of `expected` in `model`, bit for bit (its state_dict taken once: a tiny sam2's is ~500 tensors)."""
    state = model.state_dict()
    return all(torch.equal(v, state[k]) for k, v in expected.items())


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum()) if (a | b).any() else 1.0


def _sam2_box_masks(model: torch.nn.Module, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    predictor = make_predictor(model)
    predictor.set_image(image)
    masks, _, _ = predictor.predict(box=boxes, multimask_output=False)
    return masks.reshape(len(boxes), *image.shape[:2]) > 0


def _old_layout(run_dir: Path, dest: Path) -> Path:
    """A repo as pushed before the official layout: sam2's keys in the root's model.safetensors, transformers'
    copy in transformers/ (what stage_run wrote until issue 28)."""
    dest.mkdir(parents=True)
    for name in ("model.safetensors", "model_config.yaml", "summary.json"):
        shutil.copy2(run_dir / name, dest / name)
    hf_format.write_hf_folder(load_weights(run_dir / "model.safetensors"), "tiny", SIZE, dest / "transformers")
    return dest


# The layout -------------------------------------------------------------------------------------------------

def test_sam2_repo_is_in_the_official_layout(sam2_run, video_run, tmp_path):
    import json

    from hub_cards.kinds import ALLOW_PATTERNS, SAM2_WEIGHTS_NAME

    assert SAM2_WEIGHTS_NAME == hf_format.SAM2_WEIGHTS_NAME and SAM2_WEIGHTS_NAME in ALLOW_PATTERNS

    for (run_dir, live), model_type in ((sam2_run, "sam2"), (video_run, "sam2_video")):
        repo = stage_run(run_dir, tmp_path / model_type)
        names = {p.name for p in repo.iterdir()}
        assert {"config.json", "model.safetensors", "processor_config.json", "sam2.safetensors",
                "model_config.yaml", "README.md"} <= names and "transformers" not in names
        assert json.loads((repo / "config.json").read_text())["model_type"] == model_type
        sam2_state = load_weights(repo / "sam2.safetensors")
        assert all(torch.equal(sam2_state[k], v) for k, v in live.state_dict().items())
        hf_keys = set(load_weights(repo / "model.safetensors"))
        memory = {k for k in hf_format.sam2_to_hf(live.state_dict()) if k.startswith(("memory_", "object_pointer"))}
        assert memory and (memory <= hf_keys) == (model_type == "sam2_video")  # Sam2Model's file: image part only


# transformers on the root --------------------------------------------------------------------------------------

def test_transformers_loads_the_root_with_sam2_masks_and_no_warning(sam2_run, photo, tmp_path, one_thread):
    from transformers import Sam2Model, Sam2Processor, Sam2VideoModel, pipeline

    run_dir, live = sam2_run
    repo = stage_run(run_dir, tmp_path / "repo")
    with transformers_log() as log:
        model, info = Sam2Model.from_pretrained(repo, output_loading_info=True)
        processor = Sam2Processor.from_pretrained(repo)
        generator = pipeline("mask-generation", model=str(repo), device="cpu")
    assert not [m for m in log if MODEL_TYPE_WARNING in m], log
    assert not any(info.values()), info
    assert type(generator.model).__name__ == "Sam2Model"
    with transformers_log() as log:  # the check above can fail: a sam2 config into Sam2VideoModel is reported
        Sam2VideoModel.from_pretrained(repo)
    assert [m for m in log if MODEL_TYPE_WARNING in m]

    image, boxes = photo
    ours = _sam2_box_masks(load_model(repo)[0], image, boxes)
    inputs = processor(images=image, input_boxes=[boxes.tolist()], return_tensors="pt")
    with torch.no_grad():
        out = model.eval()(**inputs, multimask_output=False)
    theirs = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][:, 0].numpy()
    assert theirs.shape == ours.shape == (len(boxes), *image.shape[:2])
    assert ours.any(axis=(1, 2)).all() and not ours.all(axis=(1, 2)).any(), "non-trivial masks to compare"
    ious = [_iou(a, b) for a, b in zip(ours, theirs)]
    assert min(ious) >= MIN_IOU, ious
    masks = generator(Image.fromarray(image), points_per_crop=4, pred_iou_thresh=0, stability_score_thresh=0)["masks"]
    assert len(masks) >= 1 and tuple(masks[0].shape) == image.shape[:2]


def test_sam2_video_repo_loads_in_sam2_video_model_and_every_segkit_video_loader(video_run, offline_hub):
    from transformers import Sam2VideoModel

    run_dir, live = video_run
    _hub_snapshot(run_dir, "someone/sam2-video", offline_hub)
    repo = pull("someone/sam2-video", kind="sam2-video")
    with transformers_log() as log:
        model, info = Sam2VideoModel.from_pretrained(repo, output_loading_info=True)
    assert not [m for m in log if MODEL_TYPE_WARNING in m], log
    assert not any(info.values()), info
    expected = hf_format.sam2_to_hf(live.state_dict())
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items() if k in expected)
    predictor, spec = load_model(repo, kind="sam2-video")  # sam2's SAM2VideoPredictor with sam2.safetensors
    assert spec.kind == "sam2-video" and _same_weights(live.state_dict(), predictor)
    segkit_code, hf_code, sam2_code = re.findall(r"```python\n(.*?)```", (repo / "README.md").read_text(), re.S)
    assert "strict=True" in sam2_code
    for code, name in ((hf_code, "model"), (sam2_code, "predictor")):  # the card's snippets, as written
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
        state = scope[name].state_dict()
        own = expected if name == "model" else live.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in own.items()), name


# Every loader, both layouts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["official", "before-issue-28"])
def test_every_loader_reads_both_layouts(layout, sam2_run, photo, tmp_path, monkeypatch):
    from demo import models as demo_models
    from trainer.cli import main
    from trainer.evaluate import evaluate
    from trainer.semantic.model import build_sam2
    from trainer.video.model import load_folder as load_video

    run_dir, live = sam2_run
    repo = (stage_run(run_dir, tmp_path / "repo") if layout == "official"
            else _old_layout(run_dir, tmp_path / "repo"))
    expected = live.state_dict()
    same = lambda model: _same_weights(expected, model)  # noqa: E731
    assert pull(f"file:{repo}", kind="sam2") == repo and main(["pull", str(repo), "--kind", "sam2"]) == 0
    assert same(load_model(repo)[0])
    assert same(build_model(Sam2Spec("tiny", SIZE), repo))  # --weights FOLDER (the sam2 and video trainers)
    assert same(build_sam2("tiny", SIZE, repo, torch.device("cpu")))  # the semantic trainer's encoder
    assert same(load_video(repo)[0])  # the video tab / trainer track with an image model's folder
    demo_models.clear_caches()
    monkeypatch.setenv("SEGKIT_OPEN", "1")  # a folder by its path: the app's open rules (a trusted local run)
    try:
        handle = demo_models.get_sam2(str(repo))
        assert same(handle.model) and "converted" not in handle.note
    finally:
        demo_models.clear_caches()
    from trainer.data import write_coco
    from trainer.data.synthetic import make_dataset

    results = evaluate(str(repo), str(write_coco(make_dataset(1, 96, seed=7), tmp_path / "coco")), device="cpu")
    assert results["kind"] == "sam2" and 0 <= results["metrics"]["miou_box"] <= 1


def test_a_pull_needs_sam2_weights_only(sam2_run, offline_hub):
    """segkit's loaders read sam2.safetensors, so a pull of an official-layout repo skips transformers' copy: a
    snapshot without the root's model.safetensors is a complete sam2 model."""
    repo = _hub_snapshot(sam2_run[0], "someone/sam2-lean", offline_hub)
    (repo / "model.safetensors").unlink()
    assert pull("someone/sam2-lean", kind="sam2") == repo
    model, _ = load_model("someone/sam2-lean")
    assert _same_weights(sam2_run[1].state_dict(), model)


def test_a_wrong_load_fails_loudly(sam2_run, tmp_path):
    repo = stage_run(sam2_run[0], tmp_path / "repo")
    (repo / "sam2.safetensors").unlink()  # left: transformers' model.safetensors, which is not sam2's key layout
    with pytest.raises(CheckpointError, match="does not match this model"):
        load_model(repo)
    other = build_model(Sam2Spec("small", SIZE)).state_dict()
    save_weights(other, repo / "sam2.safetensors")  # sam2 weights of another size than model_config.yaml says
    with pytest.raises(CheckpointError, match="does not match this model"):
        load_model(repo)


# The card's snippets, executed as written, give the same masks ------------------------------------------------

def test_sam2_card_snippets_all_give_the_same_masks(sam2_run, offline_hub, tmp_path, monkeypatch):
    _hub_snapshot(sam2_run[0], "someone/sam2-three-ways", offline_hub)
    repo = pull("someone/sam2-three-ways", kind="sam2")
    card = (repo / "README.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", card, re.S)
    assert len(snippets) == 4 and "strict=True" in snippets[2] and "onnx/decoder.onnx" in snippets[3]
    assert 'Sam2Model.from_pretrained("someone/sam2-three-ways")' in snippets[1] and "subfolder" not in card
    monkeypatch.chdir(tmp_path)
    Image.fromarray(make_photo_window()).save("your_image.jpg")
    masks = []
    for code in snippets:
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
        masks.append(np.asarray(scope["masks"])[0] > 0)  # 1 x H x W each (logits, floats or bools)
    assert masks[0].any() and not masks[0].all()
    for other in masks[1:]:
        assert _iou(masks[0], other) >= MIN_IOU


def make_photo_window() -> np.ndarray:
    from trainer.data.builtin import builtin_samples

    return next(s for s in builtin_samples() if s.split == "heldout").image


def test_detectron2_user_loads_the_repo_with_get_cfg_and_default_predictor(offline_hub, tmp_path, monkeypatch):
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor
    from safetensors.torch import load_file
    from test_d2_helpers import export_tiny_model

    run = RunDir(tmp_path / "d2_run")
    live = export_tiny_model(run.path)
    _fill_run(run, "detectron2", _summary("detectron2", {"segm_AP": 1.0}, {"segm_AP": 2.0}, "segm_AP"))
    _hub_snapshot(run.path, "someone/maskrcnn", offline_hub)
    repo = pull("someone/maskrcnn", kind="detectron2")
    assert {"detectron2_config.yaml", "model.safetensors", "model_config.yaml"} <= {p.name for p in repo.iterdir()}

    cfg = get_cfg()
    cfg.merge_from_file(str(repo / "detectron2_config.yaml"))  # a plain cfg.dump(): no segkit keys
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    predictor = DefaultPredictor(cfg)
    predictor.model.load_state_dict(load_file(repo / "model.safetensors"), strict=True)
    image = make_photo_window()
    theirs = predictor(image[:, :, ::-1])["instances"].to("cpu")
    ours = load_model(repo).predict(image, score_threshold=0.0)
    assert len(ours["scores"]) > 0
    np.testing.assert_array_equal(theirs.pred_masks.numpy(), ours["masks"])
    np.testing.assert_array_equal(theirs.scores.numpy(), ours["scores"])
    np.testing.assert_array_equal(live.predict(image, score_threshold=0.0)["masks"], ours["masks"])

    code = re.findall(r"```python\n(.*?)```", (repo / "README.md").read_text(), re.S)[1]
    assert "strict=True" in code and 'hf_hub_download("someone/maskrcnn", "detectron2_config.yaml")' in code
    monkeypatch.chdir(tmp_path)
    Image.fromarray(image).save("your_image.jpg")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # runs as written (the repo's own score threshold)
    assert scope["instances"].image_size == image.shape[:2]
