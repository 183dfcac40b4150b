"""Built-in sample data, COCO export round trips and the seeded split."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from data_factories import write_mask_folder

from trainer.cli import main
from trainer.data import builtin_dataset_path, load_dataset, validate_data, write_coco
from trainer.data.builtin import write_builtin
from trainer.data.synthetic import make_dataset


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_builtin_is_deterministic_and_clean(tmp_path):
    start = time.perf_counter()
    first = write_builtin(tmp_path / "a")
    elapsed = time.perf_counter() - start
    second = write_builtin(tmp_path / "b")
    assert _files(first) == _files(second)
    assert len(_files(first)) == 41  # annotations.json + 24 training windows + 16 held-out windows
    assert validate_data(first) == []
    assert elapsed < 10  # ~1 s here; generous for a loaded CI machine


def test_builtin_content_and_provenance(tmp_path):
    root = write_builtin(tmp_path)
    coco = json.loads((root / "annotations.json").read_text())
    assert "skimage.data.coins" in coco["info"]["source"] and "Brooklyn Museum" in coco["info"]["source"]
    assert [c["name"] for c in coco["categories"]] == ["coin"]
    assert all(isinstance(a["segmentation"]["counts"], str) for a in coco["annotations"])  # RLE
    ds = load_dataset(root)
    assert ds.class_names == ["coin"] and len(ds) == 40
    areas = []
    for sample in ds:
        assert 64 <= min(sample.image.shape[:2]) and max(sample.image.shape[:2]) <= 256 and len(sample.masks) >= 2
        assert (sample.masks.areas >= 100).all()  # coins and cut coins, no specks
        covered = np.asarray(sample.masks).any(0)
        coin, background = sample.image[covered], sample.image[~covered]
        assert coin.mean() > background.mean() + 50  # the masks sit on the bright coins
        areas += sample.masks.areas.tolist()
    assert min(areas) < 600 and max(areas) > 1500  # coins cut at the window borders and whole ones
    sizes = {sample.image.shape[:2] for sample in ds}
    assert len(sizes) > 20  # windows at many scales


def test_builtin_held_out_part_is_fixed_and_never_trained_on(tmp_path):
    ds = load_dataset(write_builtin(tmp_path))
    assert ds.has_fixed_split
    for fraction, seed in ((0.2, 0), (0.5, 3)):  # the dataset's own split, whatever a run asks for
        train, val = ds.split(fraction, seed)
        assert len(train) == 24 and len(val) == 16
        assert all("_train_" in s for s in train.sources) and all("_heldout_" in s for s in val.sources)
    describe = ds.describe(*ds.split(), "builtin", "coco")
    assert describe["split"] == "the dataset's own" and describe["num_val"] == 16


def test_coco_split_field_round_trips(tmp_path):
    from trainer.data.sample import Sample, SegmentationDataset

    source = make_dataset(n_images=4, size=32)
    tagged = [Sample(s.image, s.masks, s.class_ids, s.source, split="test" if i == 2 else "train")
              for i, s in enumerate(source)]
    back = load_dataset(write_coco(SegmentationDataset.from_samples(tagged, source.class_names), tmp_path))
    train, held = back.split(0.5, seed=1)
    assert len(held) == 1 and held[0].split == "test" and len(train) == 3
    assert not load_dataset(write_coco(source, tmp_path / "plain")).has_fixed_split


def test_builtin_dataset_path_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_DATA_DIR", str(tmp_path / "cache"))
    path = builtin_dataset_path()
    assert path.parent == tmp_path / "cache" and (path / "annotations.json").is_file()
    stamp = (path / "annotations.json").stat().st_mtime_ns
    assert builtin_dataset_path() == path and (path / "annotations.json").stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging folder left behind
    for name in ("builtin", None):
        ds = load_dataset(name)
        assert ds.root == str(path) and ds.class_names == ["coin"] and len(ds) == 40


def test_make_sample_data_cli(tmp_path, capsys):
    assert main(["make-sample-data", str(tmp_path / "out")]) == 0
    assert "40 images, 211 instances, 1 class: OK" in capsys.readouterr().out
    assert (tmp_path / "out" / "annotations.json").is_file() and len(list((tmp_path / "out" / "images").iterdir())) == 40


def test_export_rle_round_trip_is_exact(tmp_path):
    source = make_dataset(n_images=3, size=64)
    back = load_dataset(write_coco(source, tmp_path / "out"))
    assert back.class_names == source.class_names and len(back) == 3
    for a, b in zip(source, back):
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.class_ids, b.class_ids)


def test_export_polygons_are_close(tmp_path):
    source = load_dataset(write_mask_folder(tmp_path / "src", n_images=2))
    back = load_dataset(write_coco(source, tmp_path / "out", encoding="polygon"))
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert all(isinstance(a["segmentation"], list) for a in coco["annotations"])
    for a, b in zip(source, back):
        for m, n in zip(a.masks, b.masks):
            assert (m & n).sum() / (m | n).sum() > 0.9


def test_split_is_seeded_disjoint_and_complete():
    ds = make_dataset(n_images=12, size=32)
    train, val = ds.split(0.25, seed=3)
    again_train, again_val = ds.split(0.25, seed=3)
    assert train.sources == again_train.sources and val.sources == again_val.sources
    assert len(val) == 3 and not set(train.sources) & set(val.sources)
    assert sorted(train.sources + val.sources) == sorted(ds.sources)
    other = {tuple(ds.split(0.25, seed=s)[1].sources) for s in range(4, 10)}
    assert len(other | {tuple(val.sources)}) > 1  # the seed matters


def test_export_rejects_unknown_encoding(tmp_path):
    with pytest.raises(ValueError, match="encoding"):
        write_coco(make_dataset(1, 32), tmp_path, encoding="bitmap")
