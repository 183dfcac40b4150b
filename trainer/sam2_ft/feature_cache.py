"""Image-encoder outputs kept across epochs when the encoder is frozen.

Keyed by (sample index, augmentation), so a flipped image gets its own entry. Only the encoder's own output is
stored; the mask decoder's projections (conv_s0/conv_s1) run after the cache so they keep training.
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence

import torch

from trainer.sam2_ft.forward import Encoded


class FeatureCache:
    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)  # where entries live (the training device: no copies per step)
        self._store: dict[Hashable, Encoded] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def get_batch(self, keys: Sequence[Hashable], compute: Callable[[list[int]], Encoded]) -> Encoded:
        """Encoder outputs for `keys` as one batch; compute(positions) encodes only the missing ones."""
        missing = [i for i, key in enumerate(keys) if key not in self._store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                fresh = compute(missing)
            for row, i in enumerate(missing):
                self._store[keys[i]] = {name: [level[row:row + 1].detach().to(self.device) for level in levels]
                                        for name, levels in fresh.items()}
        entries = [self._store[key] for key in keys]
        if len(entries) == 1:  # batch 1: the entry itself (a cat would copy ~85 MB of 1024-px features per step)
            return {name: list(levels) for name, levels in entries[0].items()}
        return {name: [torch.cat([e[name][lvl] for e in entries]) for lvl in range(len(entries[0][name]))]
                for name in entries[0]}
