"""`python -m trainer detectron2` end to end on CPU: real (tiny) Mask R-CNN, synthetic data, few iterations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import torch
from test_d2_helpers import tiny_config, tiny_spec
from trainer.d2_ft.model import build_cfg
from trainer.d2_ft.model import load_folder
from trainer.d2_ft.pipeline import run
from trainer.data.sample import DataError, SampleRef, SegmentationDataset
from trainer.data.synthetic import make_dataset
from trainer.runlog import RunDir


@pytest.fixture(scope="module")
def data():
    return make_dataset(n_images=6, size=128, seed=0)  # 4 train / 2 val


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory, data):
    """Session 1 trains 8 iterations (checkpoints at 4 and 8); session 2 resumes it to 14."""
    out = tmp_path_factory.mktemp("d2_run")
    first = run(tiny_config(out, steps=8, eval_every=4), data)
    metrics_after_first = RunDir(out).read_metrics()
    second = run(tiny_config(out, steps=14, eval_every=0, resume=True), data)
    return out, first, second, metrics_after_first


def _losses(records):
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def test_run_folder_and_summary(resumed_run):
    out, first, _, _ = resumed_run
    for name in ("config.yaml", "model_config.yaml", "model.safetensors", "metrics.jsonl", "curves.png",
                 "summary.json"):
        assert (out / name).is_file(), name
    assert list((out / "overlays").glob("*.png"))
    assert RunDir(out).read_config()["kind"] == "detectron2"
    summary = first.summary
    assert summary["kind"] == "detectron2" and summary["main_metric"] == "segm_AP"
    assert summary["base_model"] == "random-init"
    assert summary["model"]["norm"] == "GN" and summary["dataset"]["class_names"] == ["vessel", "liquid"]
    assert (summary["dataset"]["num_train"], summary["dataset"]["num_val"]) == (4, 2)
    assert summary["recipe"]["steps"] == 8 and summary["iters_per_s"] > 0
    assert json.loads((out / "summary.json").read_text())["recipe"]["steps"] == 14  # the resumed session


def test_coco_ap_is_computed_and_finite(resumed_run):
    _, first, second, metrics = resumed_run
    for when in ("before", "after"):
        for key in ("bbox_AP", "segm_AP", "segm_AP50"):
            value = first.summary["metrics"][when][key]
            assert math.isfinite(value) and 0 <= value <= 100, (when, key, value)
    evals = [r["step"] for r in metrics if "val_segm_AP" in r]
    assert evals == [0, 4, 8], "before, periodic (eval_every=4) and final evaluations"
    assert second.summary["metrics"]["before"] == first.summary["metrics"]["before"], "resume keeps 'before'"


def test_loss_falls_when_overfitting(resumed_run):
    records = [r for r in RunDir(resumed_run[0]).read_metrics() if "loss" in r]
    assert len(records) == 14 and all(math.isfinite(r["loss"]) for r in records)

    def early_late(key):
        values = [r[key] for r in records]
        return np.mean(values[:3]), np.mean(values[-4:])

    early, late = early_late("loss")
    assert late < 0.9 * early, (early, late)
    # The classification terms fall steadily; box regression grows noisy as more proposals become foreground.
    for key in ("loss_cls", "loss_mask", "loss_rpn_cls"):
        early, late = early_late(key)
        assert late < early, (key, early, late)


def test_resume_continues_from_saved_iteration(resumed_run):
    out, _, _, first_metrics = resumed_run
    first_steps = [s for s, _ in _losses(first_metrics)]
    all_steps = [s for s, _ in _losses(RunDir(out).read_metrics())]
    assert first_steps == list(range(1, 9))
    assert all_steps == list(range(1, 15)), "the second session starts at iteration 9, no step repeated"
    assert (out / "state" / "last_checkpoint").read_text().strip() == "model_final.pth"


def test_exported_run_folder_loads_and_predicts(resumed_run, data):
    out, *_ = resumed_run
    segmenter = load_folder(out)
    result = segmenter.predict(data[0].image, score_threshold=0.0)
    assert result["masks"].shape[1:] == (128, 128) and len(result["class_names"]) == len(result["scores"])


def test_two_process_run(tmp_path, data):
    result = run(tiny_config(tmp_path, steps=3, save_every=0, overlays=0, num_workers=2), data)
    assert result.summary["recipe"]["processes"] == 2
    steps = [s for s, _ in _losses(RunDir(tmp_path).read_metrics())]
    assert steps == [1, 2, 3]
    assert math.isfinite(result.summary["metrics"]["after"]["segm_AP"])
    load_folder(tmp_path)  # the main process exported a loadable model


def test_bad_data_stops_before_training(tmp_path, data):
    def broken():
        raise DataError("/data/img_007.png", "cannot identify image file")

    bad = SegmentationDataset(data.class_names, [*data.refs[:3], SampleRef("/data/img_007.png", broken)])
    with pytest.raises(DataError, match="img_007.png: cannot identify image file"):
        run(tiny_config(tmp_path), bad)
    assert not (tmp_path / "state" / "last_checkpoint").exists()


def test_weights_of_another_class_count_are_refused(resumed_run, tmp_path):
    from trainer.checkpoint import CheckpointError

    out, *_ = resumed_run
    three = make_dataset(n_images=3, size=128)
    three.class_names = ["vessel", "liquid", "cap"]
    with pytest.raises(CheckpointError, match="trained for 2 classes.*the data has 3"):
        run(tiny_config(tmp_path, no_pretrained=False, weights=str(out)), three)


def test_cli_reports_the_data_layers_error(tmp_path, capsys):
    from trainer.cli import main

    rc = main(["detectron2", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), "--no-pretrained",
               "--depth", "18", "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "missing: no such file or folder" in err, err
    assert not (tmp_path / "run").exists(), "bad input leaves no half-made run folder"


def test_cli_trains_builtin_data_and_pushes(tmp_path, capsys):
    """The whole path a user takes: real photos -> train -> push to a folder -> load it back like the demo."""
    from hub_cards.fetch import load_model
    from trainer.cli import main
    from test_d2_helpers import SIZE, TINY_OPTS

    out, pushed = tmp_path / "run", tmp_path / "pushed"
    rc = main(["detectron2", "--data", "builtin", "--out", str(out), "--no-pretrained", "--depth", "18",
               "--min-size", str(SIZE), "--max-size", str(SIZE), "--steps", "2", "--lr", "0.01", "--roi-batch", "32",
               "--loader-workers", "0", "--device", "cpu", "--precision", "fp32", "--no-progress", "--overlays", "1",
               "--push-to", f"file:{pushed}", "--opts", *TINY_OPTS])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "segm AP" in printed and f"pushed: {pushed}" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["class_names"] == ["coin"] and summary["dataset"]["num_train"] > 0
    segmenter = load_model(f"file:{pushed}", kind="detectron2")
    assert segmenter.class_names == ["coin"]
    assert segmenter.predict(np.zeros((96, 80, 3), np.uint8), 0.0)["masks"].shape[1:] == (96, 80)


def test_bad_opts_are_one_clear_error(tmp_path, data):
    with pytest.raises(ValueError, match="--opts MODEL.NO_SUCH_KEY 1"):
        run(tiny_config(tmp_path, opts=["MODEL.NO_SUCH_KEY", "1"]), data)


def test_bf16_autocast_run(tmp_path, data):
    """bf16 on CPU: detectron2's AMPTrainer is CUDA-only, so our AutocastTrainer carries it; eval autocasts too."""
    # (whether bf16 on CPU warns depends on the CPU's bf16 instructions: tests/test_precision.py covers it)
    result = run(tiny_config(tmp_path, steps=2, save_every=0, overlays=0, precision="bf16"), data)
    assert result.summary["recipe"]["precision"] == "bf16"
    losses = [loss for _, loss in _losses(RunDir(tmp_path).read_metrics())]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert math.isfinite(result.summary["metrics"]["after"]["segm_AP"])


def test_default_augmentation_crops_scales_and_keeps_masks_and_boxes_together(tmp_path):
    """detectron2's own DatasetMapper with our list: over many draws the images come in several sizes, crops cut
    coins (partial masks, boxes recomputed from them) and every box encloses its mask."""
    from detectron2.data import DatasetMapper
    from detectron2.data import transforms as T

    from trainer.d2_ft.augment import d2_augmentations
    from trainer.d2_ft.register import dataset_dicts
    from trainer.data.builtin import builtin_samples

    cfg = build_cfg(tiny_spec(["coin"]))
    augs = d2_augmentations(cfg, "default")
    assert [type(a) for a in augs][:3] == [T.ResizeShortestEdge, T.RandomApply, T.RandomFlip]
    assert len(d2_augmentations(cfg, "none")) == 1
    mapper = DatasetMapper(cfg, is_train=True, augmentations=augs, recompute_boxes=True)
    record = dataset_dicts(builtin_samples().subset([0]), tmp_path)[0]
    whole = sorted(int(m.sum()) for m in builtin_samples()[0].masks)
    np.random.seed(0)
    sizes, cut = set(), False
    for _ in range(30):
        out = mapper(dict(record))
        image, inst = out["image"], out["instances"]
        sizes.add(tuple(image.shape[1:]))
        masks = inst.gt_masks.tensor
        assert masks.shape[1:] == image.shape[1:] and masks.flatten(1).any(1).all()  # emptied ones dropped
        for mask, box in zip(masks, inst.gt_boxes.tensor):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box[0] <= xs.min() and box[2] >= xs.max() + 1 - 1e-3 and box[1] <= ys.min()
        scale = (image.shape[1] * image.shape[2]) / (record["height"] * record["width"])
        cut |= len(masks) < len(whole) or any(m.sum() < 0.5 * min(whole) * scale for m in masks)
    assert len(sizes) > 3 and cut
