"""Normalisation to uint8 RGB: grayscale, alpha, 16-bit and float IR scans, and repeating it at inference."""

from __future__ import annotations

import numpy as np
import pytest
from data_factories import save_image, scene, write_mask_folder
from PIL import Image

from trainer.data import DataError, load_dataset
from trainer.data.normalize import PERCENTILE_NAME, apply_normalization, combine, to_uint8_rgb


def _ir_scan(dtype, seed: int = 0) -> np.ndarray:
    """A smooth 12-bit-ish thermal ramp plus one hot pixel."""
    rng = np.random.default_rng(seed)
    scan = (np.linspace(1000, 5000, 64)[None, :] + rng.normal(0, 20, (64, 64))).astype(dtype)
    scan[0, 0] = 60000 if np.issubdtype(dtype, np.integer) else 1e9
    return scan


def test_uint8_rgb_is_untouched():
    image = scene(0)[0]
    out, name = to_uint8_rgb(image)
    assert name == "none" and np.array_equal(out, image)


def test_grayscale_becomes_three_equal_channels():
    gray = scene(1)[0][..., 0]
    out, name = to_uint8_rgb(gray)
    assert name == "gray_to_rgb" and out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[..., c], gray) for c in range(3))


def test_rgba_drops_alpha():
    rgb = scene(2)[0]
    out, name = to_uint8_rgb(np.dstack([rgb, np.full((64, 64), 7, np.uint8)]))
    assert name == "drop_alpha" and np.array_equal(out, rgb)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_ir_scans_get_a_percentile_stretch(dtype):
    scan = _ir_scan(dtype)
    out, name = to_uint8_rgb(scan, "scan.tif")
    assert name == PERCENTILE_NAME == "percentile_0.5_99.5"
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255
    # the hot pixel is clipped instead of squashing the ramp: the ramp spans the range, left to right
    means = out[1:, :, 0].mean(axis=0)
    assert means[0] < 20 and means[-1] > 235 and np.all(np.diff(means[2:-2]) > 0)


def test_float_nans_and_constant_images_do_not_break():
    scan = _ir_scan(np.float64)
    scan[5:10, 5:10] = np.nan
    out, _ = to_uint8_rgb(scan)
    assert (out[5:10, 5:10] == 0).all()
    flat, name = to_uint8_rgb(np.full((8, 8), 3.5, np.float32))
    assert name == PERCENTILE_NAME and (flat == 0).all()


@pytest.mark.parametrize("array", [scene(0)[0], scene(0)[0][..., 1], _ir_scan(np.uint16), _ir_scan(np.float32),
                                   np.dstack([scene(0)[0], scene(0)[0][..., :1]])])
def test_apply_normalization_repeats_training(array):
    out, name = to_uint8_rgb(array)
    assert np.array_equal(apply_normalization(array, name), out)
    assert np.array_equal(apply_normalization(array, "auto"), out)


def test_apply_normalization_refuses_a_mismatch():
    with pytest.raises(ValueError, match="expects a uint8 image"):
        apply_normalization(_ir_scan(np.uint16), "none")
    with pytest.raises(ValueError, match="unknown normalization"):
        apply_normalization(scene(0)[0], "zscore")
    with pytest.raises(DataError, match="not an image"):
        to_uint8_rgb(np.zeros((4, 4, 7), np.uint8), "cube.npy")


def test_combine():
    assert combine(["none", "none"]) == "none"
    assert combine(["gray_to_rgb", "gray_to_rgb"]) == "gray_to_rgb"
    assert combine(["none", "gray_to_rgb"]) == "none"
    assert combine(["none", PERCENTILE_NAME]) == "auto"


def _replace_images(root, arrays, suffix=".png"):
    for k, array in enumerate(arrays):
        (root / "images" / f"img_{k}.png").unlink()
        if suffix == ".npy":
            np.save(root / "images" / f"img_{k}.npy", array)
        else:
            save_image(root / "images" / f"img_{k}{suffix}", array)


def test_dataset_records_16bit_png_normalization(tmp_path):
    root = write_mask_folder(tmp_path, n_images=2)
    _replace_images(root, [_ir_scan(np.uint16, seed=k) for k in range(2)])
    assert Image.open(root / "images" / "img_0.png").mode.startswith("I")  # really a 16-bit PNG
    ds = load_dataset(root)
    assert ds.normalization == PERCENTILE_NAME
    sample = ds[1]
    assert sample.normalization == PERCENTILE_NAME and sample.image.dtype == np.uint8
    assert sample.image.shape == (64, 64, 3) and sample.image.max() == 255


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_dataset_reads_float_ir_files(tmp_path, suffix):
    root = write_mask_folder(tmp_path, n_images=2)
    _replace_images(root, [_ir_scan(np.float32, seed=k) for k in range(2)], suffix)
    ds = load_dataset(root)
    assert ds.normalization == PERCENTILE_NAME and ds[0].image.shape == (64, 64, 3)


def test_dataset_normalization_grayscale_and_mixed(tmp_path):
    gray = write_mask_folder(tmp_path / "gray", n_images=2)
    _replace_images(gray, [scene(k)[0][..., 0] for k in range(2)])
    assert load_dataset(gray).normalization == "gray_to_rgb"

    mixed = write_mask_folder(tmp_path / "mixed", n_images=2)
    _replace_images(mixed, [_ir_scan(np.uint16)])  # img_0 16-bit, img_1 stays RGB
    assert load_dataset(mixed).normalization == "auto"


def test_a_large_scan_is_stretched_from_a_subsample_without_float64_copies():
    """Finding 11 of issue 27: a 50 MP 16-bit upload made float64 copies of 2 GB+; the percentiles now come from
    a strided grid of ~PERCENTILE_SAMPLE pixels and the stretch runs in chunks."""
    import tracemalloc

    from trainer.data import normalize

    rng = np.random.default_rng(0)
    scan = rng.gamma(2.0, 3000.0, size=(3000, 3000)).astype(np.uint16)  # 9 MP, > PERCENTILE_SAMPLE
    tracemalloc.start()
    out = normalize._stretch(scan, *normalize.PERCENTILES)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < scan.size * 8 / 2, peak  # well under one whole-image float64 copy (72 MB here)
    lo, hi = np.percentile(scan.astype(np.float64), normalize.PERCENTILES)
    exact = np.clip(np.rint((scan.astype(np.float64) - lo) * 255.0 / (hi - lo)), 0, 255)
    assert np.abs(out.astype(np.float64) - exact).mean() < 0.5  # the subsample's percentiles are close enough
