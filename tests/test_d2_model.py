"""trainer.d2_ft.model: spec round trip, export -> load_folder -> predict, clear errors for foreign checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from test_d2_helpers import TINY_OPTS, export_tiny_model, tiny_spec
from trainer.checkpoint import CheckpointError
from trainer.d2_ft import weights
from trainer.cli import build_parser
from trainer.d2_ft.model import D2Spec, build_cfg, build_model, load_folder, save_spec
from trainer.data.synthetic import make_scene
from trainer.model_limits import check_d2_cfg
from trainer.quickstart import RECIPES


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A random-init tiny Mask R-CNN, exported like the trainer does; returns (folder, in-memory segmenter)."""
    folder = tmp_path_factory.mktemp("d2_model")
    return folder, export_tiny_model(folder)


def test_spec_round_trip_and_kind_check():
    spec = tiny_spec()
    assert D2Spec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["kind"] == "detectron2"
    with pytest.raises(CheckpointError, match="'sam2' model, not a detectron2 model"):
        D2Spec.from_dict({"kind": "sam2", "size": "tiny"})


def test_build_cfg_applies_spec():
    cfg = build_cfg(tiny_spec(["a", "b", "c"]))
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3
    assert (cfg.MODEL.RESNETS.NORM, cfg.MODEL.FPN.NORM, cfg.MODEL.RESNETS.DEPTH) == ("GN", "GN", 18)
    assert cfg.INPUT.MASK_FORMAT == "bitmask" and cfg.MODEL.WEIGHTS == ""


def test_export_load_predict_matches_in_memory(exported):
    folder, live = exported
    image = make_scene(3, size=112).image  # not the model's input size: exercises resize and back
    loaded = load_folder(folder)
    a, b = live.predict(image, score_threshold=0.0), loaded.predict(image, score_threshold=0.0)
    assert len(a["scores"]) > 0, "a random-init model still proposes instances at threshold 0"
    assert a["masks"].shape[1:] == image.shape[:2] and a["masks"].dtype == bool
    assert a["boxes"].shape == (len(a["scores"]), 4)
    for key in ("masks", "boxes", "class_ids", "scores"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["class_names"] == b["class_names"] and set(a["class_names"]) <= {"vessel", "liquid"}
    assert loaded.class_names == ["vessel", "liquid"]


def test_score_threshold_filters(exported):
    """The threshold goes into the box head (the mask head then runs on the kept boxes only), and the kept
    detections are those of threshold 0 with scores above it, masks and all."""
    _, live = exported
    image = make_scene(4).image
    every = live.predict(image, score_threshold=0.0)
    cut = float(np.median(every["scores"]))  # a random-init model's scores sit close together: half stay
    out = live.predict(image, score_threshold=cut)
    assert (out["scores"] >= cut).all() and 0 < len(out["scores"]) < len(every["scores"])
    kept = every["scores"] >= cut  # the median's own detection too
    for key in ("masks", "boxes", "class_ids", "scores"):
        np.testing.assert_array_equal(out[key], every[key][kept], err_msg=key)


def test_wrong_class_count_is_a_clear_error(exported, tmp_path):
    folder, _ = exported
    three = tiny_spec(["a", "b", "c"])
    cfg = build_cfg(three)
    cfg.merge_from_list(TINY_OPTS)
    save_spec(three, tmp_path, cfg)
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="does not match this model.*shape mismatches.*cls_score"):
        load_folder(tmp_path)


def test_sam2_folder_is_a_clear_error(tmp_path):
    from trainer.sam2_model.model import Sam2Spec, save_spec as save_sam2_spec

    save_sam2_spec(Sam2Spec(), tmp_path)
    with pytest.raises(CheckpointError, match="'sam2' model, not a detectron2 model"):
        load_folder(tmp_path)


def test_missing_folder_files_are_clear_errors(tmp_path, exported):
    with pytest.raises(CheckpointError, match="model_config.yaml: missing"):
        load_folder(tmp_path)
    folder, _ = exported
    (tmp_path / "model_config.yaml").write_bytes((folder / "model_config.yaml").read_bytes())
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_folder(tmp_path)


def test_pickles_are_refused_outside_the_zoo(tmp_path):
    pkl = tmp_path / "model_final.pkl"
    pkl.write_bytes(b"not really")
    with pytest.raises(CheckpointError, match="pickle"):
        weights.resolve(str(pkl), pretrained=True, zoo_config=D2Spec().zoo_config)
    with pytest.raises(CheckpointError, match="untrusted URL"):
        weights.resolve("https://example.com/model.pkl", pretrained=True, zoo_config=D2Spec().zoo_config)
    assert weights.resolve(None, pretrained=False, zoo_config="x").description == "random-init"


def test_save_spec_from_a_bare_cfg(exported, tmp_path):
    folder, live = exported
    save_spec(live.cfg, tmp_path)  # no D2Spec at hand: class names fall back to class_<i>
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    loaded = load_folder(tmp_path)
    assert loaded.class_names == ["class_0", "class_1"]
    assert loaded.cfg.MODEL.FPN.OUT_CHANNELS == 64, "the stored cfg (with its overrides) rebuilds the model"


def test_predict_leaves_the_models_threshold_alone(exported):
    _, live = exported
    before = live.model.roi_heads.box_predictor.test_score_thresh
    live.predict(make_scene(5).image, score_threshold=0.0)
    assert live.model.roi_heads.box_predictor.test_score_thresh == before


def test_the_quickstarts_light_heads_are_a_model_the_space_accepts():
    """The quickstart's Mask R-CNN recipe narrows the FPN and heads through --opts (issue 30): its keys are real
    detectron2 keys, the built model has those widths, and the Space's size limits accept the saved cfg."""
    args = build_parser().parse_args(RECIPES["detectron2"])
    cfg = build_cfg(tiny_spec())
    cfg.merge_from_list(list(args.opts))
    check_d2_cfg(cfg, "quickstart")
    model = build_model(cfg)
    assert model.backbone.output_shape()["p2"].channels == 128
    assert model.roi_heads.mask_head.mask_fcn1.out_channels == 128
    assert model.roi_heads.box_head.fc1.out_features == 512
