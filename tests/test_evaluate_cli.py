"""`python -m trainer evaluate`: any model kind, any dataset, the summary.json keys; bad data refused first."""

import json
from pathlib import Path

import pytest
import torch

from trainer.checkpoint import WEIGHTS_NAME, save_weights
from trainer.cli import main
from trainer.data.synthetic import CLASS_NAMES, make_dataset

SIZE = 96


def _coco(folder: Path, n: int = 3, seed: int = 7) -> Path:
    from trainer.data import write_coco

    return write_coco(make_dataset(n, SIZE, seed=seed), folder)


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory) -> Path:
    """A random-init sam2.1 tiny saved as a model folder, with a training config that sets the evaluation."""
    from trainer.runlog import RunDir
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_model.model import Sam2Spec, build_model, save_spec

    folder = tmp_path_factory.mktemp("sam2_model")
    torch.manual_seed(0)
    spec = Sam2Spec("tiny", 128)
    save_weights(build_model(spec).state_dict(), folder / WEIGHTS_NAME)
    save_spec(spec, folder)
    RunDir(folder).write_config(Sam2TrainConfig(auto_points_per_side=4, progress=False, val_fraction=0.34,
                                                seed=5).to_dict())
    return folder


def test_sam2_model_is_scored_with_the_summary_keys(sam2_folder, tmp_path, capsys):
    data = _coco(tmp_path / "coco")
    out = tmp_path / "results.json"
    assert main(["evaluate", str(sam2_folder), "--data", str(data), "--json", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "mIoU, box prompt" in printed and "main metric" in printed
    results = json.loads(out.read_text())
    assert results["kind"] == "sam2" and results["main_metric"] == "miou_box"
    assert set(results["metrics"]) >= {"miou_1pt", "miou_3pt", "miou_box", "auto_mean_best_iou", "auto_recall50"}
    assert all(0 <= results["metrics"][k] <= 1 for k in ("miou_1pt", "miou_box", "auto_mean_best_iou"))
    assert set(results["per_class"]) <= set(CLASS_NAMES) and results["per_class"]
    assert results["dataset"] == {"name": "coco", "format": "coco", "split": "all", "num_images": 3,
                                  "class_names": CLASS_NAMES}
    assert str(tmp_path) not in json.dumps(results["dataset"])  # published by name, not by local path


def test_val_split_is_the_one_training_held_out(sam2_folder, tmp_path):
    from trainer.data import load_dataset
    from trainer.evaluate import evaluate

    data = _coco(tmp_path / "coco", n=6)
    results = evaluate(str(sam2_folder), str(data), split="val", device="cpu")
    _, val = load_dataset(str(data)).split(0.34, 5)  # the fraction and seed of the model's config.yaml
    assert results["dataset"]["split"] == "val" and results["dataset"]["num_images"] == len(val) == 2


def test_detectron2_model_is_scored_with_coco_ap(tmp_path):
    from test_d2_helpers import export_tiny_model
    from trainer.evaluate import evaluate

    export_tiny_model(tmp_path / "d2")
    results = evaluate(str(tmp_path / "d2"), str(_coco(tmp_path / "coco")), device="cpu")
    assert results["kind"] == "detectron2" and results["main_metric"] == "segm_AP"
    assert {"bbox_AP", "segm_AP"} <= set(results["metrics"])


def test_bad_data_is_refused_with_the_file_named_before_loading_the_model(tmp_path, capsys):
    data = _coco(tmp_path / "coco")
    broken = sorted(data.rglob("*.png"))[0]
    broken.write_bytes(b"not a png")
    assert main(["evaluate", str(tmp_path / "no_model_here"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert broken.name in err


def test_unknown_model_is_a_one_line_error(tmp_path, capsys):
    data = _coco(tmp_path / "coco")
    assert main(["evaluate", str(tmp_path / "nothing"), "--data", str(data)]) == 2
    assert "error:" in capsys.readouterr().err
