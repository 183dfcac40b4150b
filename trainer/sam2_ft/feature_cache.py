"""Image-encoder outputs kept across steps when the encoder is frozen.

Keyed by (sample index, augmented view): trainer/sam2_ft/batches.py gives each image a fixed number of seeded
views, so augmentation and the cache get along. Only the encoder's FPN levels are stored — its position
encodings are the same for every image of a size, and neither the decoder path nor the semantic head reads them —
and they are stored in float16 (half the bytes; the step's loss stays within 1e-3 of a float32 cache, tested).
The mask decoder's projections (conv_s0/conv_s1) run after the cache so they keep training.
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence

import torch

from trainer.sam2_ft.forward import Encoded

FPN = "backbone_fpn"


class FeatureCache:
    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float16):
        self.device = torch.device(device)  # where entries live (the training device: no copies per step)
        self.dtype = dtype
        self._store: dict[Hashable, list[torch.Tensor]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        return sum(level.numel() * level.element_size() for levels in self._store.values() for level in levels)

    def get_batch(self, keys: Sequence[Hashable], compute: Callable[[list[int]], Encoded]) -> Encoded:
        """The encoder's FPN levels for `keys` as one float32 batch; compute(positions) encodes only the missing."""
        missing = [i for i, key in enumerate(keys) if key not in self._store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                fresh = compute(missing)[FPN]
            for row, i in enumerate(missing):
                self._store[keys[i]] = [self._pack(level[row:row + 1]) for level in fresh]
        entries = [self._store[key] for key in keys]
        return {FPN: [torch.cat([e[lvl] for e in entries]).float() for lvl in range(len(entries[0]))]}

    def _pack(self, level: torch.Tensor) -> torch.Tensor:
        packed = level.detach().to(self.device, self.dtype)
        if not torch.isfinite(packed).all():  # beyond float16's range: keep this level exact
            packed = level.detach().to(self.device, torch.float32)
        return packed.contiguous()
