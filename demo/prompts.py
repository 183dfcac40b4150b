"""The prompt state of the Prompt/Compare tabs as JSON text: what clicks edit, what the API takes.

    {"points": [[x, y, 1], [x, y, 0]], "box": [x0, y0, x1, y1] or null, "corner": [x, y] or null}
label 1 = positive, 0 = negative; "corner" is the first click of a box still waiting for its second.
Coordinates are pixels of the (downscaled) image the app shows. This is the one parser of every tab's prompts: the
text is bounded (SEGKIT_MAX_PROMPT_CHARS), the points too (SEGKIT_MAX_POINTS: the decoder's work grows with them),
and every number must be finite, before any model runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from demo import settings

MODES = ("positive point", "negative point", "box (2 clicks)")


@dataclass
class Prompts:
    points: list[list[float]] = field(default_factory=list)
    box: list[float] | None = None
    corner: list[float] | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    def to_json(self) -> str:
        return json.dumps({"points": self.points, "box": self.box, "corner": self.corner})

    def arrays(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(point_coords Nx2, point_labels N, box 4) as SAM2ImagePredictor.predict takes them."""
        coords = np.array([p[:2] for p in self.points], np.float32) if self.points else None
        labels = np.array([int(p[2]) for p in self.points], np.int32) if self.points else None
        box = np.array(self.box, np.float32) if self.box is not None else None
        return coords, labels, box

    def draw_kwargs(self) -> dict:
        return {"points": self.points, "box": self.box, "corner": self.corner}


def parse(text: str | None, shape: tuple[int, ...] | None = None) -> Prompts:
    """Prompts from JSON text; ValueError with the reason for malformed input, too many points or points outside
    the image."""
    if not text or not text.strip():
        return Prompts()
    limits = settings.get()
    if not isinstance(text, str) or len(text) > limits.max_prompt_chars:
        raise ValueError(f"prompts: the text is over this Space's limit of {limits.max_prompt_chars} characters")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"prompts: not valid JSON ({getattr(err, 'msg', 'nested too deeply')})") from None
    if not isinstance(data, dict):
        raise ValueError('prompts: expected {"points": [[x, y, label], ...], "box": [x0, y0, x1, y1]}')
    points = data.get("points") or []
    if not isinstance(points, list):
        raise ValueError("prompts: points must be a list of [x, y, label]")
    if len(points) > limits.max_points:
        raise ValueError(f"prompts: {len(points)} points; this Space takes at most {limits.max_points} in one "
                         "request")
    prompts = Prompts(points=[_point(p) for p in points],
                      box=_numbers(data["box"], 4, "box") if data.get("box") is not None else None,
                      corner=_numbers(data["corner"], 2, "corner") if data.get("corner") is not None else None)
    if shape is not None:
        _check_inside(prompts, shape[0], shape[1])
    return prompts


def _numbers(value, count: int, what: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise ValueError(f"prompts: {what} must be a list of {count} numbers, got {value!r}")
    try:
        numbers = [float(v) for v in value if not isinstance(v, (bool, str))]
    except (TypeError, ValueError, OverflowError):
        numbers = []
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"prompts: {what} must be {count} finite numbers, got {str(value)[:80]}")
    return numbers


def _point(value) -> list[float]:
    x, y, label = _numbers(value, 3, "each point [x, y, label]")
    if label not in (0, 1):
        raise ValueError(f"prompts: a point's label is 1 (positive) or 0 (negative), got {label:g}")
    return [x, y, int(label)]


def _check_inside(prompts: Prompts, height: int, width: int) -> None:
    coords = [p[:2] for p in prompts.points] + ([prompts.box[:2], prompts.box[2:]] if prompts.box else [])
    for x, y in coords:
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValueError(f"prompts: ({x:g}, {y:g}) is outside the {width}x{height} image")


def add_click(prompts: Prompts, x: float, y: float, mode: str) -> Prompts:
    """One click: a point, or a box corner (the second corner completes the box, replacing any earlier box)."""
    if mode != MODES[2] and len(prompts.points) >= settings.get().max_points:
        raise ValueError(f"at most {settings.get().max_points} points: undo or clear some first")
    if mode == MODES[2]:
        if prompts.corner is None:
            return Prompts(prompts.points, prompts.box, [x, y])
        (x0, y0) = prompts.corner
        box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
        return Prompts(prompts.points, box, None)
    return Prompts([*prompts.points, [x, y, 1 if mode == MODES[0] else 0]], prompts.box, prompts.corner)
