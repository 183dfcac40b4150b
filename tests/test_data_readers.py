"""Each reader on real files written by the tests: right masks, classes and layout handling."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
from data_factories import (CLASS_NAMES, edit_json, labpics_material, scene, write_coco, write_hf, write_labpics,
                            write_mask_folder, write_via)

from trainer.data import DataError, detect_format, load_dataset


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _assert_matches_scene(sample, index: int, min_iou: float = 1.0, classes: bool = True) -> None:
    """Every ground-truth object of scene(index) is in the sample (same class), and nothing else."""
    _, masks, class_ids = scene(index)
    assert sample.masks.shape == (len(masks), 64, 64) and sample.masks.dtype == bool
    for mask, class_id in zip(masks, class_ids):
        best = max(range(len(sample.masks)), key=lambda k: _iou(mask, sample.masks[k]))
        assert _iou(mask, sample.masks[best]) >= min_iou
        if classes:
            assert sample.class_ids[best] == class_id


# --- COCO ---------------------------------------------------------------------------------------------------------

def test_coco_polygons_compressed_and_uncompressed_rle_decode_exactly(tmp_path):
    root = write_coco(tmp_path, n_images=3, encoding="mixed")  # every image mixes the three encodings
    ds = load_dataset(root)
    assert ds.format == "coco" and ds.class_names == CLASS_NAMES and len(ds) == 3
    for i in range(3):
        _assert_matches_scene(ds[i], i)
        assert np.array_equal(ds[i].image, scene(i)[0])
        assert ds[i].source.endswith(f"img_{i}.png")


def test_coco_crowd_annotations_are_not_instances(tmp_path):
    ds = load_dataset(write_coco(tmp_path, crowd=True))
    first = ds[0]
    assert len(first.masks) == 2  # the two objects, not the crowd corner
    assert not np.asarray(first.masks)[:, :4, :4].any()


def test_coco_image_without_annotations_is_kept_empty(tmp_path):
    root = write_coco(tmp_path, n_images=3)
    edit_json(root / "annotations.json",
              lambda d: d.update(annotations=[a for a in d["annotations"] if a["image_id"] != 3]))
    ds = load_dataset(root)
    assert len(ds) == 3 and ds[2].masks.shape == (0, 64, 64) and ds[2].class_ids.shape == (0,)


def test_coco_category_ids_map_to_their_rank(tmp_path):
    root = write_coco(tmp_path, n_images=2)

    def renumber(d):  # ids 7 ("red") and 3 ("blue"): sorted ids give class 0 = blue, 1 = red
        d["categories"] = [{"id": 7, "name": "red"}, {"id": 3, "name": "blue"}]
        for a in d["annotations"]:
            a["category_id"] = {1: 7, 2: 3}[a["category_id"]]
    edit_json(root / "annotations.json", renumber)
    ds = load_dataset(root)
    assert ds.class_names == ["blue", "red"]
    sample = ds[0]
    _, masks, class_ids = scene(0)
    for mask, class_id in zip(masks, class_ids):
        k = next(k for k in range(len(sample.masks)) if np.array_equal(sample.masks[k], mask))
        assert ds.class_names[sample.class_ids[k]] == CLASS_NAMES[class_id]


def test_coco_json_file_with_images_beside_it_and_instances_name(tmp_path):
    root = write_coco(tmp_path, n_images=2)
    for image in (root / "images").iterdir():
        shutil.move(str(image), root / image.name)
    (root / "images").rmdir()
    (root / "annotations.json").rename(root / "instances_train.json")
    assert detect_format(root) == "coco"
    assert len(load_dataset(root)) == 2
    assert len(load_dataset(root / "instances_train.json")) == 2  # the JSON file itself


def test_coco_annotations_subfolder_layout(tmp_path):
    root = write_coco(tmp_path, n_images=2)
    (root / "annotations").mkdir()
    (root / "annotations.json").rename(root / "annotations" / "instances_val.json")
    ds = load_dataset(root)
    _assert_matches_scene(ds[1], 1)


def test_several_coco_files_is_an_error_naming_them(tmp_path):
    root = write_coco(tmp_path, n_images=1)
    shutil.copy(root / "annotations.json", root / "instances_a.json")
    (root / "annotations.json").rename(root / "instances_b.json")
    with pytest.raises(DataError, match="instances_a.json, instances_b.json"):
        load_dataset(root)


# --- LabPics ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sub", ["", "Simple", "Simple/Train"])
def test_labpics_vessels_and_materials(tmp_path, sub):
    root = write_labpics(tmp_path, n_images=2)
    ds = load_dataset(root / sub if sub else root)
    assert ds.format == "labpics" and ds.class_names == ["vessel", "material"] and len(ds) == 2
    sample = ds[1]
    _, vessels, _ = scene(1)
    expected = [(v & ~labpics_material(v), 0) for v in vessels] + [(labpics_material(v), 1) for v in vessels]
    assert len(sample.masks) == len(expected)
    for mask, class_id in expected:  # the tutorial's merge: material wins, the vessel mask excludes it
        hits = [k for k in range(len(sample.masks)) if np.array_equal(sample.masks[k], mask)]
        assert len(hits) == 1 and sample.class_ids[hits[0]] == class_id
    assert not (np.asarray(sample.masks).sum(axis=0) > 1).any()  # no pixel in two instances


# --- plain mask folders -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["instances", "label"])
def test_mask_folder_single_class(tmp_path, style):
    ds = load_dataset(write_mask_folder(tmp_path, n_images=3, style=style))
    assert ds.format == "mask_folder" and ds.class_names == ["object"] and len(ds) == 3
    _assert_matches_scene(ds[2], 2, classes=False)
    assert (ds[2].class_ids == 0).all()


@pytest.mark.parametrize("style", ["instances", "label"])
def test_mask_folder_classes_file(tmp_path, style):
    ds = load_dataset(write_mask_folder(tmp_path, n_images=2, style=style, classes=CLASS_NAMES))
    assert ds.class_names == CLASS_NAMES
    _assert_matches_scene(ds[1], 1)


def test_mask_folder_classes_json_and_empty_instance_folder(tmp_path):
    root = write_mask_folder(tmp_path, n_images=2, classes=CLASS_NAMES)
    (root / "classes.txt").unlink()
    (root / "classes.json").write_text(json.dumps(CLASS_NAMES))
    shutil.rmtree(root / "masks" / "img_1")
    (root / "masks" / "img_1").mkdir()  # an image with no objects
    ds = load_dataset(root)
    assert ds.class_names == CLASS_NAMES and len(ds[1].masks) == 0 and len(ds[0].masks) == 2


# --- VIA ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("regions_as_list", [False, True])
def test_via_polygons_with_class_attribute(tmp_path, regions_as_list):
    ds = load_dataset(write_via(tmp_path, n_images=2, regions_as_list=regions_as_list))
    assert ds.format == "via" and sorted(ds.class_names) == sorted(CLASS_NAMES)
    sample = ds[1]
    _, masks, class_ids = scene(1)
    for mask, class_id in zip(masks, class_ids):
        best = max(range(len(sample.masks)), key=lambda k: _iou(mask, sample.masks[k]))
        assert _iou(mask, sample.masks[best]) > 0.85
        assert ds.class_names[sample.class_ids[best]] == CLASS_NAMES[class_id]


def test_via_balloon_style_without_attributes_and_project_file(tmp_path):
    root = write_via(tmp_path, n_images=2, named=False)
    data = json.loads((root / "via_region_data.json").read_text())
    (root / "via_region_data.json").unlink()
    (root / "project.json").write_text(json.dumps({"_via_settings": {}, "_via_img_metadata": data}))
    assert detect_format(root) == "via"
    ds = load_dataset(root)
    assert ds.class_names == ["object"] and len(ds[0].masks) == 2


# --- Hugging Face datasets ----------------------------------------------------------------------------------------

def test_hf_instance_mask_lists_with_classlabel(tmp_path):
    ds = load_dataset(write_hf(tmp_path, n_images=3, style="masks"))
    assert ds.format == "hf" and ds.class_names == CLASS_NAMES and len(ds) == 3
    _assert_matches_scene(ds[2], 2)
    assert np.array_equal(ds[2].image, scene(2)[0])


def test_hf_label_image_and_dataset_dict_split(tmp_path):
    import datasets

    single = write_hf(tmp_path, n_images=2, style="label")
    both = tmp_path / "dict"
    datasets.DatasetDict({"test": datasets.load_from_disk(str(single)).select([0]),
                          "train": datasets.load_from_disk(str(single))}).save_to_disk(str(both))
    ds = load_dataset(both)
    assert ds.class_names == ["object"] and len(ds) == 2  # the "train" split, not the first one
    _assert_matches_scene(ds[1], 1, classes=False)
    assert len(load_dataset(both / "test")) == 1  # a split folder picks that split


# --- common behaviour ---------------------------------------------------------------------------------------------

def test_samples_are_lazy_and_picklable(tmp_path):
    root = write_coco(tmp_path, n_images=2)
    ds = load_dataset(root)
    clone = pickle.loads(pickle.dumps(ds))  # spawned DataLoader workers need this
    assert np.array_equal(clone[1].masks, ds[1].masks)
    (root / "images" / "img_1.png").unlink()  # read at access time, not held in memory
    with pytest.raises(DataError, match="img_1.png"):
        ds[1]
