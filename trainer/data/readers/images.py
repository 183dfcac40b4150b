"""Decode image and mask files completely, turning every failure into a one-line DataError.

All readers go through here so a corrupt file reads the same whatever the dataset format.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from trainer.data.sample import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".npy")

# Image.load() raises on these for damaged files; anything else is a bug and should surface as one.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (a stable order makes seeded splits reproducible)."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def read_image(path: str | Path) -> np.ndarray:
    """Fully decode an image file to an array of its own dtype/channels (normalised later)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _read_npy(path)
    return _decode(path, lambda: Image.open(path), as_mask=False)


def read_mask(path: str | Path) -> np.ndarray:
    """Fully decode a mask file: palette PNGs give their indices (not colours), no EXIF rotation."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _read_npy(path)
    return _decode(path, lambda: Image.open(path), as_mask=True)


def decode_bytes(data: bytes, source: str, as_mask: bool = False) -> np.ndarray:
    """Decode an in-memory encoded image (Hugging Face datasets store PNG/JPEG bytes)."""
    return _decode(source, lambda: Image.open(io.BytesIO(data)), as_mask=as_mask)


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(str(path), "file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(str(path), f"corrupt or truncated .npy file ({err})") from None


def _decode(source: str | Path, opener: Callable[[], Image.Image], as_mask: bool) -> np.ndarray:
    if isinstance(source, Path) and not source.is_file():
        raise DataError(str(source), "file not found")
    try:
        with opener() as img:
            # Force a full decode: a truncated file fails here, not at open(). (Relies on PIL's default
            # ImageFile.LOAD_TRUNCATED_IMAGES = False; nothing in this project turns it on.)
            img.load()
            if not as_mask:
                # Annotation tools draw on the displayed (EXIF-rotated) image; Detectron2 reads it the same way.
                img = ImageOps.exif_transpose(img)
            return _to_array(img, as_mask)
    except UnidentifiedImageError:
        raise DataError(str(source), "unreadable image: not a recognised image format") from None
    except _DECODE_ERRORS as err:
        raise DataError(str(source), f"corrupt or truncated image ({err})") from None


def _to_array(img: Image.Image, as_mask: bool) -> np.ndarray:
    mode = img.mode
    if mode in ("P", "PA"):
        if as_mask:
            return np.array(img.convert("P") if mode == "PA" else img)  # palette indices are the labels
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode not in ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "RGB", "RGBA"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX...
    array = np.array(img)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))  # I;16B etc.
    return array
