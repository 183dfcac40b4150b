"""How the SAM2 data path scales: bytes per cached view, the data check, and peak memory against dataset size.

    python bench/bench_data_scale.py bytes                       # bytes per cached view at 1024 px (tiny)
    python bench/bench_data_scale.py rss --images 100,1000 --steps 20   # peak RSS of `trainer sam2` per dataset size
    python bench/bench_data_scale.py check --images 1000         # data check (decode + verdict cache) of N images
    python bench/bench_data_scale.py step                        # one 1024-px step: clicks checkpointed or not

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

    from trainer.sam2_ft.feature_cache import FeatureCache
    from trainer.sam2_ft.forward import encode_images, preprocess
    from trainer.sam2_ft.model import Sam2Spec, build_model

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


def rss(sizes: list[int], steps: int) -> None:
    print(f"| images (1024 px, 10 objects) | peak RSS MiB | wall s ({steps} steps, data check included) |")
    print("|---|---|---|")
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
            print(f"| {n} | {float(out[0]):.0f} | {float(out[1]):.0f} |", flush=True)


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


def step_memory(checkpointed: bool) -> tuple[float, float]:
    """Peak RSS (MiB) and seconds of one 1024-px training step (after a warm-up step), default recipe."""
    import torch

    from trainer.data.sample import Sample, SegmentationDataset
    from trainer.precision import resolve
    from trainer.sam2_ft import loop
    from trainer.sam2_ft.batches import TrainingImages
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.model import Sam2Spec, build_model

    loop.CHECKPOINT_CLICKS_FROM = 512 if checkpointed else 10**9
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
    trainer = loop.Trainer(cfg, build_model(Sam2Spec("tiny", 1024), train=True),
                           TrainingImages.for_run(data, cfg, progress=False), resolve("fp32", "cpu"))
    trainer.train_step()
    start = time.perf_counter()
    trainer.train_step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("bytes", "rss", "check", "step", "_one", "_step"))
    parser.add_argument("argv", nargs="?")
    parser.add_argument("--images", default="100,1000")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if args.what == "bytes":
        bytes_per_view()
    elif args.what == "rss":
        rss([int(v) for v in args.images.split(",")], args.steps)
    elif args.what == "check":
        check(int(args.images.split(",")[0]))
    elif args.what == "step":  # each variant in its own process: peak RSS is per process
        print("| 1024 px, batch 2, 8 objects, 6 corrective clicks | peak RSS MiB | step s |\n|---|---|---|")
        for variant in ("kept", "checkpointed"):
            out = subprocess.run([sys.executable, __file__, "_step", variant], capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout.split()
            print(f"| decoder passes {variant} | {float(out[0]):.0f} | {float(out[1]):.1f} |")
    elif args.what == "_step":
        print(*step_memory(args.argv == "checkpointed"))
    else:
        peak, seconds = child_peak_rss_mib(json.loads(args.argv), dict(os.environ))
        print(peak, seconds)


if __name__ == "__main__":
    main()
