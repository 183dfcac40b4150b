"""The one sample type both trainers consume, the dataset container, and the data error type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from trainer.data.instances import InstanceMasks

HELD_OUT = ("val", "test", "heldout")  # split names that mean "never train on this image"


class DataError(Exception):
    """A problem with one input file. `str()` is a one-line report: '<path>: <problem>'."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass
class Sample:
    """One image with its instances.

    image:      HxWx3 uint8 RGB (grayscale / 16-bit / IR inputs are normalised by the readers)
    masks:      N instance masks (N may be 0 for an image with no objects), as box crops (trainer/data/instances.py);
                given as an N x H x W bool array they are cropped; `np.asarray(sample.masks)` is that array again
    class_ids:  N int64 indices into the dataset's `class_names`
    source:     path (or id) the image came from, for error messages and overlays
    split:      the split the dataset itself assigns ("train", "val", "test", "heldout"), "" when it assigns none
    """

    image: np.ndarray
    masks: InstanceMasks
    class_ids: np.ndarray
    source: str
    normalization: str = "none"  # how the image was brought to uint8 RGB; inference repeats it
    split: str = ""

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise DataError(self.source, f"image must be HxWx3 uint8, got {self.image.shape} {self.image.dtype}")
        self.masks = InstanceMasks.of(self.masks, *self.image.shape[:2])
        if self.masks.shape[1:] != self.image.shape[:2]:
            raise DataError(self.source, f"masks of {self.masks.width}x{self.masks.height} for an image of "
                                         f"{self.width}x{self.height}")
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if len(self.class_ids) != len(self.masks):
            raise DataError(self.source, f"{len(self.masks)} masks but {len(self.class_ids)} class ids")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def num_objects(self) -> int:
        """Instances with at least one pixel."""
        return int((self.masks.areas > 0).sum())


@dataclass
class SampleRef:
    """A lazily loaded sample: readers list these cheaply; `load()` reads and checks the files."""

    source: str
    load: Callable[[], Sample]
    split: str = ""  # the dataset's own split of this image, known without decoding it
    num_objects: int = -1  # its non-empty instances, when the data check counted them (-1: not known)


@dataclass
class SegmentationDataset(Sequence[Sample]):
    """An ordered collection of lazily loaded samples plus the category names (index = class id)."""

    class_names: list[str]
    refs: list[SampleRef]
    root: str = ""
    format: str = ""
    normalization: str = "none"
    skipped: list[DataError] = field(default_factory=list)  # samples dropped by `skip_bad`, reported not hidden

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return self.refs[index].load()

    def __iter__(self) -> Iterator[Sample]:
        for ref in self.refs:
            yield ref.load()

    @property
    def sources(self) -> list[str]:
        return [r.source for r in self.refs]

    def subset(self, indices: Sequence[int]) -> "SegmentationDataset":
        # `skipped` describes the source dataset, so a split still reports what was dropped from it
        return SegmentationDataset(self.class_names, [self.refs[i] for i in indices], self.root, self.format,
                                   self.normalization, list(self.skipped))

    @property
    def has_fixed_split(self) -> bool:
        """The dataset names its own held-out images (COCO images with "split": "val" / "test" / "heldout")."""
        return any(ref.split in HELD_OUT for ref in self.refs)

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple["SegmentationDataset", "SegmentationDataset"]:
        """The dataset's own split when it has one (held-out images are never trained on, whatever the fraction);
        else a seeded, reproducible train/val split by image (at least one image on each side when possible)."""
        if self.has_fixed_split:
            held = [ref.split in HELD_OUT for ref in self.refs]
            return (self.subset([i for i, h in enumerate(held) if not h]),
                    self.subset([i for i, h in enumerate(held) if h]))
        n = len(self)
        order = np.random.default_rng(seed).permutation(n)
        n_val = int(round(n * val_fraction))
        n_val = min(max(n_val, 1 if n > 1 and val_fraction > 0 else 0), max(n - 1, 0))
        val_idx = sorted(order[:n_val].tolist())
        train_idx = sorted(order[n_val:].tolist())
        return self.subset(train_idx), self.subset(val_idx)

    def describe(self, train: "SegmentationDataset", val: "SegmentationDataset", path: str,
                 fallback_format: str) -> dict[str, Any]:
        """The run summary's `dataset` entry: where it came from (as the user named it), format, split sizes,
        classes and normalisation."""
        return {"path": path, "format": self.format or fallback_format, "num_train": len(train), "num_val": len(val),
                "split": "the dataset's own" if self.has_fixed_split else "seeded",
                "class_names": list(self.class_names), "normalization": self.normalization}

    @classmethod
    def from_samples(cls, samples: Sequence[Sample], class_names: list[str], **kw) -> "SegmentationDataset":
        """Wrap in-memory samples (tests, synthetic data)."""
        refs = [SampleRef(s.source, (lambda s=s: s), s.split, s.num_objects)
                for s in samples]
        return cls(list(class_names), refs, **kw)
