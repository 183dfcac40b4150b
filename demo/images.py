"""Uploaded images in, checked RGB arrays out: the one gate for untrusted files (clear one-line errors).

Files are decoded by the data layer (16-bit, float and single-channel scans keep their values) and brought to uint8
RGB the way training did: the normalisation recorded in the picked model's folder, else the data layer's own choice
(uint8 as is, anything else percentile-stretched). Images are then downscaled so the longest side is <= max_side; the
returned array is both what is shown and what the predictor sees, so a click's pixel coordinates are the
predictor's coordinates.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from demo import settings
from trainer.data.normalize import CHANNEL_ONLY, apply_normalization, to_uint8_rgb
from trainer.data.readers.images import read_image
from trainer.data.sample import DataError

EXAMPLES = ("astronaut", "coffee", "chelsea", "coins")  # real photos bundled in scikit-image (no download)


class UploadError(ValueError):
    """An upload that is not a usable image."""


def max_side() -> int:
    return settings.get().max_side


def load_image(path: str | Path | None, normalization: str | None = None, limit: int | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB as the model sees it, EXIF-rotated, longest side <= limit (default SEGKIT_MAX_SIDE or 1024)."""
    return load_upload(path, normalization, limit)[0]


def load_upload(path: str | Path | None, normalization: str | None = None,
                limit: int | None = None) -> tuple[np.ndarray, str]:
    """(image as in `load_image`, what was done to it: "" for a plain RGB photo, else e.g. "uint16 grayscale,
    percentile_0.5_99.5 stretch")."""
    raw = read_upload(path)
    if normalization and normalization not in (*CHANNEL_ONLY, "auto"):
        image, name = apply_normalization(raw, normalization), normalization  # what this model was trained with
    else:  # channel fixes only, or nothing recorded: the data layer decides per image as it did in training
        image, name = to_uint8_rgb(raw)
    how = "" if name in CHANNEL_ONLY else f"{raw.dtype} {_channels(raw)}, {name} stretch"
    return downscale(image, limit or max_side()), how


def read_upload(path: str | Path | None) -> np.ndarray:
    """The decoded file, any dtype and channel count (the data layer's reader), after the size checks."""
    if path is None or str(path) == "":
        raise UploadError("no image: upload one or pick an example")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise UploadError(f"{name}: file not found")
    limits = settings.get()
    if path.stat().st_size > limits.max_file_bytes:
        raise UploadError(f"{name}: file is {path.stat().st_size / 2**20:.0f} MB; the limit is "
                          f"{limits.max_file_bytes // 2**20} MB")
    try:
        with Image.open(path) as im:  # the header only: refuse huge images before decoding them
            width, height = im.size
    except Image.DecompressionBombError:  # PIL refuses the header itself past 2x its own pixel limit
        raise UploadError(f"{name}: image is too large (limit {limits.max_pixels // 10**6} MP)") from None
    except UnidentifiedImageError:
        raise UploadError(f"{name}: not an image file (PNG, JPEG, WebP, TIFF, ...)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise UploadError(f"{name}: corrupt or truncated image ({err})") from None
    if width * height > limits.max_pixels:
        raise UploadError(f"{name}: {width}x{height} pixels is too large (limit {limits.max_pixels // 10**6} MP)")
    try:
        return read_image(path)
    except DataError as err:
        raise UploadError(f"{name}: {err.problem}") from None


def _channels(raw: np.ndarray) -> str:
    return {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}[1 if raw.ndim == 2 else raw.shape[2]]


def downscale(image: np.ndarray, limit: int) -> np.ndarray:
    height, width = image.shape[:2]
    if max(height, width) <= limit:
        return np.ascontiguousarray(image)
    scale = limit / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def image_key(image: np.ndarray) -> str:
    """A content hash: the same picture uploaded twice (or sent again by an API client) reuses its embedding."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(str(image.shape).encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def example_paths() -> dict[str, str]:
    """The bundled scikit-image photos written once as PNGs (gr.Examples wants files)."""
    from skimage import data  # heavy (scipy-backed), and needed once: when the app is built

    folder = Path(tempfile.gettempdir()) / "segkit-demo-examples"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in EXAMPLES:
        path = folder / f"{name}.png"
        if not path.is_file():
            image = getattr(data, name)()
            if image.ndim == 2:
                image = np.stack([image] * 3, axis=-1)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.png")
            Image.fromarray(image).save(tmp)
            os.replace(tmp, path)
        paths[name] = str(path)
    return paths
