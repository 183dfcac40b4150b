"""Bring any decoded image to HxWx3 uint8 RGB, and name what was done so inference can repeat it.

Names (what `to_uint8_rgb` returns and `apply_normalization` accepts):
  "none"                 uint8 RGB, used as is
  "gray_to_rgb"          uint8 single channel, replicated to 3 channels
  "drop_alpha"           uint8 RGBA (or gray + alpha), alpha dropped
  "percentile_0.5_99.5"  anything not uint8 (16-bit, int32, float, IR scans): each image is stretched so its own
                         0.5th..99.5th percentiles map to 0..255, then made 3-channel. Per image, because scan
                         exposure varies from file to file; percentiles rather than min/max so a few hot pixels do
                         not squash the rest of the range.
  "auto"                 (dataset level, mixed inputs) decide per image exactly as `to_uint8_rgb` does.

The channel fixes (gray -> RGB, dropping alpha) are lossless and always applied; the name is what matters for the
intensities. A uint8 single-channel image is taken to be a grayscale photo (no stretch): only non-uint8 inputs are
treated as raw sensor data.
"""

from __future__ import annotations

import math

import numpy as np

from trainer.data.sample import DataError

PERCENTILES = (0.5, 99.5)
PERCENTILE_NAME = f"percentile_{PERCENTILES[0]:g}_{PERCENTILES[1]:g}"
CHANNEL_ONLY = ("none", "gray_to_rgb", "drop_alpha")
PERCENTILE_SAMPLE = 1_000_000  # pixels (a strided grid) the percentiles come from: exact below this, and a 50 MP scan
CHUNK_PIXELS = 1 << 20  # is stretched this many pixels at a time, never as whole-image float64 copies of GBs


def to_uint8_rgb(array: np.ndarray, source: str = "") -> tuple[np.ndarray, str]:
    """Return (HxWx3 uint8 image, normalisation name). Raises DataError for shapes that are not an image."""
    array = np.asarray(array)
    _check_shape(array, source)
    if array.dtype == np.uint8 or array.dtype == bool:
        channels = 1 if array.ndim == 2 else array.shape[2]
        name = {1: "gray_to_rgb", 2: "drop_alpha", 3: "none", 4: "drop_alpha"}[channels]
        return _to_rgb(_as_uint8(array)), name
    return _to_rgb(_stretch(array, *PERCENTILES)), PERCENTILE_NAME


def apply_normalization(array: np.ndarray, name: str) -> np.ndarray:
    """Repeat the normalisation recorded at training time (`dataset.normalization`) on a new image."""
    array = np.asarray(array)
    _check_shape(array, "image")
    if name == "auto":
        return to_uint8_rgb(array)[0]
    if name.startswith("percentile_"):
        try:
            lo, hi = (float(v) for v in name[len("percentile_"):].split("_"))
        except ValueError:
            raise ValueError(f"bad normalization name {name!r}: expected percentile_<lo>_<hi>") from None
        return _to_rgb(_stretch(array, lo, hi))
    if name in CHANNEL_ONLY:
        if array.dtype != np.uint8 and array.dtype != bool:
            # Training saw uint8 pixels as they were; silently rescaling here would feed the model other values.
            raise ValueError(f"normalization {name!r} expects a uint8 image, got {array.dtype}; "
                             f"use 'auto' or '{PERCENTILE_NAME}'")
        return _to_rgb(_as_uint8(array))
    raise ValueError(f"unknown normalization {name!r} (known: {', '.join(CHANNEL_ONLY)}, {PERCENTILE_NAME}, auto)")


def combine(names: list[str]) -> str:
    """The dataset-level name for per-image names: the common one, else what `apply_normalization` can repeat."""
    unique = set(names)
    if len(unique) == 1:
        return unique.pop()
    if unique <= set(CHANNEL_ONLY):
        return "none"  # channel fixes are applied whatever the name, so "none" repeats all of them
    return "auto"


def _check_shape(array: np.ndarray, source: str) -> None:
    ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 2, 3, 4))
    if not ok or array.size == 0:
        raise DataError(source, f"not an image: array of shape {array.shape} (expected HxW or HxWxC, C in 1..4)")


def _as_uint8(array: np.ndarray) -> np.ndarray:
    return array.astype(np.uint8) * 255 if array.dtype == bool else array


def _to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[..., :-1]  # drop alpha
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array)


def _stretch(array: np.ndarray, lo_pct: float, hi_pct: float) -> np.ndarray:
    """Percentile min-max stretch to uint8 over all colour channels together (keeps the colour balance); the
    percentiles of images over PERCENTILE_SAMPLE pixels come from an evenly strided grid of about that many."""
    values = array[..., :-1] if array.ndim == 3 and array.shape[2] in (2, 4) else array
    step = max(1, math.ceil(math.sqrt(values.shape[0] * values.shape[1] / PERCENTILE_SAMPLE)))
    sample = values[::step, ::step].astype(np.float64)
    finite = sample[np.isfinite(sample)] if np.issubdtype(values.dtype, np.floating) else sample.reshape(-1)
    if finite.size == 0:
        return np.zeros(array.shape, np.uint8)
    lo, hi = np.percentile(finite, [lo_pct, hi_pct], overwrite_input=True)  # the sample is ours to reorder
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.empty(array.shape, np.uint8)
    rows = max(1, CHUNK_PIXELS // max(1, array.shape[1]))
    for start in range(0, array.shape[0], rows):
        part = array[start:start + rows].astype(np.float64)  # one chunk-sized buffer, then in place
        part -= lo
        part *= scale
        np.nan_to_num(part, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        out[start:start + rows] = np.clip(np.rint(part, out=part), 0, 255, out=part)
    return out
