"""The built-in clips: a camera moving over a real bundled photo, so `sam2-video --data builtin` trains offline.

Source: the same scikit-image `coins` photo and coin masks as the built-in images (trainer/data/builtin.py). Each
clip is a camera path — a slow pan (up to ~10 px a frame, one or two coins over the clip), a zoom of +-20 % and a
rotation of a few degrees — over one band of the photo, rendered frame by frame (bilinear photo, nearest labels).
The objects are the coins seen in the first frame; near the edges they leave the frame and may come back (a coin
outside the frame has an empty mask in that frame). Coins that only enter later are not annotated: semi-supervised
VOS follows the objects it was given.

Why slow (version 3): the coins look alike, so a tracker can only tell them apart by where they were a frame ago.
Version 2 swung the camera up to ~35 px a frame, about a coin's radius: a coin's mask overlapped its previous one
by IoU 0.43 (median), and even the previous frame's *true* masks copied forward scored J&F 0.43 on the held-out
clips: every frame a tracker had to re-find a look-alike coin half a coin away. Now that overlap is 0.75
(DAVIS-like), the previous frame's truth scores 0.59, frame 0's mask copied 0.22 and nothing predicted 0.11 (were
0.10 and 0.21).

Training clips look at the top two rows of coins, held-out clips (listed in heldout.txt) at the bottom two, as in
the built-in images: no coin is in both parts. Written once, in the DAVIS layout (JPEGImages/ + Annotations/ with
palette PNGs), into the same cache as the built-in images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trainer.data.builtin import HELDOUT_Y, cache_dir, cached_folder, coin_labels

VERSION = "3"
FRAMES = 12
HEIGHT, WIDTH = 120, 160  # rendered frame size, pixels
TRAIN_CLIPS, HELDOUT_CLIPS = 16, 6
MIN_PART = 150  # pixels of a coin in the first frame for it to be an object


def builtin_clips_path() -> Path:
    """The built-in clip folder (written on first use into the cache, then reused)."""
    return cached_folder(cache_dir() / f"coins-clips-v{VERSION}", "heldout.txt", write_builtin_clips)


def camera_path(rng: np.random.Generator, rows: tuple[int, int], width: int, frames: int = FRAMES) -> np.ndarray:
    """frames x (centre y, centre x, zoom, angle in radians): a slow pan, zoom and rotation."""
    t = np.linspace(0, 1, frames)
    swing = rng.uniform(0.3, 0.5) * 2 * np.pi
    x0, amp = rng.uniform(0.3, 0.7) * width, rng.uniform(0.05, 0.09) * width
    cy = np.clip((rows[0] + rows[1]) / 2 + rng.uniform(-10, 10) + 8 * np.sin(swing * t + rng.uniform(0, 6)),
                 rows[0] + 40, rows[1] - 40)
    cx = x0 + amp * np.sin(swing * t + rng.uniform(0, 2 * np.pi))
    zoom = rng.uniform(0.9, 1.2) * (1 + 0.2 * np.sin(rng.uniform(1, 2) * np.pi * t + rng.uniform(0, 6)))
    angle = np.deg2rad(rng.uniform(-6, 6) * np.sin(np.pi * t + rng.uniform(0, 6)))
    return np.stack([cy, cx, zoom, angle], 1)


def render(photo: np.ndarray, labels: np.ndarray, pose: np.ndarray, rows: tuple[int, int],
           fill: float) -> tuple[np.ndarray, np.ndarray]:
    """One frame (HEIGHT x WIDTH) of the photo band `rows` seen from `pose`; outside the band: `fill` / label 0."""
    # lazy: scikit-image and scipy only when the sample clips are first written
    from scipy import ndimage

    cy, cx, zoom, angle = pose
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    v, u = (v - HEIGHT / 2) / zoom, (u - WIDTH / 2) / zoom
    y = cy + np.cos(angle) * v + np.sin(angle) * u
    x = cx - np.sin(angle) * v + np.cos(angle) * u
    band = photo.astype(np.float64).copy()
    band[:rows[0]], band[rows[1]:] = fill, fill
    band_labels = labels.copy()
    band_labels[:rows[0]], band_labels[rows[1]:] = 0, 0
    image = ndimage.map_coordinates(band, [y, x], order=1, mode="constant", cval=fill)
    label = ndimage.map_coordinates(band_labels, [y, x], order=0, mode="constant", cval=0)
    return np.clip(image, 0, 255).astype(np.uint8), label.astype(np.int64)


def write_builtin_clips(out_dir: str | Path) -> Path:
    """Write the clips (DAVIS layout, JPEG frames, palette PNG annotations) and heldout.txt to `out_dir`."""
    # lazy: scikit-image and scipy only when the sample clips are first written
    from skimage import data

    out = Path(out_dir)
    photo = data.coins()
    labels = coin_labels(photo)
    fill = float(np.percentile(photo, 10))  # the dark background between coins
    rng = np.random.default_rng(int(VERSION))
    palette = _palette()
    heldout = []
    parts = [("train", (0, HELDOUT_Y), TRAIN_CLIPS), ("heldout", (HELDOUT_Y, photo.shape[0]), HELDOUT_CLIPS)]
    for split, rows, count in parts:
        made = 0
        while made < count:
            path = camera_path(rng, rows, photo.shape[1])
            rendered = [render(photo, labels, pose, rows, fill) for pose in path]
            first = rendered[0][1]
            ids = [v for v in np.unique(first) if v and (first == v).sum() >= MIN_PART][:6]
            if len(ids) < 2:
                continue
            name = f"coins_{split}_{made:02d}"
            (out / "JPEGImages" / name).mkdir(parents=True)
            (out / "Annotations" / name).mkdir(parents=True)
            for t, (image, label) in enumerate(rendered):
                objects = np.zeros(label.shape, np.uint8)
                for n, coin in enumerate(ids):
                    objects[label == coin] = n + 1
                Image.fromarray(np.repeat(image[..., None], 3, 2)).save(out / "JPEGImages" / name / f"{t:05d}.jpg",
                                                                         quality=95)
                png = Image.fromarray(objects, mode="P")
                png.putpalette(palette)
                png.save(out / "Annotations" / name / f"{t:05d}.png")
            if split == "heldout":
                heldout.append(name)
            made += 1
    (out / "heldout.txt").write_text("\n".join(heldout) + "\n")
    (out / "README.txt").write_text(
        "segkit built-in clips: a camera path (pan, zoom, rotation) over scikit-image's 'coins' photo (Greek coins "
        "from Pompeii, Brooklyn Museum Collection, no known copyright restrictions); coin masks derived by Sobel + "
        "watershed. Layout: DAVIS (JPEGImages/, Annotations/ palette PNGs); heldout.txt lists the held-out clips.\n")
    return out


def _palette() -> list[int]:
    """DAVIS's colour palette (object k in a distinct colour; index 0 black)."""
    palette = []
    for k in range(256):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette
