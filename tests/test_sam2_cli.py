"""`python -m trainer sam2` end to end on a tiny COCO dataset written from the synthetic scenes."""

import json
from pathlib import Path

import yaml

from trainer.checkpoint import save_weights
from trainer.cli import build_parser, main
from trainer.data.synthetic import CLASS_NAMES, make_dataset
from trainer.sam2_ft.interactive import click_metric_names

ARTIFACTS = ["config.yaml", "model_config.yaml", "model.safetensors", "metrics.jsonl", "summary.json", "curves.png",
             "state/resume_state.pt"]
FAST = ["--no-pretrained", "--image-size", "128", "--batch-size", "2", "--eval-images", "2",
        "--auto-points-per-side", "4", "--no-progress"]


def write_coco(folder: Path, n_images: int = 5, size: int = 96) -> Path:
    """Synthetic scenes exported as a COCO folder by the data layer (read back by load_dataset)."""
    from trainer.data import write_coco as export

    return export(make_dataset(n_images, size, seed=7), folder)


def test_help_lists_every_issue_flag():
    text = build_parser().parse_args(["sam2", "--steps", "3"])
    assert text.steps == 3 and text.func is not None
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["sam2"]
    flags = {opt for action in sub._actions for opt in action.option_strings}
    for flag in ["--data", "--format", "--skip-bad", "--out", "--size", "--weights", "--no-pretrained", "--image-size",
                 "--freeze", "--loss", "--steps", "--batch-size", "--grad-accum", "--lr", "--precision", "--seed",
                 "--resume", "--eval-every", "--save-every", "--push-to", "--device"]:
        assert flag in flags, flag


def test_cli_end_to_end_writes_every_artifact(tmp_path, capsys):
    data = write_coco(tmp_path / "coco")
    out = tmp_path / "run"
    code = main(["sam2", "--data", str(data), "--out", str(out), "--steps", "3", "--save-every", "2",
                 "--eval-every", "2", "--overlays", "1", "--loss", "bce_iou", *FAST])
    assert code == 0, capsys.readouterr().err
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    assert list((out / "overlays").glob("*.png"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "sam2" and summary["base_model"] == "random-init" and summary["main_metric"] == "miou_box"
    assert summary["model"] == {"size": "tiny", "image_size": 128}
    assert summary["dataset"]["class_names"] == CLASS_NAMES and summary["dataset"]["num_train"] == 4
    assert summary["recipe"]["loss"] == "bce_iou" and summary["recipe"]["steps"] == 3
    for phase in ("before", "after"):
        metrics = summary["metrics"][phase]
        assert set(metrics) == {"miou_1pt", "miou_3pt", "miou_box", "auto_mean_best_iou", "auto_recall50",
                                "area_corr_1pt", "area_corr_3pt", "area_corr_box", *click_metric_names()}
        assert all(-1 <= v <= 1 if k.startswith("area_corr") else 1 <= v <= 20 if k.startswith("noc_") else 0 <= v <= 1
                   for k, v in metrics.items())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["kind"] == "sam2" and config["steps"] == 3 and config["data"] == str(data)
    phases = [r.get("phase") for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    assert phases.count("before") == 1 and phases.count("eval") == 1 and phases.count("after") == 1
    assert str(out) in capsys.readouterr().out


def test_cli_wrong_size_checkpoint_is_a_one_line_error(tmp_path, capsys):
    from trainer.sam2_model.model import Sam2Spec, build_model

    weights = save_weights(build_model(Sam2Spec("tiny", 128)).state_dict(), tmp_path / "tiny.safetensors")
    code = main(["sam2", "--size", "small", "--weights", str(weights), "--image-size", "128", "--data", "unused",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "tiny.safetensors: checkpoint does not match this model" in err and "missing keys" in err


def test_cli_bad_options_and_data_are_one_line_errors(tmp_path, capsys):
    assert main(["sam2", "--freeze", "encoder", "--out", str(tmp_path / "a")]) == 2
    assert "--freeze: unknown part(s) ['encoder']" in capsys.readouterr().err
    assert main(["sam2", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    missing = tmp_path / "no_such_dataset"
    assert main(["sam2", "--data", str(missing), "--out", str(tmp_path / "b"), *FAST]) == 2
    assert str(missing) in capsys.readouterr().err


def test_a_config_round_trips_through_its_flags(tmp_path):
    """options.to_argv (what the Space's Fine-tune job passes its child) is the inverse of the generated flags."""
    from demo import train_job
    from trainer import options
    from trainer.sam2_ft.config import Sam2TrainConfig

    cfg = train_job.recipe(tmp_path / "data", tmp_path / "out", train_job.Start(None, "tiny", 256), steps=20)
    argv = options.to_argv(cfg)
    assert "--no-pretrained" in argv and "--no-progress" in argv and "--weights" not in argv
    args = build_parser().parse_args(["sam2", *argv])
    assert options.from_args(Sam2TrainConfig, args) == cfg
    started = train_job.recipe(tmp_path / "data", tmp_path / "out", train_job.Start("runs/x", "small", 512), 30)
    assert options.from_args(Sam2TrainConfig, build_parser().parse_args(["sam2", *options.to_argv(started)])) == started
