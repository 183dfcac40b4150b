"""hub_cards.card: the README renders, parses back with huggingface_hub, and its metadata is what the Hub expects."""

from __future__ import annotations

import re

import pytest
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard import metadata_load

from hub_cards.card import build_card
from hub_cards.public import hub_id_or_none
from hub_cards.kinds import KINDS, HubError

SUMMARY = {
    "kind": "sam2", "base_model": "facebook/sam2.1-hiera-tiny", "model": {"size": "tiny", "image_size": 1024},
    "dataset": {"path": "someone/labpics", "format": "hf", "num_train": 40, "num_val": 10,
                "class_names": ["vessel", "liquid"], "normalization": "imagenet"},
    "recipe": {"loss": "focal+dice+iou", "prompts": ["box", "point"], "freeze": ["image_encoder"],
               "precision": "bf16", "steps": 500, "batch_size": 4, "lr": 5e-5},
    "metrics": {"before": {"miou_box": 0.4123, "miou_1pt": 0.3, "auto_recall50": 0.2},
                "after": {"miou_box": 0.6345, "miou_1pt": 0.55, "auto_recall50": 0.35}},
    "main_metric": "miou_box", "train_time_s": 321.5,
}


def _saved(tmp_path, summary=SUMMARY, **kw) -> ModelCard:
    build_card(summary, "me/sam2-vessels", **kw).save(tmp_path / "README.md")
    return ModelCard.load(tmp_path / "README.md")


def test_metadata_round_trip(tmp_path):
    card = _saved(tmp_path)
    data = card.data
    assert (data.library_name, data.pipeline_tag, data.license) == ("sam2", "mask-generation", "apache-2.0")
    assert data.base_model == "facebook/sam2.1-hiera-tiny" and data.datasets == ["someone/labpics"]
    assert set(data.tags) >= {"segkit", "sam2", "fine-tuned"}
    assert data.model_name == "sam2-vessels"
    results = {r.metric_type: r for r in data.eval_results}
    assert {k: r.metric_value for k, r in results.items()} == SUMMARY["metrics"]["after"]
    assert {r.task_type for r in data.eval_results} == {"mask-generation"}
    assert {r.dataset_type for r in data.eval_results} == {"someone/labpics"}
    # Offline validation: the raw YAML holds a well-formed model-index, and strict re-parsing accepts it.
    raw = metadata_load(tmp_path / "README.md")
    assert raw["model-index"][0]["name"] == "sam2-vessels"
    assert len(raw["model-index"][0]["results"][0]["metrics"]) == 3
    strict = ModelCardData(**raw, ignore_metadata_errors=False)
    assert strict.to_dict() == data.to_dict()


def test_body_has_recipe_metrics_images_and_usage(tmp_path):
    text = _saved(tmp_path, overlays=["overlays/val_0.png"]).text
    assert "| mIoU, box prompt (`miou_box`) | 0.4123 | 0.6345 | +0.2222 |" in text
    assert "| loss | focal+dice+iou |" in text and "| prompts | box, point |" in text
    assert "| precision | bf16 |" in text and "| steps | 500 |" in text and "| freeze | image_encoder |" in text
    assert "![training curves](curves.png)" in text and "(overlays/val_0.png)" in text
    assert "2 classes: vessel, liquid" in text
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert 'load_model("me/sam2-vessels")' in code
    compile(code, "README.md", "exec")


def test_local_refs_are_not_hub_metadata(tmp_path):
    summary = {**SUMMARY, "base_model": "/ckpt/sam2.1_hiera_tiny.pt", "dataset": {**SUMMARY["dataset"], "path": "/d/labpics/annotations.json"}}
    card = _saved(tmp_path, summary, curves=None)
    assert card.data.base_model is None and card.data.datasets is None
    assert "`/ckpt/sam2.1_hiera_tiny.pt`" in card.text and "curves.png" not in card.text
    assert {r.dataset_name for r in card.data.eval_results} == {"labpics"}


def test_detectron2_card_and_no_metrics(tmp_path):
    summary = {"kind": "detectron2", "base_model": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml (detectron2://x)",
               "dataset": {"path": "/data/coco"}, "recipe": {}, "metrics": {"before": {}, "after": {}},
               "main_metric": "segm_AP"}
    card = _saved(tmp_path, summary)
    assert (card.data.library_name, card.data.pipeline_tag) == ("detectron2", "image-segmentation")
    assert card.data.base_model is None and card.data.eval_results is None
    assert "model = load_model(" in card.text and ".predict(image" in card.text
    with pytest.raises(HubError, match="unknown model kind 'yolo'"):
        build_card({**summary, "kind": "yolo"}, "me/x")


@pytest.mark.parametrize("ref, expected", [
    ("facebook/sam2.1-hiera-tiny", "facebook/sam2.1-hiera-tiny"), ("random-init", None), ("builtin", None),
    ("/abs/path/model.pt", None), ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", None),
    ("a/b/c", None), (None, None), ("bad id/with space", None)])
def test_hub_id_or_none(ref, expected):
    assert hub_id_or_none(ref) == expected


def test_kinds_table():
    assert {k: (v.library_name, v.pipeline_tag, v.main_metric) for k, v in KINDS.items()} == {
        "sam2": ("sam2", "mask-generation", "miou_box"), "detectron2": ("detectron2", "image-segmentation", "segm_AP"),
        "semantic": ("segkit", "image-segmentation", "miou"), "sam2-video": ("sam2", "mask-generation", "jf_mask")}
    for kind in KINDS.values():
        assert "model.safetensors" in kind.allow_patterns and not any("state" in p for p in kind.allow_patterns)
