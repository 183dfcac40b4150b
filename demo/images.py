"""Uploaded images in, checked RGB arrays out: the one gate for untrusted files (clear one-line errors).

Images are downscaled so the longest side is <= max_side; the returned array is both what is shown and what the
predictor sees, so a click's pixel coordinates are the predictor's coordinates.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000  # refuse before decoding: a 100000x100000 PNG header would otherwise eat the Space's RAM
EXAMPLES = ("astronaut", "coffee", "chelsea", "coins")  # real photos bundled in scikit-image (no download)


class UploadError(ValueError):
    """An upload that is not a usable image."""


def max_side() -> int:
    return int(os.environ.get("SEGKIT_MAX_SIDE", "1024"))


def load_image(path: str | Path | None, limit: int | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB, EXIF-rotated, longest side <= limit (default SEGKIT_MAX_SIDE or 1024)."""
    if path is None or str(path) == "":
        raise UploadError("no image: upload one or pick an example")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise UploadError(f"{name}: file not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UploadError(f"{name}: file is {path.stat().st_size / 2**20:.0f} MB; the limit is "
                          f"{MAX_FILE_BYTES // 2**20} MB")
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise UploadError(f"{name}: {width}x{height} pixels is too large (limit {MAX_PIXELS // 10**6} MP)")
            im.load()
            rgb = ImageOps.exif_transpose(im).convert("RGB")
    except UploadError:
        raise
    except Image.DecompressionBombError:  # PIL refuses the header itself past 2x its own pixel limit
        raise UploadError(f"{name}: image is too large (limit {MAX_PIXELS // 10**6} MP)") from None
    except UnidentifiedImageError:
        raise UploadError(f"{name}: not an image file (PNG, JPEG, WebP, ...)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise UploadError(f"{name}: corrupt or truncated image ({err})") from None
    return downscale(np.asarray(rgb), limit or max_side())


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
    from skimage import data

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
