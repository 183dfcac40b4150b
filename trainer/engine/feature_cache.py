"""Image-encoder outputs kept across steps when the encoder is frozen: a bounded RAM tier and an optional disk tier.

Keys are digests of the exact model-input image (`image_key`), so a view is found again whatever step, process or
run draws it, and a changed image, size or augmentation can never be served stale features. The trainers give each
image a fixed number of seeded views (trainer/engine/images.py), so augmentation and the cache get along.

Only the encoder's FPN levels are stored — its position encodings are the same for every image of a size, and
neither the decoder path nor the semantic head reads them — in float16 (a quarter of the bytes of both in float32;
the step's loss stays within 1e-3 of a float32 cache, tested). The mask decoder's projections (conv_s0/conv_s1) run
after the cache so they keep training.

RAM tier: least recently used entries are dropped beyond `budget_bytes`. Disk tier (`disk`): every entry is also
written there as a safetensors file (atomically: written aside, then renamed, so a kill leaves nothing half-written
under a real name) with a sha256 of its bytes; a file that is truncated or fails its checksum is recomputed with a
warning. Disk entries live under a namespace of the encoder's weights and dtype, so other weights never read them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Hashable, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

FPN = "backbone_fpn"
Encoded = dict[str, list[torch.Tensor]]  # an image encoder's outputs by name; FPN is the one cached
# Images per encoder call on a miss: a no-grad 1024-px pass of sam2.1 tiny over 2 images peaked ~0.3 GiB above its
# start (bench_data_scale.py profile) and its float32 output is 84 MiB per image, so a video step's 8 frames in one
# call would hold 4x both.
ENCODE_ROWS = 2


def image_key(image: np.ndarray) -> str:
    """The cache key of a model-input image: a digest of its pixels and shape."""
    return hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16,
                           person=str(image.shape).encode()[:16]).hexdigest()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A digest of a module's weights (names, shapes, dtypes, values): the disk tier's namespace."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().data)
    return digest.hexdigest()[:24]


class FeatureCache:
    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float16,
                 budget_bytes: int = 0, disk: str | Path | None = None, namespace: str = "",
                 encode_rows: int = ENCODE_ROWS):
        self.device = torch.device(device)  # where RAM entries live (the training device: no copies per step)
        self.dtype = dtype
        self.budget_bytes = budget_bytes  # 0: unbounded
        self.disk = Path(disk) / f"{namespace or 'default'}-{str(dtype).split('.')[-1]}" if disk else None
        self.encode_rows = encode_rows  # images per encoder call at most (0: all the batch's misses in one call)
        self._store: OrderedDict[Hashable, list[torch.Tensor]] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = self.disk_hits = self.evictions = 0

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Drop every RAM entry (the disk tier stays)."""
        self._store.clear()
        self.nbytes = 0

    def get_batch(self, keys: Sequence[Hashable], compute: Callable[[list[int]], Encoded]) -> Encoded:
        """The encoder's FPN levels for `keys` as one float32 batch; compute(positions) encodes only the missing,
        `encode_rows` at a time.

        Peak memory stays near the budget: each encoded chunk is packed, stored and the budget enforced before the
        next chunk is encoded (entries of this batch that were evicted are still returned), and the float32 batch
        is filled in place rather than concatenated from float32 copies of every entry."""
        entries: list[list[torch.Tensor] | None] = [self._lookup(key) for key in keys]
        missing = [i for i, entry in enumerate(entries) if entry is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        step = self.encode_rows or max(1, len(missing))
        for chunk in (missing[i:i + step] for i in range(0, len(missing), step)):
            with torch.no_grad():
                fresh = compute(chunk)[FPN]
            for row, i in enumerate(chunk):
                entries[i] = [self._pack(level[row:row + 1]) for level in fresh]
                self._insert(keys[i], entries[i])
                self._write(keys[i], entries[i])
            del fresh
            self._evict()
        self._evict()
        return {FPN: [_stacked([e[lvl] for e in entries]) for lvl in range(len(entries[0]))]}

    # RAM tier ------------------------------------------------------------------------------------------------------
    def _lookup(self, key: Hashable) -> list[torch.Tensor] | None:
        if key in self._store:
            self._store.move_to_end(key)
            return self._store[key]
        entry = self._read(key)
        if entry is not None:
            self.disk_hits += 1
            self._insert(key, entry)
        return entry

    def _insert(self, key: Hashable, entry: list[torch.Tensor]) -> None:
        self._store[key] = entry
        self.nbytes += _size(entry)

    def _evict(self) -> None:
        while self.budget_bytes and self.nbytes > self.budget_bytes and len(self._store) > 1:
            _, entry = self._store.popitem(last=False)
            self.nbytes -= _size(entry)
            self.evictions += 1

    def _pack(self, level: torch.Tensor) -> torch.Tensor:
        packed = level.detach().to(self.device, self.dtype)
        if not torch.isfinite(packed).all():  # beyond float16's range: keep this level exact
            packed = level.detach().to(self.device, torch.float32)
        return packed.contiguous()

    # Disk tier -----------------------------------------------------------------------------------------------------
    def _path(self, key: Hashable) -> Path | None:
        return None if self.disk is None else self.disk / f"{key}.safetensors"

    def _write(self, key: Hashable, entry: list[torch.Tensor]) -> None:
        path = self._path(key)
        if path is None or path.exists():
            return

        tensors = {f"level{i}": t.cpu() for i, t in enumerate(entry)}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"sha256": _checksum(tensors)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _read(self, key: Hashable) -> list[torch.Tensor] | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None

        try:
            with safe_open(str(path), framework="pt") as f:
                expected = (f.metadata() or {}).get("sha256")
                tensors = {name: f.get_tensor(name) for name in sorted(f.keys())}
            if expected != _checksum(tensors):
                raise ValueError("checksum mismatch")
        except Exception as err:  # noqa: BLE001 - any unreadable entry is recomputed, never trusted
            warnings.warn(f"{path}: cached features are corrupt or truncated ({type(err).__name__}: {err}); "
                          "recomputing them", stacklevel=3)
            path.unlink(missing_ok=True)
            return None
        return [tensors[f"level{i}"].to(self.device) for i in range(len(tensors))]


def run_cache(cfg, encoder: torch.nn.Module, device: torch.device) -> FeatureCache:
    """The cache a trainer's config asks for: --cache-budget MiB of RAM, the disk tier in --cache-dir if given."""
    return FeatureCache(device, budget_bytes=int(cfg.cache_budget * 2**20), disk=cfg.cache_dir or None,
                        namespace=weights_fingerprint(encoder) if cfg.cache_dir else "")


def view_bytes(image_size: int) -> int:
    """Bytes of one cached view at `image_size`: sam2's three FPN levels (256 channels at S/4, S/8, S/16) in float16
    (42 MiB at 1024 px)."""
    return 256 * 2 * sum((image_size // stride) ** 2 for stride in (4, 8, 16))


def _stacked(rows: list[torch.Tensor]) -> torch.Tensor:
    """Entries (1 x ...) as one float32 batch, each converted straight into its row: no float32 copy per entry."""
    out = torch.empty((len(rows), *rows[0].shape[1:]), dtype=torch.float32, device=rows[0].device)
    for i, row in enumerate(rows):
        out[i].copy_(row[0])
    return out


def _size(entry: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in entry)


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().view(torch.uint8).numpy().data)
    return digest.hexdigest()
