"""An image's instance masks, each kept as the crop of its bounding box.

A 2048 x 2048 image with 400 cells as an N x H x W bool array is 1.6 GB; as box crops it is the objects' own
pixels (a few MB). Every reader builds a Sample's masks this way, label maps included (one `find_objects` pass, no
full-size mask per value). A full-size mask exists only while something needs it: `mask(i)` / iteration give one
at a time, `np.asarray(masks)` gives the dense N x H x W array for the small images most code paths see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence, Union

import numpy as np
from pycocotools import mask as coco_mask


@dataclass(frozen=True)
class Crop:
    """One mask: `mask` (bool) placed at row `y0`, column `x0` of an image of height x width."""

    y0: int
    x0: int
    mask: np.ndarray
    height: int
    width: int

    @classmethod
    def from_dense(cls, mask: np.ndarray) -> "Crop":
        """The tight box of a full-size mask (an empty mask keeps a 0 x 0 crop)."""
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if not len(rows):
            return cls(0, 0, np.zeros((0, 0), bool), *mask.shape)
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return cls(int(y0), int(x0), np.ascontiguousarray(mask[y0:y1, x0:x1]), *mask.shape)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1), end exclusive."""
        return self.y0, self.x0, self.y0 + self.mask.shape[0], self.x0 + self.mask.shape[1]

    def any(self) -> bool:
        return bool(self.mask.any())

    def dense(self, out: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros(self.shape, bool) if out is None else out
        y0, x0, y1, x1 = self.box
        out[y0:y1, x0:x1] = self.mask
        return out


@dataclass
class InstanceMasks:
    """N masks of one height x width image (see the module docstring). Behaves as the N x H x W array where code
    asks for one (`np.asarray`), and as a sequence of full-size masks when iterated."""

    height: int
    width: int
    crops: list[Crop] = field(default_factory=list)

    @classmethod
    def of(cls, masks: "InstanceMasks | np.ndarray | Sequence[np.ndarray]", height: int, width: int) -> "InstanceMasks":
        """From a dense N x H x W array (or a list of H x W masks); an InstanceMasks is returned as it is."""
        if isinstance(masks, InstanceMasks):
            return masks
        dense = [np.asarray(m) for m in masks] if not isinstance(masks, np.ndarray) else \
            np.asarray(masks).reshape(-1, height, width)
        return cls(height, width, [Crop.from_dense(m) for m in dense])

    @classmethod
    def from_label_map(cls, label: np.ndarray, values: Sequence[int] | None = None) -> tuple[list[int], "InstanceMasks"]:
        """One mask per nonzero value of a label-index map (or per listed value), with those values, without a
        full-size mask per value."""
        # lazy: scipy is not needed by `python -m trainer --help`, which imports this module
        from scipy.ndimage import find_objects

        label = np.asarray(label)
        values = [int(v) for v in np.unique(label) if v != 0] if values is None else list(values)
        slices = find_objects(label.astype(np.int32, copy=False)) if values else []
        crops = []
        for v in values:
            ys, xs = slices[v - 1]
            crops.append(Crop(ys.start, xs.start, label[ys, xs] == v, *label.shape))
        return values, cls(*label.shape, crops)

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.crops), self.height, self.width

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(bool)

    @property
    def areas(self) -> np.ndarray:
        return np.array([int(c.mask.sum()) for c in self.crops], dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return sum(c.mask.nbytes for c in self.crops)

    def __len__(self) -> int:
        return len(self.crops)

    def mask(self, i: int) -> np.ndarray:
        """Mask i at full size."""
        return self.crops[i].dense()

    def __iter__(self) -> Iterator[np.ndarray]:
        return (c.dense() for c in self.crops)

    def __getitem__(self, index):
        """An int gives that full-size mask; a slice, index list or boolean selection gives an InstanceMasks."""
        if isinstance(index, (int, np.integer)):
            return self.mask(int(index))
        picked = np.arange(len(self))[index]
        return InstanceMasks(self.height, self.width, [self.crops[i] for i in np.atleast_1d(picked)])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        for i, crop in enumerate(self.crops):
            crop.dense(out[i])
        return out if dtype is None else out.astype(dtype)

    def dense(self) -> np.ndarray:
        return np.asarray(self)

    def resized(self, height: int, width: int) -> "InstanceMasks":
        """Every mask resized to an image of height x width, nearest neighbour (as torchvision resizes masks),
        crop by crop; a mask that vanishes keeps an empty crop, so indices still match the class ids."""
        crops = []
        for c in self.crops:
            y0, x0, y1, x1 = c.box
            rows, ny0 = _nearest(y0, y1, self.height, height)
            cols, nx0 = _nearest(x0, x1, self.width, width)
            crops.append(Crop(ny0, nx0, c.mask[np.ix_(rows, cols)] if c.mask.size else
                              np.zeros((0, 0), bool), height, width))
        return InstanceMasks(height, width, crops)


def _nearest(start: int, stop: int, size_in: int, size_out: int) -> tuple[np.ndarray, int]:
    """For input pixels [start, stop) of a line of size_in resized to size_out: the output pixels whose nearest
    input pixel (PIL's: the one under the output pixel's centre, in exact integer arithmetic) lies there, as offsets
    from start, and the first such output pixel."""
    def first_at_or_after(i: int) -> int:  # smallest r with floor((2r + 1) * size_in / (2 * size_out)) >= i
        return min(max(-(-(2 * size_out * i - size_in) // (2 * size_in)), 0), size_out)

    first, last = first_at_or_after(start), first_at_or_after(stop)
    source = (2 * np.arange(first, last) + 1) * size_in // (2 * size_out) - start
    return np.clip(source, 0, max(stop - start - 1, 0)), first


def interior_point(mask: np.ndarray) -> list[int]:
    """[x, y] of a mask's most interior pixel (the farthest from its edge; deterministic): an evaluation's click."""
    from scipy.ndimage import distance_transform_edt  # scipy: only evaluations click

    dist = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return [int(x), int(y)]


Masks = Union[np.ndarray, InstanceMasks, "list[dict]"]  # of one image: dense, box crops, or COCO RLEs


def iou_matrix(a: Masks, b: Masks) -> np.ndarray:
    """Pairwise IoU of two sets of masks of one image (A x H x W / B x H x W arrays, InstanceMasks or lists of COCO
    RLEs), by pycocotools on run-length encodings: no A x B x H x W product, whatever the number of objects."""
    ra, rb = _rles(a), _rles(b)
    if not ra or not rb:
        return np.zeros((len(ra), len(rb)))
    return np.asarray(coco_mask.iou(ra, rb, [0] * len(rb)), dtype=np.float64).reshape(len(ra), len(rb))


def _rles(masks: Masks) -> list[dict]:
    if isinstance(masks, list) and (not masks or isinstance(masks[0], dict)):
        return masks
    return [coco_mask.encode(np.asfortranarray(np.asarray(m, dtype=np.uint8))) for m in masks]  # one at a time
