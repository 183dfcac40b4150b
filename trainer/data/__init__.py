"""The shared data layer: every reader yields the same `Sample`; both trainers consume a `SegmentationDataset`."""

from trainer.data.sample import DataError, Sample, SegmentationDataset

__all__ = ["DataError", "Sample", "SegmentationDataset"]
