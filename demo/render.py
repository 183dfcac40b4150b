"""Overlays: masks blended over the image, prompts drawn on top (green = positive, red = negative), mask PNGs."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

POSITIVE, NEGATIVE = (34, 197, 94), (239, 68, 68)
MASK_COLOR = (30, 144, 255)
BOX_COLOR = (250, 204, 21)


def blend(image: np.ndarray, mask: np.ndarray, color: Sequence[int], alpha: float = 0.5) -> np.ndarray:
    """`color` over the mask's pixels of an RGB image. Only the mask's bounding box is mixed, by Pillow (a click's
    render at 1024 px: 8 ms against numpy's 29)."""
    out = image.copy()
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return out
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    region = Image.fromarray(np.ascontiguousarray(image[box]))
    mixed = Image.blend(region, Image.new("RGB", region.size, tuple(int(c) for c in color)), alpha)
    region.paste(mixed, mask=Image.fromarray(np.ascontiguousarray(mask[box])))
    out[box] = np.asarray(region)
    return out


def palette(n: int, seed: int = 0) -> np.ndarray:
    """n distinct-ish bright colors (fixed seed: the same mask index keeps its color between runs)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.25, 1.0, size=(n, 3)) * 255).astype(np.uint8)


def draw_prompts(image: np.ndarray, points: Sequence[Sequence[float]] = (), box: Sequence[float] | None = None,
                 corner: Sequence[float] | None = None) -> np.ndarray:
    """Points as filled dots with a white ring, the box as a yellow rectangle, a pending box corner as a cross."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    radius = max(5, round(max(image.shape[:2]) / 80))
    if box is not None:
        draw.rectangle([float(v) for v in box], outline=BOX_COLOR, width=max(2, radius // 2))
    if corner is not None:
        x, y = corner
        draw.line([x - radius * 2, y, x + radius * 2, y], fill=BOX_COLOR, width=2)
        draw.line([x, y - radius * 2, x, y + radius * 2], fill=BOX_COLOR, width=2)
    for x, y, label in points:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=POSITIVE if label else NEGATIVE,
                     outline=(255, 255, 255), width=max(1, radius // 3))
    return np.asarray(canvas)


def mask_overlay(image: np.ndarray, mask: np.ndarray | None, **prompts) -> np.ndarray:
    out = image if mask is None else outline(blend(image, mask, MASK_COLOR), mask, copy=False)
    return draw_prompts(out, **prompts) if any(prompts.values()) else out


def outline(image: np.ndarray, mask: np.ndarray, color: Sequence[int] = (255, 255, 255),
            copy: bool = True) -> np.ndarray:
    """A 1-pixel contour so a mask's edge stays visible over similar colors."""
    out = image.copy() if copy else image
    out[mask ^ _erode(mask)] = color
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def instances_overlay(image: np.ndarray, masks: Sequence[np.ndarray], boxes: Sequence[Sequence[float]] = (),
                      labels: Sequence[str] = ()) -> np.ndarray:
    """Every mask in its own color (largest first so small ones stay on top), optional boxes with labels."""
    colors = palette(len(masks))
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    out = image.copy()
    for i in order:
        out = blend(out, masks[i], colors[i], alpha=0.55)
    if len(boxes):
        canvas = Image.fromarray(out)
        draw = ImageDraw.Draw(canvas)
        for i, box in enumerate(boxes):
            color = tuple(int(c) for c in colors[i])
            draw.rectangle([float(v) for v in box], outline=color, width=2)
            if i < len(labels):
                draw.text((float(box[0]) + 3, float(box[1]) + 2), labels[i], fill=(255, 255, 255),
                          stroke_width=2, stroke_fill=(0, 0, 0))
        out = np.asarray(canvas)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
