"""validate-data: every problem found, one line each naming the file; skip_bad; exit codes; format detection."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from data_factories import (edit_json, save_image, truncate, write_coco, write_hf, write_labpics,
                            write_mask_folder, write_via)

from trainer.cli import main
from trainer.data import DataError, DataValidationError, detect_format, load_dataset, validate_data


def _only_problem(path) -> str:
    problems = validate_data(path)
    assert len(problems) == 1, [str(p) for p in problems]
    line = str(problems[0])
    assert "\n" not in line
    return line


# --- one problem of each kind -------------------------------------------------------------------------------------

def test_truncated_png(tmp_path):
    root = write_coco(tmp_path)
    truncate(root / "images" / "img_1.png")
    line = _only_problem(root)
    assert line.startswith(str(root / "images" / "img_1.png") + ": ") and "corrupt or truncated image" in line


def test_truncated_jpeg(tmp_path):
    root = write_labpics(tmp_path)
    truncate(root / "Simple" / "Train" / "Image" / "scene 0.jpg", keep=0.6)
    line = _only_problem(root)
    assert "scene 0.jpg: corrupt or truncated image" in line


def test_file_that_is_not_an_image(tmp_path):
    root = write_mask_folder(tmp_path)
    (root / "images" / "img_0.png").write_bytes(b"this is not a png")
    line = _only_problem(root)
    assert "img_0.png: unreadable image" in line


def test_mask_size_differs_from_image(tmp_path):
    root = write_mask_folder(tmp_path)
    save_image(root / "masks" / "img_2" / "obj_1.png", np.full((32, 48), 255, np.uint8))
    line = _only_problem(root)
    assert "obj_1.png: mask size 48x32 does not match image size 64x64 (img_2.png)" in line


def test_coco_rle_size_differs_from_image(tmp_path):
    root = write_coco(tmp_path, encoding="rle")
    edit_json(root / "annotations.json", lambda d: d["annotations"][0]["segmentation"].update(
        size=[32, 32], counts=[100, 24, 900]))
    line = _only_problem(root)
    assert "annotations.json: annotation 1 (image 'img_0.png'): mask size 32x32 does not match image size" in line


def test_empty_mask(tmp_path):
    root = write_mask_folder(tmp_path)
    save_image(root / "masks" / "img_1" / "obj_0.png", np.zeros((64, 64), np.uint8))
    line = _only_problem(root)
    assert "img_1/obj_0.png: empty mask (all zeros)" in line


def test_empty_coco_polygon_outside_the_image(tmp_path):
    root = write_coco(tmp_path, encoding="polygon")
    edit_json(root / "annotations.json", lambda d: d["annotations"][3].update(
        segmentation=[[100, 100, 120, 100, 120, 120]]))
    line = _only_problem(root)
    assert "annotations.json: annotation 4 (image 'img_1.png'): empty mask (all zeros)" in line


def test_declared_size_and_invalid_geometry(tmp_path):
    root = write_coco(tmp_path, encoding="polygon")

    def damage(d):
        d["images"][0].update(width=80, height=60)
        d["annotations"][2]["segmentation"] = [[1, 2, 3, 4]]
    edit_json(root / "annotations.json", damage)
    lines = [str(p) for p in validate_data(root)]
    assert lines == [
        f"{root / 'images' / 'img_0.png'}: image size 64x64 does not match the size 80x60 given in annotations.json",
        f"{root / 'annotations.json'}: annotation 3 (image 'img_1.png'): invalid mask: polygon 0 has 4 coordinates "
        f"(needs an even number, at least 3 points)"]


def test_unknown_category_id_coco(tmp_path):
    root = write_coco(tmp_path)
    edit_json(root / "annotations.json", lambda d: d["annotations"][2].update(category_id=99))
    line = _only_problem(root)
    assert "annotations.json: annotation 3 (image 'img_1.png'): unknown category id 99" in line


def test_unknown_category_in_label_png_and_via(tmp_path):
    root = write_mask_folder(tmp_path / "a", style="label", classes=["red", "blue"])
    label = np.zeros((64, 64), np.uint8)
    label[5:10, 5:10] = 7
    save_image(root / "masks" / "img_0.png", label)
    assert "img_0.png: unknown category id 7" in _only_problem(root)

    via = write_via(tmp_path / "b", n_images=1)
    (via / "classes.txt").write_text("red\n")  # "blue" regions are now unknown
    line = _only_problem(via)
    assert "via_region_data.json: image 'img_0.png' region 1: unknown category 'blue'" in line


def test_truncated_json_reports_its_position(tmp_path):
    root = write_coco(tmp_path)
    truncate(root / "annotations.json", keep=0.5)
    line = _only_problem(root)
    assert line.startswith(str(root / "annotations.json") + ": truncated JSON at line 1 column ")
    assert "(char " in line


def test_malformed_json_reports_its_position(tmp_path):
    root = write_via(tmp_path)
    (root / "via_region_data.json").write_text('{"a.png": {"filename": "a.png",\n  "regions": [,]}}')
    line = _only_problem(root)
    assert "via_region_data.json: malformed JSON at line 2 column 15 (char 46): Expecting value" in line


def test_duplicate_image_and_annotation_ids(tmp_path):
    root = write_coco(tmp_path)

    def duplicate(d):
        d["images"][2]["id"] = 2  # img_1 and img_2 share id 2
        d["annotations"][1]["id"] = 1  # image 1's two annotations share id 1
    edit_json(root / "annotations.json", duplicate)
    lines = [str(p) for p in validate_data(root)]
    # each shared by two images, still reported once; image id 3 is gone, so its two annotations are orphans
    assert len(lines) == 4, lines
    assert sum("annotations.json: duplicate image id 2 (img_1.png, img_2.png)" in line for line in lines) == 1
    assert sum("annotations.json: duplicate annotation id 1 (used 2 times; image id 1)" in line for line in lines) == 1
    assert sum("unknown image id 3" in line for line in lines) == 2


def test_missing_image_and_mask_files(tmp_path):
    root = write_coco(tmp_path / "a")
    (root / "images" / "img_2.png").unlink()
    missing = root / "images" / "img_2.png"
    assert _only_problem(root) == f"{missing}: missing image file (image id 3 in annotations.json)"

    folder = write_mask_folder(tmp_path / "b", style="label")
    (folder / "masks" / "img_1.png").unlink()
    assert "img_1.png: missing mask for image img_1.png" in _only_problem(folder)

    labpics = write_labpics(tmp_path / "c")
    (labpics / "Simple" / "Train" / "Instance" / "scene 1.png").unlink()
    assert "scene 1.png: missing instance mask for image scene 1.jpg" in _only_problem(labpics)


def test_bad_rows_in_hf_dataset(tmp_path):
    import datasets

    root = write_hf(tmp_path, n_images=3)
    rows = datasets.load_from_disk(str(root)).cast_column("image", datasets.Image(decode=False)).to_list()
    rows[1]["image"] = {"bytes": rows[1]["image"]["bytes"][:60], "path": None}  # truncated PNG bytes
    rows[2]["labels"] = [0]  # two masks, one class
    features = datasets.load_from_disk(str(root)).features
    bad = tmp_path / "bad"
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(bad))
    lines = [str(p) for p in validate_data(bad)]
    assert len(lines) == 2, lines
    assert f"{bad}[1]: corrupt or truncated image" in lines[0]
    assert f"{bad}[2].masks: 2 masks but labels has 1 entries" in lines[1]


# --- all problems, not the first; reports; CLI ---------------------------------------------------------------------

def _three_problem_coco(tmp_path):
    root = write_coco(tmp_path, n_images=4)
    truncate(root / "images" / "img_0.png")
    (root / "images" / "img_3.png").unlink()
    edit_json(root / "annotations.json", lambda d: d["annotations"][2].update(category_id=42))
    return root


def test_every_problem_is_reported(tmp_path):
    lines = [str(p) for p in validate_data(_three_problem_coco(tmp_path))]
    assert len(lines) == 3
    assert "img_0.png: corrupt or truncated image" in lines[0]
    assert "unknown category id 42" in lines[1]
    assert "img_3.png: missing image file" in lines[2]


def test_cli_exit_codes_and_report(tmp_path, capsys):
    clean = write_coco(tmp_path / "clean")
    assert main(["validate-data", str(clean)]) == 0
    assert capsys.readouterr().out.strip() == "3 images, 6 instances, 2 classes: OK"

    bad = _three_problem_coco(tmp_path / "bad")
    assert main(["validate-data", str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4 and out[-1] == "3 problems in 3 files"
    assert "img_0.png: corrupt or truncated image" in out[0]


def test_cli_structural_error_is_a_line_not_a_traceback(tmp_path, capsys):
    root = write_coco(tmp_path)
    truncate(root / "annotations.json", keep=0.3)
    assert main(["validate-data", str(root)]) == 1
    captured = capsys.readouterr()
    assert "annotations.json: truncated JSON at line 1" in captured.out and "Traceback" not in captured.err
    assert main(["validate-data", str(tmp_path / "nowhere")]) == 1
    assert "no such file or folder" in capsys.readouterr().out


def test_cli_format_override(tmp_path, capsys):
    root = write_mask_folder(tmp_path, n_images=2)
    assert main(["validate-data", str(root), "--format", "coco"]) == 1  # no COCO file there
    assert "no COCO annotation file" in capsys.readouterr().out
    assert main(["validate-data", str(root), "--format", "mask_folder"]) == 0


# --- load_dataset: raise, or skip and record ------------------------------------------------------------------------

def test_load_raises_with_full_report(tmp_path):
    root = _three_problem_coco(tmp_path)
    with pytest.raises(DataValidationError) as info:
        load_dataset(root)
    err = info.value
    assert isinstance(err, DataError) and len(err.problems) == 3
    lines = str(err).splitlines()
    assert lines[0].startswith("3 problems in 3 files")
    assert sum("img_3.png: missing image file" in line for line in lines) == 1
    assert lines[-1] == "use --skip-bad to train without these samples"


def test_skip_bad_drops_records_and_warns(tmp_path, caplog):
    root = _three_problem_coco(tmp_path)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        ds = load_dataset(root, skip_bad=True)
    assert [s.rsplit("/", 1)[-1] for s in ds.sources] == ["img_2.png"]  # img_1 had the bad category
    assert len(ds.skipped) == 3 and all(isinstance(p, DataError) for p in ds.skipped)
    assert sum("skipped:" in r.getMessage() for r in caplog.records) == 3
    assert any("img_3.png: missing image file" in r.getMessage() for r in caplog.records)
    assert len(ds[0].masks) == 2


def test_structural_errors_raise_even_with_skip_bad(tmp_path):
    root = write_coco(tmp_path)
    truncate(root / "annotations.json")
    with pytest.raises(DataValidationError, match="truncated JSON") as info:
        load_dataset(root, skip_bad=True)
    assert "--skip-bad" not in str(info.value)  # skipping cannot help here

    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_dataset(empty, skip_bad=True)


def test_skip_bad_with_nothing_left_raises(tmp_path):
    root = write_mask_folder(tmp_path, n_images=2)
    for name in ("img_0.png", "img_1.png"):
        truncate(root / "images" / name)
    with pytest.raises(DataValidationError, match="no usable samples"):
        load_dataset(root, skip_bad=True)


# --- format detection ---------------------------------------------------------------------------------------------

def test_detect_format(tmp_path, monkeypatch):
    assert detect_format(write_coco(tmp_path / "a")) == "coco"
    assert detect_format(write_coco(tmp_path / "b") / "annotations.json") == "coco"
    assert detect_format(write_labpics(tmp_path / "c")) == "labpics"
    assert detect_format(write_mask_folder(tmp_path / "d")) == "mask_folder"
    assert detect_format(write_via(tmp_path / "e")) == "via"
    assert detect_format(write_via(tmp_path / "f") / "via_region_data.json") == "via"
    assert detect_format(write_hf(tmp_path / "g", n_images=1)) == "hf"
    assert detect_format("someone/some-dataset") == "hf"  # not a local path: a Hub id
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        detect_format(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        detect_format(tmp_path / "missing" / "data")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="no such file or folder"):  # a typo next to a real folder, not a Hub id
        detect_format("data/trian")


def test_format_override_reads_the_other_layout(tmp_path):
    root = write_mask_folder(tmp_path, n_images=2)  # a COCO file in the same folder wins detection...
    coco = write_coco(tmp_path / "other", n_images=1)
    (root / "annotations.json").write_text((coco / "annotations.json").read_text().replace("img_0", "../other/"
                                                                                           "coco/images/img_0"))
    assert detect_format(root) == "coco" and len(load_dataset(root)) == 1
    ds = load_dataset(root, format="mask_folder")  # ...unless --format says otherwise
    assert ds.format == "mask_folder" and len(ds) == 2
    assert json.loads((root / "annotations.json").read_text())["images"]


def test_split_keeps_the_skip_record():
    from trainer.data.sample import DataError
    from trainer.data.synthetic import make_dataset

    dataset = make_dataset(4, size=32)
    dataset.skipped.append(DataError("bad.png", "empty mask"))
    train, val = dataset.split(0.5, seed=1)
    assert [str(e) for e in train.skipped] == [str(e) for e in val.skipped] == ["bad.png: empty mask"]


def test_an_unchanged_dataset_is_not_decoded_again_and_a_change_is_seen(tmp_path, monkeypatch):
    from trainer.data import validate as validate_module
    from trainer.data.readers import base

    folder = write_mask_folder(tmp_path / "data", n_images=3)
    calls = []
    real = base.build_sample
    monkeypatch.setattr(validate_module, "build_sample", lambda e: calls.append(e.source) or real(e))
    first = load_dataset(folder)
    assert len(calls) == 3
    again = load_dataset(folder)  # e.g. --resume, or evaluate after training: counts come from the record
    assert len(calls) == 3 and again.sources == first.sources
    assert [r.num_objects for r in again.refs] == [r.num_objects for r in first.refs] and min(
        r.num_objects for r in again.refs) > 0
    image = sorted((folder / "images").iterdir())[0]
    image.write_bytes(image.read_bytes()[:40])  # truncated: a changed file is decoded and refused again
    with pytest.raises(DataValidationError, match=image.name):
        load_dataset(folder)
    with pytest.raises(DataValidationError, match=image.name):  # and the remembered verdict keeps the problem
        load_dataset(folder)
    assert len(calls) == 6


def test_a_corrupt_check_record_means_decoding_again(tmp_path, monkeypatch):
    from trainer.data.check_cache import cache_dir

    folder = write_mask_folder(tmp_path / "data", n_images=2)
    load_dataset(folder)
    for record in cache_dir().glob("*.json"):
        record.write_text("{not json")
    assert len(load_dataset(folder)) == 2
