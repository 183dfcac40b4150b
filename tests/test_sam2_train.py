"""The SAM2 trainer on a real random-init sam2.1 tiny at 128 px, on CPU, with synthetic scenes."""

import warnings

import numpy as np
import pytest
import torch

from trainer.augment import policy
from trainer.checkpoint import CheckpointError, load_weights, save_weights
from trainer.data.sample import DataError, Sample, SegmentationDataset
from trainer.data.synthetic import make_dataset
from trainer.engine.feature_cache import FeatureCache
from trainer.engine.images import TrainingImages, usable_indices
from trainer.engine.loop import TrainingStopped
from trainer.precision import resolve
from trainer.runlog import RunDir
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.pipeline import run
from trainer.sam2_ft.trainer import PARTS, Sam2Trainer, checkpoint_clicks
from trainer.sam2_model.forward import encode_images, image_features, preprocess
from trainer.sam2_model.model import Sam2Spec, build_model, make_predictor

SIZE = 128


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(Sam2Spec("tiny", SIZE), train=True)


def _cfg(**kw) -> Sam2TrainConfig:
    base = dict(image_size=SIZE, no_pretrained=True, batch_size=2, lr=1e-4, warmup_steps=0, progress=False,
                eval=False, overlays=0)
    return Sam2TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return TrainingImages(make_dataset(2, SIZE, seed=3), SIZE, policy("default"), seed=0, views=8, progress=False)


def test_image_features_match_sam2_predictor():
    model = _model().eval()
    image = make_dataset(1, SIZE)[0].image
    predictor = make_predictor(model)
    with torch.no_grad():
        predictor.set_image(image)
        ours = image_features(model, encode_images(model, preprocess(model, [image])))
    torch.testing.assert_close(ours.image_embed, predictor._features["image_embed"])
    for a, b in zip(ours.high_res, predictor._features["high_res_feats"]):
        torch.testing.assert_close(a, b)


def test_feature_cache_returns_what_recomputing_returns(data):
    model = _model().eval()
    images = [data.dataset[0].image, data.dataset[1].image]
    compute = lambda rows: encode_images(model, preprocess(model, [images[r] for r in rows]))
    cache = FeatureCache()
    first = cache.get_batch([(0, False), (1, False)], compute)
    again = cache.get_batch([(1, False), (0, False)], compute)
    with torch.no_grad():
        fresh = compute([1, 0])
    assert (cache.misses, cache.hits, len(cache)) == (2, 2, 2)
    assert list(again) == ["backbone_fpn"]  # position encodings are not stored: the same for every image
    for cached, direct in zip(again["backbone_fpn"], fresh["backbone_fpn"]):
        torch.testing.assert_close(cached, direct, atol=2e-3, rtol=1e-3)  # stored in float16
    torch.testing.assert_close(first["backbone_fpn"][2][0], again["backbone_fpn"][2][1])
    exact = FeatureCache(dtype=torch.float32)
    exact.get_batch([(0, False), (1, False)], compute)
    assert cache.nbytes * 2 == exact.nbytes


def test_float16_cache_keeps_the_loss_of_a_float32_cache(data):
    from trainer.engine.images import make_items
    from trainer.sam2_ft.objective import Sam2Objective

    model = _model()
    losses = []
    for dtype in (torch.float16, torch.float32):
        objective = Sam2Objective(model, "dice_bce_iou", 1, FeatureCache(dtype=dtype))
        items = make_items(data, [0, 1], step=0, seed=0, max_objects=4)
        objective(items, "box")  # fills the cache
        items = make_items(data, [0, 1], step=0, seed=0, max_objects=4)
        losses.append(objective(items, "box"))
    torch.testing.assert_close(losses[0], losses[1], atol=1e-3, rtol=1e-3)


def test_loss_falls_when_overfitting_two_images(data):
    trainer = Sam2Trainer(_cfg(steps=40, lr=3e-4, prompts="box,points", correction_clicks=0), _model(), data,
                      resolve("fp32", "cpu"))
    losses = [trainer.train_step()["loss"] for _ in range(40)]
    assert trainer.objective.cache is not None and trainer.objective.cache.hits > 0
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:8]), losses


@pytest.mark.parametrize("freeze", ["image_encoder,prompt_encoder", "mask_decoder"])
def test_frozen_parts_stay_bit_identical(data, freeze):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Sam2Trainer(_cfg(steps=2, freeze=freeze, prompts="point,mask"), model, data, resolve("fp32", "cpu"))
    trainer.train_step()
    trainer.train_step()
    after = model.state_dict()
    for part, attr in PARTS.items():
        keys = [k for k in after if k.startswith(attr + ".")]
        same = all(torch.equal(before[k], after[k]) for k in keys)
        assert same == (part in freeze), part
    video_only = [k for k in after if k.startswith(("memory_attention.", "memory_encoder."))]
    assert video_only and all(torch.equal(before[k], after[k]) for k in video_only)


def test_non_finite_losses_skip_steps_then_stop(data):
    model = _model()
    with torch.no_grad():
        model.sam_mask_decoder.iou_token.weight.fill_(float("nan"))
    trainer = Sam2Trainer(_cfg(steps=10, max_bad_steps=3), model, data, resolve("fp32", "cpu"))
    decoder_before = {k: v.clone() for k, v in model.sam_mask_decoder.state_dict().items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert trainer.train_step()["skipped"] == 1
        assert trainer.train_step()["skipped"] == 1
        with pytest.raises(TrainingStopped, match="3 non-finite steps in a row"):
            trainer.train_step()
    assert sum("non-finite" in str(w.message) for w in caught) == 3
    for k, v in model.sam_mask_decoder.state_dict().items():
        assert torch.equal(v, decoder_before[k]) or torch.isnan(v).all(), k


def test_checkpoint_of_another_size_is_a_clear_error(tmp_path):
    path = save_weights(_model().state_dict(), tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model.safetensors: checkpoint does not match.*(missing|shape)"):
        build_model(Sam2Spec("small", SIZE), path)


def test_dataset_without_objects_is_a_clear_error():
    empty = Sample(np.zeros((32, 32, 3), np.uint8), np.zeros((0, 32, 32), bool), np.zeros(0), "empty.png")
    ds = SegmentationDataset.from_samples([empty, empty], ["thing"], root="data/empty")
    with pytest.raises(DataError, match="data/empty: none of its 2 training images has an object mask"):
        usable_indices(ds, progress=False)


def resume_equals_uninterrupted(run, make_cfg, dataset, tmp_path, **kw) -> dict:
    """4 steps in one go vs 2, a pause, and 2 more after --resume: bitwise the same weights and one log of steps
    1..4. Returns the weights."""
    whole = run(make_cfg(out=str(tmp_path / "whole"), steps=4, **kw), dataset)
    first = run(make_cfg(out=str(tmp_path / "split"), steps=4, stop_after=2, **kw), dataset)
    assert first.status == "paused"
    resumed = run(make_cfg(out=str(tmp_path / "split"), steps=4, resume=True, **kw), dataset)
    assert (whole.status, resumed.status) == ("finished", "finished")
    a, b = load_weights(whole.path / "model.safetensors"), load_weights(resumed.path / "model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bitwise
    assert [r["step"] for r in RunDir(resumed.path).read_metrics()] == [1, 2, 3, 4]
    return a


def test_resume_two_plus_two_steps_equals_four(tmp_path, one_thread):
    weights = resume_equals_uninterrupted(run, _cfg, make_dataset(4, SIZE, seed=1), tmp_path, grad_accum=2,
                                          save_every=0, correction_clicks=1)
    init = _model().state_dict()
    assert any(not torch.equal(weights[k], init[k]) for k in weights)  # training did something


def test_clicks_are_checkpointed_only_for_a_large_step():
    """The default 1024-px recipe (2 × 8 objects × 7 passes) needs it (11.2 GB without); the Space's small job and
    the 256-px quickstart do not, and would only pay the recomputation."""
    assert checkpoint_clicks(Sam2TrainConfig())
    assert not checkpoint_clicks(Sam2TrainConfig(image_size=512))  # 112 passes of a quarter the pixels: 28
    assert checkpoint_clicks(Sam2TrainConfig(image_size=512, batch_size=4))
    assert not checkpoint_clicks(Sam2TrainConfig(max_objects=4, correction_clicks=2))
    assert not checkpoint_clicks(Sam2TrainConfig(image_size=256))
    assert not checkpoint_clicks(Sam2TrainConfig(grad_accum=2, max_objects=2))


@pytest.fixture(scope="module")
def crowded():
    """Two images of 6 objects: more than a checkpointed click recomputes at once (objective.RECOMPUTED_OBJECTS)."""
    from data_factories import CLASS_NAMES, scene

    samples = [Sample(image, np.stack(masks), np.array(ids), f"s{i}")
               for i, (image, masks, ids) in enumerate(scene(i, SIZE, n_objects=6) for i in range(2))]
    return TrainingImages(SegmentationDataset.from_samples(samples, CLASS_NAMES), SIZE, policy("default"), seed=0,
                          views=8, progress=False)


def _assert_same_grads(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys() and want
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=1e-5)


def test_checkpointed_clicks_give_the_same_loss_and_gradients(crowded, one_thread):
    """When a step is large (loop.checkpoint_clicks) each click's decoder pass is recomputed in backward, a few
    objects at a time (memory): same numbers as keeping it."""
    from trainer.engine.images import make_items
    from trainer.sam2_ft.objective import RECOMPUTED_OBJECTS, Sam2Objective

    model = _model()
    results = []
    for checkpointed in (False, True):
        model.zero_grad(set_to_none=True)
        objective = Sam2Objective(model, "dice_bce_iou", correction_clicks=2, checkpoint_clicks=checkpointed)
        items = make_items(crowded, [0, 1], step=3, seed=0, max_objects=6)
        assert min(len(it.masks) for it in items) > RECOMPUTED_OBJECTS  # each image recomputed in groups
        loss = objective(items, "points")
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (ckpt, ckpt_grads) = results
    torch.testing.assert_close(ckpt, plain)
    _assert_same_grads(ckpt_grads, plain_grads)


def test_object_groups_split_each_image_evenly():
    from trainer.sam2_ft.objective import object_groups

    assert object_groups([8, 5, 1], most=4) == [(0, slice(0, 4)), (0, slice(4, 8)), (1, slice(8, 10)),
                                                (1, slice(10, 13)), (2, slice(13, 14))]


def test_a_large_step_backpropagates_image_by_image_with_the_same_loss_and_gradients(crowded, one_thread):
    """A large step (checkpointed clicks) runs forward and backward one image at a time (Sam2Trainer.split, the
    loop accumulating): the loss and gradients of the whole micro-batch at once."""
    results = []
    for large in (False, True):
        trainer = Sam2Trainer(_cfg(steps=1, max_objects=6, correction_clicks=2, clip_grad=0.0), _model(), crowded,
                              resolve("fp32", "cpu"))
        trainer.objective.checkpoint_clicks = large  # what checkpoint_clicks(cfg) says of a 1024-px default step
        assert len(trainer.split(trainer.micro_batch(0))) == (2 if large else 1)
        record = trainer.train_step()
        results.append((record["loss"], {n: p.grad for n, p in trainer.model.named_parameters()
                                         if p.grad is not None}))
    (plain, plain_grads), (split, split_grads) = results
    assert split == pytest.approx(plain, rel=1e-6)
    _assert_same_grads(split_grads, plain_grads)


def test_bf16_step_on_cpu_reads_the_float16_cache(data):
    trainer = Sam2Trainer(_cfg(steps=2, precision="bf16"), _model(), data, resolve("bf16", "cpu"))
    records = [trainer.train_step() for _ in range(2)]
    assert all(np.isfinite(r["loss"]) for r in records) and trainer.objective.cache.misses > 0
