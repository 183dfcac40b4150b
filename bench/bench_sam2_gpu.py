"""SAM2 training on a GPU: fp32 vs fp16 (+ GradScaler) vs bf16 step time and peak memory, per model size, at 1024².

    python bench/bench_sam2_gpu.py [--sizes tiny small] [--image-size 1024] [--batch 4] [--steps 8]

For each size and precision: random-init sam2.1, everything trained (`--freeze none`) by our SAM2 Trainer on
synthetic scenes (every object, up to 8), batch --batch; the median step time over --steps after 3 warm-up steps,
and torch's peak allocated memory over those steps. Utilisation: the image encoder's forward FLOPs for one image,
counted by torch.utils.flop_counter (the issue's figure: ~205 GFLOPs for tiny at 1024²), x3 for forward + backward,
x images/s, against the chip's dense matrix peak (--peak-tflops, default the H200's ~990 for fp16/bf16 and ~67 for
fp32; fp32 matmuls run as TF32 only if torch is told to, which our trainer does not). The decoder's share is left
out of the FLOPs, so the figure is a lower bound. Also the encoder's inference images/s at batch 8 (the app's
embedding). Ratios against fp32 measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
warnings.filterwarnings("ignore")

PEAK_TFLOPS = {"fp32": 67.0, "fp16": 990.0, "bf16": 990.0}  # H200 SXM datasheet, dense


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def encoder_gflops(model: torch.nn.Module, size: int, device: str) -> float:
    """Forward FLOPs of the image encoder for one image, counted (not estimated)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.image_encoder(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops() / 1e9


def train_run(size_name: str, precision_name: str, image_size: int, batch: int, steps: int, device: str) -> dict:
    from trainer.data.sample import SegmentationDataset
    from trainer.data.synthetic import CLASS_NAMES, make_scene
    from trainer.precision import resolve
    from trainer.sam2_ft.batches import TrainingImages
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.loop import Trainer
    from trainer.sam2_ft.model import Sam2Spec, build_model

    samples = [make_scene(i, size=image_size, max_vessels=4) for i in range(2 * batch)]
    dataset = SegmentationDataset.from_samples(samples, CLASS_NAMES, root="synthetic", format="synthetic")
    cfg = Sam2TrainConfig(size=size_name, image_size=image_size, no_pretrained=True, freeze="none", batch_size=batch,
                          max_objects=8, progress=False, steps=steps + 4, warmup_steps=0, augment="none", device=device,
                          precision=precision_name).validate()
    torch.manual_seed(0)
    model = build_model(Sam2Spec(size_name, image_size), device=device, train=True)
    trainer = Trainer(cfg, model, TrainingImages.for_run(dataset, cfg, progress=False), resolve(precision_name, device))
    for _ in range(3):
        trainer.train_step()
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step()
        sync(device)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    result = {"step_s": step_s, "images_per_s": batch / step_s, "peak_gib": peak,
              "gflops": encoder_gflops(model, image_size, device)}
    # the encoder alone, inference, batch 8, autocast as the app runs it
    with torch.inference_mode(), resolve(precision_name, device).autocast():
        x = torch.randn(8 if device.startswith("cuda") else 1, 3, image_size, image_size, device=device)
        for _ in range(3):
            model.image_encoder(x)
        sync(device)
        start = time.perf_counter()
        for _ in range(5):
            model.image_encoder(x)
        sync(device)
    result["embed_images_per_s"] = 5 * len(x) / (time.perf_counter() - start)
    del trainer, model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "bf16"])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_sam2_gpu.py needs a CUDA GPU (--device cpu only to smoke-test the script)")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{name} | torch {torch.__version__} | {args.image_size}² | batch {args.batch} | "
          f"everything trained | median of {args.steps} steps", flush=True)
    print("\n| model | precision | step s | images/s | vs fp32 | peak GiB | encoder GFLOPs/image | "
          "train TFLOP/s (encoder, x3) | of peak | embed images/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        base = None
        for name in args.precisions:
            try:
                r = train_run(size, name, args.image_size, args.batch, args.steps, args.device)
            except Exception as error:  # one failing precision must not hide the others' figures
                print(f"| {size} | {name} | failed: {type(error).__name__}: {str(error)[:200]} |||||||| ", flush=True)
                continue
            base = base or r
            tflops = 3 * r["gflops"] * r["images_per_s"] / 1e3
            print(f"| {size} | {name} | {r['step_s']:.3f} | {r['images_per_s']:.1f} | "
                  f"{r['images_per_s'] / base['images_per_s']:.2f}x | {r['peak_gib']:.1f} | {r['gflops']:.0f} | "
                  f"{tflops:.1f} | {tflops / PEAK_TFLOPS[name]:.1%} | {r['embed_images_per_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
