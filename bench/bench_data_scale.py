"""How the SAM2 data path scales: bytes per cached view, the data check, and peak memory against dataset size.

    python bench/bench_data_scale.py bytes                       # bytes per cached view at 1024 px (tiny)
    python bench/bench_data_scale.py rss --images 100,1000,10000 --steps 2 --plot bench/data_scale_rss.png
    python bench/bench_data_scale.py check --images 1000         # data check (decode + verdict cache) of N images
    python bench/bench_data_scale.py step                        # one 1024-px step: clicks checkpointed or not
    python bench/bench_data_scale.py profile [kept]              # where that step's peak RSS goes, phase by phase
    python bench/bench_data_scale.py many --size 2048 --objects 400  # one crowded image: validate, train, evaluate
    python bench/bench_data_scale.py disk --size 1024 --steps 3  # step time, views from the disk tier vs RAM
    python bench/bench_data_scale.py fetch --size 1024           # what one step's views cost to fetch per tier

`rss` writes N synthetic 1024 x 1024 JPEG images (copies of one generated scene with its masks, as a COCO folder)
and runs the real CLI (`python -m trainer sam2 --no-pretrained --image-size 1024 --steps S --no-eval`) in a child
process per size, reading its peak RSS from the kernel (ru_maxrss of the child), so the figures are the whole
run's: data check, model, feature cache, training.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere


def bytes_per_view(size: int = 1024) -> None:
    import torch

    from trainer.engine.feature_cache import FeatureCache
    from trainer.sam2_model.forward import encode_images, preprocess
    from trainer.sam2_model.model import Sam2Spec, build_model

    model = build_model(Sam2Spec("tiny", size)).eval()
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    with torch.no_grad():
        encoded = encode_images(model, preprocess(model, [image]))
    fpn = sum(t.numel() for t in encoded["backbone_fpn"])
    pos = sum(t.numel() for t in encoded["vision_pos_enc"])
    cache = FeatureCache()
    cache.get_batch(["x"], lambda rows: encoded)
    mib = 2**20
    print(f"sam2.1 tiny at {size} px, one cached view:")
    print(f"  before (FPN levels + position encodings, float32): {(fpn + pos) * 4 / mib:8.1f} MiB")
    print(f"  FPN levels only, float32:                          {fpn * 4 / mib:8.1f} MiB")
    print(f"  now (FPN levels only, float16):                    {cache.nbytes / mib:8.1f} MiB  "
          f"({(fpn + pos) * 4 / cache.nbytes:.1f}x smaller)")
    s0 = model.sam_mask_decoder.conv_s0.out_channels * (size // 4) ** 2
    s1 = model.sam_mask_decoder.conv_s1.out_channels * (size // 8) ** 2
    embed = encoded["backbone_fpn"][-1].numel()
    print(f"  (not implemented) after conv_s0/conv_s1, float16:  {(s0 + s1 + embed) * 2 / mib:8.1f} MiB  "
          "(only when the mask decoder's projections are frozen too)")


def write_synthetic(folder: Path, n: int, size: int = 1024, objects: int = 10) -> Path:
    """N copies of one scene (a JPEG and its RLE masks) as a COCO folder: sizes and decoding cost of real data."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = (rng.normal(90, 20, (size, size, 3))).clip(0, 255).astype(np.uint8)
    annotations, segs = [], []
    for k in range(objects):
        cy, cx, r = rng.integers(100, size - 100, 2).tolist() + [int(rng.integers(30, 90))]
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        image[mask] = rng.integers(150, 255, 3)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        segs.append({"size": rle["size"], "counts": rle["counts"].decode()})
    (folder / "images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / "images" / "scene.jpg", quality=90)
    data = (folder / "images" / "scene.jpg").read_bytes()
    images = []
    for i in range(n):
        name = f"img{i:05d}.jpg"
        (folder / "images" / name).write_bytes(data)
        images.append({"id": i + 1, "file_name": name, "height": size, "width": size})
        for k, seg in enumerate(segs):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1, "segmentation": seg,
                                "area": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0})
    (folder / "images" / "scene.jpg").unlink()
    (folder / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                         "categories": [{"id": 1, "name": "blob"}]}))
    return folder


def child_peak_rss_mib(argv: list[str], env: dict) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - start


def rss(sizes: list[int], steps: int, plot: str = "") -> None:
    print(f"| images (1024 px, 10 objects) | peak RSS MiB | wall s ({steps} steps, data check included) |")
    print("|---|---|---|")
    peaks = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data = write_synthetic(Path(tmp) / "data", n)
            env = {**os.environ, "SEGKIT_CACHE_DIR": str(Path(tmp) / "cache")}
            argv = [sys.executable, "-m", "trainer", "sam2", "--data", str(data), "--no-pretrained", "--image-size",
                    "1024", "--steps", str(steps), "--no-eval", "--overlays", "0", "--no-progress", "--out",
                    str(Path(tmp) / "run")]
            # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: one size per process keeps them apart
            out = subprocess.run([sys.executable, __file__, "_one", json.dumps(argv)], env=env, cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split()
            peaks.append(float(out[0]))
            print(f"| {n} | {peaks[-1]:.0f} | {float(out[1]):.0f} |", flush=True)
    if plot:
        plot_rss(sizes, peaks, plot)


def plot_rss(sizes: list[int], peaks_mib: list[float], path: str) -> None:
    """Peak RSS against dataset size (log axis), with the 6 GB goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(sizes, [p / 1024 for p in peaks_mib], "o-", label="python -m trainer sam2 (1024 px)")
    ax.axhline(6, color="red", linestyle="--", label="goal: 6 GB")
    ax.set(xscale="log", xlabel="training images", ylabel="peak RSS (GB)", ylim=(0, 8),
           title="Peak memory against dataset size")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def check(n: int) -> None:
    from trainer.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic(Path(tmp) / "data", n)
        os.environ["SEGKIT_CACHE_DIR"] = str(Path(tmp) / "cache")
        start = time.perf_counter()
        load_dataset(data)
        first = time.perf_counter() - start
        start = time.perf_counter()
        load_dataset(data)
        again = time.perf_counter() - start
    print(f"data check of {n} images of 1024 px (10 objects each), {os.cpu_count()} cores: {first:.1f} s; "
          f"unchanged, again (e.g. --resume): {again:.2f} s ({first / max(again, 1e-9):.0f}x)")


def _scenes(n: int, size: int, objects: int = 10) -> list:
    """n synthetic size x size scenes of bright discs on dark noise (Samples)."""
    from trainer.data.sample import Sample

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for i in range(n):
        image, masks = rng.integers(0, 80, (size, size, 3), dtype=np.uint8), []
        for _ in range(objects):
            cy, cx = rng.integers(size // 10, size - size // 10, 2)
            masks.append((yy - cy) ** 2 + (xx - cx) ** 2 < (size // 17) ** 2)
            image[masks[-1]] = 200
        out.append(Sample(image, np.stack(masks), np.zeros(objects), f"s{i}"))
    return out


def disk_vs_ram(size: int, steps: int) -> None:
    """Training step time (frozen encoder, cached features) when every view comes from the RAM tier vs when the
    RAM budget is ~0 and views are read back from the disk tier (safetensors + checksum, warm page cache).
    Steps of the two alternate, so machine load hits both alike."""
    import torch

    from trainer.data.sample import SegmentationDataset
    from trainer.engine.images import TrainingImages
    from trainer.precision import resolve
    from trainer.sam2_ft import trainer as loop
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_model.model import Sam2Spec, build_model

    data = SegmentationDataset.from_samples(_scenes(3, size), ["blob"])
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for variant, budget in (("RAM tier", 2048.0), ("disk tier", 1e-6)):  # a ~0 budget keeps one view in RAM
            cfg = Sam2TrainConfig(no_pretrained=True, image_size=size, batch_size=2, steps=100, progress=False,
                                  eval=False, cache_views=1, cache_budget=budget, cache_dir=tmp)
            torch.manual_seed(0)  # the same weights: both read the disk tier the first one writes
            trainers[variant] = loop.Sam2Trainer(cfg, build_model(Sam2Spec("tiny", size), train=True),
                                             TrainingImages.for_run(data, cfg, progress=False), resolve("fp32", "cpu"))
        ram = trainers["RAM tier"]
        while ram.objective.cache.misses < len(data):  # fill both tiers with every view
            ram.train_step()
        times: dict[str, list[float]] = {v: [] for v in trainers}
        for _ in range(steps):
            for variant, trainer in trainers.items():
                start = time.perf_counter()
                trainer.train_step()
                times[variant].append(time.perf_counter() - start)
        print(f"| {size} px, batch 2, sam2.1 tiny, fp32 | median step s | views from RAM / disk / encoder |")
        print("|---|---|---|")
        for variant, trainer in trainers.items():
            c = trainer.objective.cache
            print(f"| {variant} | {np.median(times[variant]):.2f} | {c.hits - c.disk_hits} / {c.disk_hits} / "
                  f"{c.misses} |")
        ratio = np.median(times["RAM tier"]) / np.median(times["disk tier"])
        print(f"disk tier / RAM tier step rate: {ratio:.2f}x (goal >= 0.8x)")


def fetch_times(size: int, repeats: int = 5) -> None:
    """What one step's views cost to fetch from each tier: RAM (a hit is a dict lookup and a float cast) vs disk
    (safetensors read + sha256 check, warm page cache), batch 2, median of `repeats`."""
    import torch

    from trainer.engine.feature_cache import FeatureCache
    from trainer.sam2_model.forward import encode_images, preprocess
    from trainer.sam2_model.model import Sam2Spec, build_model

    model = build_model(Sam2Spec("tiny", size)).eval()
    images = [s.image for s in _scenes(2, size)]
    keys = ["a", "b"]

    def encode(rows: list[int]):
        return encode_images(model, preprocess(model, [images[r] for r in rows]))

    def refuse(rows: list[int]):
        raise AssertionError("a cached view was recomputed")

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        ram = FeatureCache(budget_bytes=2**31, disk=tmp, namespace="bench")
        disk = FeatureCache(budget_bytes=1, disk=tmp, namespace="bench")  # keeps no view in RAM between steps
        ram.get_batch(keys, encode)  # computes both views, writes the disk tier
        timings = {}
        for name, cache in (("RAM tier", ram), ("disk tier", disk)):
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                cache.get_batch(keys, refuse)
                runs.append(time.perf_counter() - start)
                cache._store.clear()
                cache.nbytes = 0
                if cache is ram:
                    ram.get_batch(keys, refuse)  # back in RAM (read from disk) before the next timed RAM fetch
            timings[name] = float(np.median(runs))
        print(f"fetching one step's 2 views at {size} px: RAM tier {timings['RAM tier'] * 1e3:.0f} ms, "
              f"disk tier {timings['disk tier'] * 1e3:.0f} ms (disk hits {disk.disk_hits})")


def step_trainer(checkpointed: bool):
    """The default 1024-px recipe's trainer (sam2.1 tiny, frozen cached encoder, batch 2, 8 objects, 6 clicks) on
    two synthetic 1024-px images of 10 blobs."""
    import torch

    from trainer.data.sample import Sample, SegmentationDataset
    from trainer.engine.images import TrainingImages
    from trainer.precision import resolve
    from trainer.sam2_ft import trainer as loop
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_model.model import Sam2Spec, build_model

    loop.CHECKPOINT_ABOVE_PASSES = 0 if checkpointed else 10**9
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:1024, :1024]
    image, masks = rng.integers(0, 80, (1024, 1024, 3), dtype=np.uint8), []
    for _ in range(10):
        cy, cx = rng.integers(100, 924, 2)
        masks.append((yy - cy) ** 2 + (xx - cx) ** 2 < 60 ** 2)
        image[masks[-1]] = 200
    data = SegmentationDataset.from_samples([Sample(image, np.stack(masks), np.zeros(10), f"s{i}") for i in range(2)],
                                            ["blob"])
    cfg = Sam2TrainConfig(no_pretrained=True, image_size=1024, batch_size=2, steps=3, progress=False, eval=False)
    torch.manual_seed(0)
    return loop.Sam2Trainer(cfg, build_model(Sam2Spec("tiny", 1024), train=True),
                            TrainingImages.for_run(data, cfg, progress=False), resolve("fp32", "cpu"))


def step_memory(checkpointed: bool) -> tuple[float, float]:
    """Peak RSS (MiB) and seconds of one 1024-px training step (after a warm-up step), default recipe."""
    trainer = step_trainer(checkpointed)
    trainer.train_step()
    start = time.perf_counter()
    trainer.train_step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - start


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def step_profile(checkpointed: bool) -> None:
    """Where a 1024-px step's peak RSS goes: each phase's own peak above the resident memory it started from (the
    kernel's high-water mark VmHWM, reset before each phase through /proc/self/clear_refs), after a warm-up step.
    A phase's figure counts only pages beyond those the process already had: where the allocator keeps what it
    freed (glibc without trainer/engine/memory.py's setting) the warm-up step's freed memory hides later peaks."""
    rows: list[tuple[str, float, float]] = []

    def phase(name: str, fn):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = _rss_mib("VmRSS")
        out = fn()
        rows.append((name, _rss_mib("VmHWM") - before, _rss_mib("VmRSS") - before, _rss_mib("VmHWM")))
        return out

    base = _rss_mib("VmRSS")
    trainer = phase("torch, sam2 + the model and trainer built (sam2.1 tiny fp32)", lambda: step_trainer(checkpointed))
    trainer.train_step()  # warm-up: optimizer state exists, first views cached
    parts = trainer.split(trainer.micro_batch(0))  # as the step runs it: image by image when the step is large
    objective = trainer.objective
    objective.cache.clear()  # the encoder passes below are misses, as a fresh view's is

    def encode() -> None:
        for (items, _), _ in parts:  # one call per part, its output dropped before the next, as in the step
            objective.encode(items)

    phase(f"image encoder, 2 views at 1024 px in {len(parts)} call(s) (no_grad: cache misses)", encode)
    for n, ((items, kind), weight) in enumerate(parts, 1):
        loss = phase(f"forward {n}/{len(parts)}: {len(items)} image(s) x {len(items[0].masks)} objects x "
                     f"{objective.correction_clicks + 1} decoder passes ({'checkpointed' if checkpointed else 'kept'}; "
                     "views from the cache)", lambda: objective(items, kind) * weight)
        phase(f"backward {n}/{len(parts)}", loss.backward)
        del loss
    phase("optimizer step (AdamW, fused)", trainer.optimizer.step)
    print(f"| phase (1024 px, batch 2, decoder passes {'checkpointed' if checkpointed else 'kept'}) | peak above its "
          f"start MiB | held after MiB |\n|---|---|---|\n| python + numpy (torch not yet imported) | {base:.0f} | {base:.0f} |")
    for name, peak, held, _ in rows:
        print(f"| {name} | {peak:.0f} | {held:+.0f} |")
    # (not ru_maxrss: clearing VmHWM clears it too, and the warm-up step's peak is not a phase of this table)
    print(f"| **highest RSS of these phases** | **{max(top for *_, top in rows):.0f}** | |")


def write_crowded(folder: Path, size: int, objects: int) -> Path:
    """One size x size image of `objects` round cells (radius 8-30 px, later ones over earlier ones) as a mask
    folder with a 16-bit label-index PNG: a microscopy-style layout."""
    from PIL import Image

    rng = np.random.default_rng(0)
    image = rng.normal(60, 15, (size, size, 3)).clip(0, 255).astype(np.uint8)
    label = np.zeros((size, size), np.uint16)
    for k in range(objects):
        r = int(rng.integers(8, 31))
        cy, cx = rng.integers(r, size - r, 2)
        yy, xx = np.ogrid[cy - r:cy + r + 1, cx - r:cx + r + 1]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        label[cy - r:cy + r + 1, cx - r:cx + r + 1][disc] = k + 1
        image[cy - r:cy + r + 1, cx - r:cx + r + 1][disc] = rng.integers(120, 255, 3)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    Image.fromarray(image).save(folder / "images" / "cells.png")
    Image.fromarray(label).save(folder / "masks" / "cells.png")
    return folder


def many(size: int, objects: int, steps: int) -> None:
    """Peak RSS and time of validate-data, a 1024-px training run and evaluate on one crowded image, each the real
    CLI in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        data = write_crowded(Path(tmp) / "cells", size, objects)
        run = Path(tmp) / "run"
        env = {**os.environ, "SEGKIT_CACHE_DIR": str(Path(tmp) / "cache")}
        jobs = {"validate-data": ["validate-data", str(data)],
                f"trainer sam2 (1024 px, {steps} steps)": [
                    "sam2", "--data", str(data), "--no-pretrained", "--image-size", "1024", "--steps", str(steps),
                    "--no-eval", "--overlays", "0", "--no-progress", "--out", str(run)],
                "evaluate": ["evaluate", str(run), "--data", str(data)]}
        print(f"| {size}² image, {objects} objects | peak RSS MiB | wall s |\n|---|---|---|")
        for name, args in jobs.items():
            argv = [sys.executable, "-m", "trainer", *args]
            out = subprocess.run([sys.executable, __file__, "_one", json.dumps(argv)], env=env, cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"| {name} | {float(out[0]):.0f} | {float(out[1]):.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("bytes", "rss", "check", "step", "many", "disk", "fetch",
                                                   "profile", "_one", "_step"))
    parser.add_argument("argv", nargs="?")
    parser.add_argument("--images", default="100,1000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--plot", default="", help="rss: also draw peak RSS against size to this PNG")
    parser.add_argument("--size", type=int, default=2048, help="many: the image's side")
    parser.add_argument("--objects", type=int, default=400, help="many: objects in the image")
    args = parser.parse_args()
    if args.what == "bytes":
        bytes_per_view()
    elif args.what == "rss":
        rss([int(v) for v in args.images.split(",")], args.steps, args.plot)
    elif args.what == "check":
        check(int(args.images.split(",")[0]))
    elif args.what == "step":  # each variant in its own process: peak RSS is per process
        print("| 1024 px, batch 2, 8 objects, 6 corrective clicks | peak RSS MiB | step s |\n|---|---|---|")
        for variant in ("kept", "checkpointed"):
            out = subprocess.run([sys.executable, __file__, "_step", variant], capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout.split()
            print(f"| decoder passes {variant} | {float(out[0]):.0f} | {float(out[1]):.1f} |")
    elif args.what == "fetch":
        fetch_times(args.size)
    elif args.what == "disk":
        disk_vs_ram(args.size, args.steps)
    elif args.what == "many":
        many(args.size, args.objects, args.steps)
    elif args.what == "profile":  # decoder passes checkpointed unless "kept"
        step_profile(args.argv != "kept")
    elif args.what == "_step":
        print(*step_memory(args.argv == "checkpointed"))
    else:
        peak, seconds = child_peak_rss_mib(json.loads(args.argv), dict(os.environ))
        print(peak, seconds)


if __name__ == "__main__":
    main()
