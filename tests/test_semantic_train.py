"""The semantic trainer on a real random-init sam2.1 tiny encoder at 128 px, on CPU, with synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.data.sample import DataError, Sample, SegmentationDataset
from trainer.data.synthetic import make_dataset, make_scene
from trainer.precision import resolve
from trainer.augment import policy
from trainer.semantic.batches import LabelledImages, sample_labels
from trainer.semantic.config import SemanticTrainConfig
from trainer.semantic.evaluate import baseline_labels, confusion, scores
from trainer.semantic.labels import label_map, semantic_classes
from trainer.semantic.loop import SemanticTrainer, class_weights
from trainer.semantic.model import SemanticSpec, build_model
from trainer.semantic.objective import SemanticObjective
from trainer.semantic.pipeline import run

SIZE = 128
CLASSES = ["background", "vessel", "liquid"]


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(SemanticSpec(CLASSES, "tiny", SIZE))


def _cfg(**kw) -> SemanticTrainConfig:
    base = dict(image_size=SIZE, no_pretrained=True, batch_size=2, lr=1e-3, warmup_steps=0, progress=False,
                eval=False, overlays=0, save_every=0)
    return SemanticTrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return LabelledImages(make_dataset(3, SIZE, seed=3), SIZE, len(CLASSES), policy("default"), 0, 8, progress=False)


def _box(y0: int, y1: int, x0: int, x1: int, shape=(8, 8)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_label_map_smaller_instance_wins_whatever_the_order():
    whole, part = _box(1, 7, 1, 7), _box(3, 5, 3, 5)  # e.g. a vessel and the liquid inside it
    for masks, ids in (([part, whole], [1, 0]), ([whole, part], [0, 1])):
        labels = label_map(np.stack(masks), np.array(ids))
        assert (labels[4, 4], labels[1, 1], labels[0, 0]) == (2, 1, 0)
    left, right = _box(0, 4, 0, 4), _box(2, 6, 2, 6)  # equal areas: the one listed later wins
    assert label_map(np.stack([left, right]), np.array([0, 1]))[3, 3] == 2
    assert label_map(np.stack([left, right]), np.array([1, 0]))[3, 3] == 1
    assert not label_map(np.zeros((0, 5, 6), bool), np.zeros(0)).any()
    scene = make_scene(4, SIZE)  # liquid (class 1) lies inside its vessel (class 0): it stays visible
    labels = label_map(scene.masks, scene.class_ids)
    liquid = np.asarray(scene.masks[scene.class_ids == 1]).any(0)
    assert liquid.any() and (labels[liquid] == 2).all()


def test_classes_background_first_and_class_agnostic_data_has_two():
    assert semantic_classes(["vessel", "liquid"]) == CLASSES
    assert semantic_classes([]) == ["background", "object"]
    sample = Sample(make_scene(0, 32).image, make_scene(0, 32).masks, np.zeros(len(make_scene(0, 32).masks)), "a.png")
    data = LabelledImages(SegmentationDataset.from_samples([sample], []), 32, 2, policy("none"), 0, progress=False)
    assert set(data.item(0, step=0, seed=0).labels.unique().tolist()) == {0, 1}


def test_scores_from_the_confusion_matrix():
    truth, pred = np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 1]])
    metrics = scores(confusion(truth, pred, 3), CLASSES)
    assert metrics == pytest.approx({"miou": (1 / 2 + 2 / 3) / 2, "pixel_accuracy": 3 / 4, "iou_background": 1 / 2,
                                     "iou_vessel": 2 / 3})  # liquid: in neither, not scored


def test_baseline_masks_take_the_class_of_their_best_matching_truth():
    truth = np.stack([_box(0, 4, 0, 4), _box(4, 8, 4, 8)])
    auto = np.stack([_box(0, 4, 0, 3), _box(5, 8, 4, 8), _box(0, 2, 6, 8)])  # the last overlaps no object
    labels = baseline_labels(auto, truth, np.array([1, 0]))
    assert (labels[1, 1], labels[6, 6], labels[1, 7], labels[1, 3]) == (2, 1, 0, 0)


def test_bad_class_ids_and_empty_data_name_the_file():
    scene = make_scene(1, 32)
    with pytest.raises(DataError, match="synthetic://1: class id 1 is outside the dataset's 1 classes"):
        sample_labels(scene, num_classes=2)
    empty = Sample(np.zeros((32, 32, 3), np.uint8), np.zeros((0, 32, 32), bool), np.zeros(0), "empty.png")
    with pytest.raises(DataError, match="data/empty: none of its 2 training images has an object mask"):
        LabelledImages(SegmentationDataset.from_samples([empty, empty], ["x"], root="data/empty"), 32, 2,
                       policy("none"), 0, progress=False)


def test_class_weights(data):
    assert class_weights("none", data, 3) is None
    balanced = class_weights("balanced", data, 3)
    assert balanced.mean().item() == pytest.approx(1.0) and balanced[0] < balanced[2]  # background is common
    assert class_weights("0.5,1,2", data, 3).tolist() == [0.5, 1.0, 2.0]
    with pytest.raises(ValueError, match="3 non-negative numbers"):
        class_weights("1,2", data, 3)


def test_frozen_encoder_bit_identical_head_trains_cache_equals_recompute(data):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = SemanticTrainer(_cfg(steps=3), model, data, resolve("fp32", "cpu"))
    losses = [trainer.train_step()["loss"] for _ in range(3)]
    after = model.state_dict()
    encoder = [k for k in after if k.startswith("image_encoder.")]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("head."))
    assert all(np.isfinite(losses))

    cache = trainer.objective.cache
    assert cache is not None and cache.misses == len(cache) > 0
    trainer.step = 0  # step 0's images again: their views are in the cache
    (items,) = trainer.micro_batch(0)
    recompute = SemanticObjective(model, trainer.objective.loss, cache=None)
    cached, fresh = trainer.objective.encode(items), recompute.encode(items)
    assert cache.hits > 0
    for a, b in zip(cached["backbone_fpn"], fresh["backbone_fpn"]):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-3)  # the cache stores float16
    with torch.no_grad():
        torch.testing.assert_close(trainer.objective(items), recompute(items), atol=1e-3, rtol=1e-3)


def test_freeze_none_trains_the_encoder(data):
    model = _model()
    before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    trainer = SemanticTrainer(_cfg(steps=1, freeze="none", lr=1e-4), model, data, resolve("fp32", "cpu"))
    assert trainer.objective.cache is None
    trainer.train_step()
    assert any(not torch.equal(before[k], v) for k, v in model.image_encoder.state_dict().items())


def test_resume_two_plus_two_steps_equals_four(tmp_path, one_thread):
    from test_sam2_train import resume_equals_uninterrupted

    weights = resume_equals_uninterrupted(run, _cfg, make_dataset(4, SIZE, seed=1), tmp_path, grad_accum=2)
    init = _model().state_dict()
    assert any(not torch.equal(weights[k], init[k]) for k in weights if k.startswith("head."))  # it trained
