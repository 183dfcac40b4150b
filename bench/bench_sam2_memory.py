"""Peak memory and images/s of SAM2 training: frozen encoder vs LoRA vs full, each LoRA/full also with gradient
checkpointing.

    python bench/bench_sam2_memory.py [--image-size 1024] [--steps 3] [--lora 8] [--device cpu|cuda] [--modes ...]

Each mode runs in its own process (a fresh peak): random-init sam2.1 tiny, synthetic scenes at --image-size, batch
1, every object of the image, one warm-up step then --steps timed steps. Peak memory is the process's peak RSS on
CPU (getrusage), torch's peak allocated on CUDA; "training" is that peak minus the memory held once the model and
data are loaded. Ratios are against the first mode run (default: the frozen encoder with its feature cache),
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
warnings.filterwarnings("ignore")

MODES = {
    "frozen + cache": dict(freeze="image_encoder"),
    "LoRA": dict(freeze="image_encoder", lora=8),
    "full": dict(freeze="none"),
    "full + grad checkpointing": dict(freeze="none", grad_checkpointing=True),
    "LoRA + grad checkpointing": dict(freeze="image_encoder", lora=8, grad_checkpointing=True),
}


def peak_mib(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(mode: str, size: int, steps: int, lora: int, device: str) -> dict:
    """One mode in this process: {"loaded_mib", "peak_mib", "images_per_s", "trainable"}."""
    import torch

    from trainer.data.sample import SegmentationDataset
    from trainer.data.synthetic import CLASS_NAMES, make_scene
    from trainer.engine.images import TrainingImages
    from trainer.precision import resolve
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.trainer import Sam2Trainer
    from trainer.sam2_model.model import Sam2Spec, build_model

    options = dict(MODES[mode])
    if "lora" in options:
        options["lora"] = lora
    samples = [make_scene(i, size=size, max_vessels=4) for i in range(2)]
    dataset = SegmentationDataset.from_samples(samples, CLASS_NAMES, root="synthetic", format="synthetic")
    cfg = Sam2TrainConfig(image_size=size, no_pretrained=True, batch_size=1, max_objects=8, progress=False,
                          steps=steps + 1, warmup_steps=0, augment="none", device=device, **options).validate()
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", size), device=device, train=True)
    trainer = Sam2Trainer(cfg, model, TrainingImages.for_run(dataset, cfg, progress=False), resolve("fp32", device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    loaded = peak_mib(device) if device.startswith("cuda") else _rss_now()
    trainer.train_step()  # warm-up (fills the feature cache in the frozen mode)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"loaded_mib": loaded, "peak_mib": peak_mib(device), "images_per_s": steps / seconds,
            "trainable": sum(p.numel() for p in trainer.params)}


def _rss_now() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lora", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), metavar="MODE",
                        help=f"which to run (default: all; the first one given is the baseline): {', '.join(MODES)}")
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.image_size, args.steps, args.lora, args.device)))
        return

    print(f"sam2.1 tiny random init, {args.image_size}px, batch 1, every object, {args.steps} timed steps, "
          f"{args.device}; LoRA rank {args.lora}")
    results = {}
    for mode in args.modes:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--image-size", str(args.image_size),
                              "--steps", str(args.steps), "--lora", str(args.lora), "--device", args.device],
                             capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {mode}: done", flush=True)
    base = results[args.modes[0]]
    print(f"\n| mode | trainable params | peak MiB | training MiB (peak - loaded) | images/s | vs {args.modes[0]} |")
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(f"| {mode} | {r['trainable'] / 1e6:.2f} M | {r['peak_mib']:.0f} | {r['peak_mib'] - r['loaded_mib']:.0f} | "
              f"{r['images_per_s']:.3f} | {r['images_per_s'] / base['images_per_s']:.2f}x speed |")


if __name__ == "__main__":
    main()
