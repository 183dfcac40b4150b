"""The feature cache's RAM budget and disk tier: eviction, reuse across runs, keys that never go stale, and corrupt
files recomputed. The encoder outputs here are made by a fixed function of the key (the cache does not care what
computed them); the trainer-level test uses a real random-init sam2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.engine.feature_cache import FeatureCache, image_key, weights_fingerprint

SHAPES = [(1, 8, 16, 16), (1, 8, 8, 8), (1, 8, 4, 4)]
ENTRY_BYTES = sum(int(np.prod(s)) for s in SHAPES) * 2  # float16


def encoder(keys: list[str], calls: list[str]):
    """compute(positions) for the cache: deterministic levels per key, recording what was computed."""
    def compute(rows: list[int]) -> dict:
        calls.extend(keys[r] for r in rows)
        seeds = [int(keys[r], 16) % 2**31 for r in rows]
        return {"backbone_fpn": [torch.stack([torch.randn(s[1:], generator=torch.Generator().manual_seed(seed))
                                              for seed in seeds]) for s in SHAPES]}
    return compute


def keys_of(n: int) -> list[str]:
    return [image_key(np.full((4, 4, 3), i, np.uint8)) for i in range(n)]


def test_budget_evicts_least_recently_used_and_the_disk_tier_serves_them(tmp_path):
    keys, calls = keys_of(4), []
    cache = FeatureCache(budget_bytes=int(2.5 * ENTRY_BYTES), disk=tmp_path, namespace="w")
    first = [cache.get_batch([k], encoder([k], calls)) for k in keys]
    assert len(cache) == 2 and cache.nbytes <= 2.5 * ENTRY_BYTES and cache.evictions == 2
    again = cache.get_batch(keys[:2], encoder(keys[:2], calls))  # evicted from RAM, read back from disk
    assert calls == keys and cache.disk_hits == 2
    for i in range(2):
        for a, b in zip(again["backbone_fpn"], first[i]["backbone_fpn"]):
            torch.testing.assert_close(a[i], b[0])
    assert len(list((tmp_path).rglob("*.safetensors"))) == 4 and not list(tmp_path.rglob("*.tmp"))


def test_a_batch_larger_than_the_budget_is_encoded_in_chunks_and_returned_whole():
    keys, chunks = keys_of(5), []
    compute = encoder(keys, [])
    cache = FeatureCache(budget_bytes=int(2.5 * ENTRY_BYTES), encode_rows=2)
    sizes = []

    def watched(rows: list[int]) -> dict:
        chunks.append(rows)
        sizes.append(cache.nbytes)  # what the RAM tier holds while the next chunk is encoded
        return compute(rows)

    out = cache.get_batch(keys, watched)["backbone_fpn"]
    assert chunks == [[0, 1], [2, 3], [4]] and max(sizes) <= 2.5 * ENTRY_BYTES and cache.nbytes <= 2.5 * ENTRY_BYTES
    fresh = compute(list(range(5)))["backbone_fpn"]
    for a, b in zip(out, fresh):  # the evicted entries of this batch are still in it
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-3)


def test_a_later_run_reuses_the_disk_tier_but_other_weights_or_images_never_do(tmp_path):
    keys, calls = keys_of(2), []
    FeatureCache(disk=tmp_path, namespace="weights-a").get_batch(keys, encoder(keys, calls))
    FeatureCache(disk=tmp_path, namespace="weights-a").get_batch(keys, encoder(keys, calls))
    assert calls == keys  # the second run computed nothing
    FeatureCache(disk=tmp_path, namespace="weights-b").get_batch(keys, encoder(keys, calls))
    assert calls == keys + keys  # other encoder weights: recomputed
    image = np.zeros((8, 8, 3), np.uint8)
    other = image.copy()
    other[0, 0, 0] = 1
    assert image_key(image) != image_key(other) != image_key(np.zeros((8, 4, 6), np.uint8))
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert weights_fingerprint(a) != weights_fingerprint(b) and weights_fingerprint(a) == weights_fingerprint(a)


def test_a_corrupt_or_truncated_file_is_recomputed_with_a_warning(tmp_path):
    keys, calls = keys_of(2), []
    FeatureCache(disk=tmp_path).get_batch(keys, encoder(keys, calls))
    files = sorted(tmp_path.rglob("*.safetensors"))
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated, as by a full disk
    data = bytearray(files[1].read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the tensors
    files[1].write_bytes(bytes(data))
    cache = FeatureCache(disk=tmp_path)
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        out = cache.get_batch(keys, encoder(keys, calls))
    assert sorted(calls[2:]) == sorted(keys) and cache.disk_hits == 0
    fresh = encoder(keys, [])(list(range(2)))["backbone_fpn"]
    for a, b in zip(out["backbone_fpn"], fresh):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-3)
    assert FeatureCache(disk=tmp_path).get_batch(keys, encoder(keys, calls)) and len(calls) == 4  # rewritten


def test_resumed_run_reads_its_features_from_the_disk_tier(tmp_path):
    from trainer.data.synthetic import make_dataset
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.pipeline import run

    base = dict(image_size=128, no_pretrained=True, batch_size=2, steps=4, stop_after=2, lr=1e-4, warmup_steps=0,
                eval=False, overlays=0, progress=False, cache_views=1, cache_dir=str(tmp_path / "features"),
                out=str(tmp_path / "run"))
    data = make_dataset(3, 128, seed=1)  # 2 training images, 1 held out
    run(Sam2TrainConfig(**base), data)
    written = sorted((tmp_path / "features").rglob("*.safetensors"))
    assert len(written) == 2
    stamps = [p.stat().st_mtime_ns for p in written]
    assert run(Sam2TrainConfig(**{**base, "resume": True, "stop_after": 0}), data).status == "finished"
    assert [p.stat().st_mtime_ns for p in written] == stamps  # read, not recomputed and rewritten
