"""`python -m trainer semantic` end to end: it learns on the built-in photos, writes every artifact, refuses bad
data with the file named. Two processes (torchrun, gloo) training what one does: tests/test_sam2_ddp.py, which runs
this trainer after the SAM2 one in the same interpreters."""

from __future__ import annotations

import json

import pytest
import yaml

from trainer.cli import main

ARTIFACTS = ["config.yaml", "model_config.yaml", "model.safetensors", "metrics.jsonl", "summary.json", "curves.png",
             "state/resume_state.pt", "overlays/val_00.png"]
FAST = ["--no-pretrained", "--image-size", "128", "--no-progress"]


def test_learns_on_builtin_data_and_writes_every_artifact(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["semantic", "--data", "builtin", "--out", str(out), "--steps", "20", "--batch-size", "4",
                 "--eval-every", "10", "--auto-points-per-side", "4", "--overlays", "1", *FAST])
    assert code == 0, capsys.readouterr().err
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    before, after = summary["metrics"]["before"], summary["metrics"]["after"]
    assert after["miou"] > before["miou"] + 0.3 and after["miou"] > 0.7, (before, after)
    assert set(after) == {"miou", "pixel_accuracy", "iou_background", "iou_coin"}
    assert summary["kind"] == "semantic" and summary["main_metric"] == "miou"
    assert summary["classes"] == [{"name": "background", "color": "#000000"}, {"name": "coin", "color": "#1f77b4"}]
    baseline = summary["baseline"]
    assert set(baseline["metrics"]) >= {"miou", "pixel_accuracy"} and (baseline["pred_iou_thresh"], baseline["stability_score_thresh"]) == (0.0, 0.0)
    assert summary["recipe"]["freeze"] == ["image_encoder"]
    spec = yaml.safe_load((out / "model_config.yaml").read_text())
    assert spec["kind"] == "semantic" and spec["class_names"] == ["background", "coin"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["kind"] == "semantic" and config["steps"] == 20
    phases = [r.get("phase") for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    assert [p for p in phases if p] == ["before", "baseline", "eval", "after"]
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "promptless SAM2 baseline" in printed and str(out) in printed


def test_bad_data_and_options_are_one_line_errors(tmp_path, capsys):
    from data_factories import truncate, write_coco

    data = write_coco(tmp_path, n_images=3)
    truncate(data / "images" / "img_1.png")
    assert main(["semantic", "--data", str(data), "--out", str(tmp_path / "a"), *FAST]) == 2
    assert "img_1.png" in capsys.readouterr().err
    assert main(["semantic", "--decoder-channels", "64", "--out", str(tmp_path / "b"), *FAST]) == 2
    assert "--decoder-channels: expected 2 to 4 positive integers" in capsys.readouterr().err
    assert main(["semantic", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    sam2_run = tmp_path / "sam2_run"
    sam2_run.mkdir()
    (sam2_run / "config.yaml").write_text("kind: sam2\n")
    assert main(["semantic", "--resume", "--out", str(sam2_run)]) == 2
    assert "a 'sam2' run, not a semantic run" in capsys.readouterr().err


def test_help_lists_the_recipe_flags(capsys):
    with pytest.raises(SystemExit):
        main(["semantic", "--help"])
    text = capsys.readouterr().out
    for option in ("--freeze", "--ce-weight", "--dice-weight", "--class-weights", "--grad-accum", "--precision",
                   "--resume", "--push-to", "--auto-iou-thresh", "--decoder-channels"):
        assert option in text, option
