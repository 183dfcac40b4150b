"""Which samples each step (and each process) sees, and the seeds of every random draw about them.

Every choice comes from a generator seeded by (seed, step, sample index): a 2-process run, a resumed run and a
single uninterrupted run draw the same. `Ahead` builds the micro-batches ahead of the step in loader workers.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Iterator

import numpy as np
import torch


def sample_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def step_indices(n: int, batch: int, step: int, micro: int, grad_accum: int, seed: int) -> list[int]:
    """The global batch of micro-step `micro` of `step`: positions in an endless stream of seeded epochs."""
    start = (step * grad_accum + micro) * batch
    out = []
    for pos in range(start, start + batch):
        epoch, offset = divmod(pos, n)
        out.append(int(np.random.default_rng(sample_seed(seed, epoch)).permutation(n)[offset]))
    return out


def rank_slice(indices: list[int], rank: int, world: int) -> list[int]:
    if len(indices) % world:
        raise ValueError(f"--batch-size {len(indices)} must be divisible by the number of processes ({world})")
    per = len(indices) // world
    return indices[rank * per:(rank + 1) * per]


class Ahead(torch.utils.data.Dataset):
    """The micro-batches of a run built ahead of the training step by `workers` DataLoader worker processes, so
    decoding, augmenting and resizing the next samples overlap the step (0 workers: built when asked, in this
    process). Entry k is micro-step k of the run (step k // grad_accum); `build(step, micro)` makes it, the same
    in any process (every draw is seeded), so a worker's items equal the ones this process would make."""

    def __init__(self, build: Callable[[int, int], list], grad_accum: int, steps: int, workers: int = 0):
        self.build, self.grad_accum, self.total, self.workers = build, grad_accum, steps * grad_accum, workers
        self._stream: Iterator[list] | None = None
        self._next = -1

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, k: int) -> list:
        return self.build(*divmod(k, self.grad_accum))

    def get(self, step: int, micro: int) -> list:
        """Micro-batch `micro` of `step`: the prefetched one when the run asks in order (it does, resumed or
        not), else built here and the workers restarted from the next one."""
        k = step * self.grad_accum + micro
        if self.workers <= 0 or k >= self.total or "fork" not in mp.get_all_start_methods():
            return self[k]  # (workers get the builder by fork: a closure over the run does not pickle)
        if k != self._next or self._stream is None:
            loader = torch.utils.data.DataLoader(self, batch_size=None, sampler=range(k, self.total),
                                                 num_workers=self.workers, collate_fn=_as_is,
                                                 multiprocessing_context="fork", prefetch_factor=2)
            self._stream = iter(loader)
        self._next = k + 1
        return next(self._stream)

    def close(self) -> None:
        """Stop the workers (also when the run stops early)."""
        self._stream, self._next = None, -1


def _as_is(batch: list) -> list:
    return batch
