"""A semantic run -> local hub -> pull -> the same class maps; its card (classes, colours, baseline) and usage
snippet; the `evaluate` entry point of its kind. A real (random-init encoder) run, 2 steps at 128 px."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from PIL import Image

from hub_cards import HubError, list_local_models, load_model, push_run
from hub_cards.kinds import KINDS
from trainer.data.synthetic import make_dataset, make_scene


@pytest.fixture(scope="module")
def semantic_run(tmp_path_factory):
    from trainer.semantic.config import SemanticTrainConfig
    from trainer.semantic.pipeline import run

    cfg = SemanticTrainConfig(image_size=128, no_pretrained=True, steps=2, batch_size=2, warmup_steps=0,
                              auto_points_per_side=2, overlays=1, progress=False,
                              out=str(tmp_path_factory.mktemp("semantic_run")))
    result = run(cfg, make_dataset(5, 96, seed=5))
    assert result.status == "finished"
    return result


@pytest.fixture()
def local_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_LOCAL_HUB", str(tmp_path / "local_hub"))
    return tmp_path / "local_hub"


def test_push_pull_same_class_maps_and_listed(semantic_run, local_hub):
    from trainer.semantic.model import load_folder

    dest = Path(push_run(semantic_run.path, "local:me/semantic-vessels"))
    assert (dest / "overlays" / "val_00.png").is_file() and not (dest / "state").exists()
    model = load_model("me/semantic-vessels", kind="semantic")
    live = load_folder(semantic_run.path)
    image = make_scene(9, 100).image
    np.testing.assert_array_equal(model.predict(image), live.predict(image))
    assert model.predict(image).shape == (100, 100)
    assert model.class_names == ["background", "vessel", "liquid"]
    [listed] = list_local_models(kind="semantic")
    assert (listed.name, listed.main_metric) == ("me/semantic-vessels", "miou")
    assert listed.value == semantic_run.summary["metrics"]["after"]["miou"]
    with pytest.raises(HubError, match="this is a semantic model, not a sam2 model"):
        load_model("me/semantic-vessels", kind="sam2")


def test_card_lists_classes_with_colours_metrics_and_baseline(semantic_run, tmp_path):
    dest = Path(push_run(semantic_run.path, f"file:{tmp_path / 'repo'}"))
    card = ModelCard.load(dest / "README.md")
    assert (card.data.library_name, card.data.pipeline_tag) == ("segkit", "image-segmentation")
    assert {r.metric_type for r in card.data.eval_results} == {"miou", "pixel_accuracy"}
    colours = [c["color"] for c in semantic_run.summary["classes"]]
    for index, (name, colour) in enumerate(zip(["background", "vessel", "liquid"], colours)):
        assert f"| {index} | {name} | `{colour}` |" in card.text
    assert "| mean IoU over classes (`miou`) |" in card.text and "IoU, class vessel (`iou_vessel`)" in card.text
    baseline = semantic_run.summary["baseline"]["metrics"]["miou"]
    assert "Promptless baseline" in card.text and f"| mean IoU over classes (`miou`) | {baseline:.4g} |" in card.text
    assert json.loads((dest / "metrics.json").read_text()) == semantic_run.summary["metrics"]["after"]


def test_card_usage_snippet_runs(semantic_run, local_hub, tmp_path, monkeypatch):
    dest = Path(push_run(semantic_run.path, "local:me/snippet"))
    code = re.search(r"```python\n(.*?)```", (dest / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    Image.fromarray(make_scene(2, 80).image).save("your_image.jpg")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["labels"].shape == (80, 80) and scope["labels"].max() < 3


def test_kind_evaluator_gives_the_summary_metric_keys(semantic_run):
    dataset = make_dataset(5, 96, seed=5)
    metrics = KINDS["semantic"].evaluate(semantic_run.path, dataset.split(0.2, 0)[1])
    assert metrics == pytest.approx(semantic_run.summary["metrics"]["after"])
    with pytest.raises(ValueError, match=r"classes \['coin'\] are not the model's \['vessel', 'liquid'\]"):
        from trainer.data.builtin import builtin_samples

        KINDS["semantic"].evaluate(semantic_run.path, builtin_samples())
