"""Published repos name no path of the training machine: real trainer runs pushed, every text file read back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from huggingface_hub.repocard import metadata_load

from hub_cards.public import dataset_name, scrub
from trainer.cli import main

TEXT_FILES = ("README.md", "config.yaml", "summary.json", "model_config.yaml", "metrics.json")


def test_scrub_keeps_names_and_urls_drops_folders():
    home = os.path.expanduser("~")
    assert scrub("data: /home/alice/scans/ir-2024 (3 files)") == "data: ir-2024 (3 files)"
    assert scrub("push_to: file:/srv/models/sam2-x") == "push_to: file:sam2-x"
    assert scrub(f"{home}/private/data/img 3.png: corrupt") == "img 3.png: corrupt"
    assert scrub(r"weights C:\Users\bob\ckpt\base.pt") == "weights base.pt"
    kept = "see https://huggingface.co/facebook/sam2.1-hiera-tiny; split train/val, ratio 1/2, COCO-InstanceSegmentation/x.yaml"
    assert scrub(kept) == kept
    assert scrub("/a/My Data/coins", known=[("/a/My Data/coins", "coins")]) == "coins"


def test_dataset_names():
    from trainer.data.builtin import VERSION, cache_dir

    assert dataset_name("/home/alice/coco/annotations.json") == "coco"
    assert dataset_name("/home/alice/LabPicsV1/") == "LabPicsV1"
    assert dataset_name("someone/labpics:train") == "someone/labpics:train"
    assert dataset_name(str(cache_dir() / f"coins-v{VERSION}")) == "builtin"
    assert dataset_name(None) == "custom"


def _published_text(repo: Path) -> dict[str, str]:
    return {name: (repo / name).read_text() for name in TEXT_FILES if (repo / name).is_file()}


def _assert_no_local_path(texts: dict[str, str], *private: Path) -> None:
    for name, text in texts.items():
        for path in {*private, Path.home(), Path.cwd(), Path("/tmp")}:
            assert f"{path}/" not in text and not text.rstrip().endswith(str(path)), (name, str(path))


@pytest.mark.timeout(300)
def test_pushed_sam2_repo_names_no_local_path(tmp_path, capsys):
    """Data, run folder, push target and base weights all given as absolute paths, as a user's shell passes them."""
    from demo.testing import make_sam2_repo
    from trainer.data import write_coco
    from trainer.data.synthetic import make_dataset

    private = tmp_path / "home" / "alice" / "private project"
    data = write_coco(make_dataset(4, 64, seed=3), private / "vessel-scans")
    base = make_sam2_repo(private / "weights" / "base-tiny", image_size=128)
    out, pushed = private / "runs" / "exp-7", private / "published" / "sam2-vessels"
    code = main(["sam2", "--data", str(data), "--out", str(out), "--weights", str(base), "--image-size", "128",
                 "--steps", "1", "--batch-size", "2", "--no-eval", "--overlays", "0", "--no-progress",
                 "--push-to", f"file:{pushed}"])
    assert code == 0, capsys.readouterr().err
    assert str(data) in (out / "config.yaml").read_text()  # the run folder keeps full paths for --resume
    texts = _published_text(pushed)
    assert {"README.md", "config.yaml", "summary.json"} <= set(texts)
    _assert_no_local_path(texts, private, tmp_path)
    config, summary = yaml.safe_load(texts["config.yaml"]), json.loads(texts["summary.json"])
    assert (config["data"], config["out"], config["push_to"]) == ("vessel-scans", "exp-7", "file:sam2-vessels")
    assert config["weights"] == "base-tiny" and summary["base_model"] == "base-tiny"
    assert summary["dataset"]["path"] == "vessel-scans"
    assert "fine-tuned with segkit on `vessel-scans` (2 classes: vessel, liquid)" in texts["README.md"]
    assert metadata_load(pushed / "README.md").get("model-index") is None  # no eval results, no model-index


@pytest.mark.timeout(300)
def test_pushed_detectron2_repo_names_no_local_path(tmp_path, capsys):
    """Built-in data (which the Detectron2 trainer records by its cache folder) and a folder push."""
    from test_d2_helpers import SIZE, TINY_OPTS

    out, pushed = tmp_path / "runs" / "d2-exp", tmp_path / "published" / "maskrcnn-coins"
    code = main(["detectron2", "--data", "builtin", "--out", str(out), "--no-pretrained", "--depth", "18",
                 "--min-size", str(SIZE), "--max-size", str(SIZE), "--steps", "1", "--roi-batch", "32",
                 "--loader-workers", "0", "--device", "cpu", "--precision", "fp32", "--no-progress", "--overlays", "0",
                 "--push-to", f"file:{pushed}", "--opts", *TINY_OPTS])
    assert code == 0, capsys.readouterr().err
    texts = _published_text(pushed)
    _assert_no_local_path(texts, tmp_path)
    assert json.loads(texts["summary.json"])["dataset"]["path"] == "builtin"
    assert "fine-tuned with segkit on `builtin` (1 class: coin)" in texts["README.md"]
    assert metadata_load(pushed / "README.md")["model-index"][0]["name"] == "maskrcnn-coins"
    assert yaml.safe_load(texts["model_config.yaml"])["kind"] == "detectron2"
