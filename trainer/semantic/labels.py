"""Instance masks -> one label map per image (0 = background, class k -> k + 1), and the class list/colours.

Overlap rule: instances are painted largest first, so where instances overlap the SMALLER one wins (equal areas:
the one listed later wins). Annotations nest small parts inside larger wholes (liquid in a vessel, a logo on a
shirt, a nucleus in a cell); painting the whole last would erase the part, painting it first keeps both. The rule
depends only on the masks, not on class order or file order, so every reader gives the same map.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from trainer.data.instances import InstanceMasks

BACKGROUND = "background"


def semantic_classes(class_names: Sequence[str]) -> list[str]:
    """The model's classes: background, then the dataset's; class-agnostic data (no names) gives one 'object'."""
    return [BACKGROUND, *(class_names or ["object"])]


def label_map(masks: InstanceMasks | np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """HxW int64 labels from N masks (InstanceMasks or N x H x W bool; N may be 0) and their N class ids;
    smaller instances are painted over larger ones."""
    masks = InstanceMasks.of(masks, *np.shape(masks)[1:])
    labels = np.zeros((masks.height, masks.width), np.int64)
    for i in _paint_order(masks.areas):
        y0, x0, y1, x1 = masks.crops[i].box
        labels[y0:y1, x0:x1][masks.crops[i].mask] = int(class_ids[i]) + 1
    return labels


def _paint_order(areas: np.ndarray) -> list[int]:
    """Largest first; among equal areas, list order (so the later one is painted last and wins)."""
    return sorted(range(len(areas)), key=lambda i: (-int(areas[i]), i))


def class_colors(n: int) -> list[str]:
    """n hex colours: background black, then matplotlib's tab20 (fixed, so a class keeps its colour everywhere)."""
    # lazy: matplotlib only when drawing (seconds to import)
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    table = colormaps["tab20"].colors
    return ["#000000", *(to_hex(table[(2 * k) % 20 + (2 * k) // 20 % 2]) for k in range(n - 1))]


def rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
