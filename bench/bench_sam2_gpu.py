"""SAM2 training on a GPU: fp32 vs fp16 (+ GradScaler) vs bf16 step time and peak memory, per model size, at 1024².

    python bench/bench_sam2_gpu.py [--sizes tiny small] [--image-size 1024] [--batch 4] [--steps 8]
    python bench/bench_sam2_gpu.py --compare [--before REF] [--after REF] [--device cpu] [--image-size 256] ...

--compare (issue 17; runs on a CPU too): the same step at two commits of trainer/ (--before, default the commit
before issue 17; --after, default this working tree), each variant in its own process (eager before, eager after,
eager after with the objects padded as on a GPU (--padded-too; a CPU does not pad), --compile after with
--compile-too), eager rounds alternating, ratios taken within a round; per variant the median step time, the first steps'
time (compilation), and per step the ops that would sync a GPU (values read back, data-dependent shapes) and all
aten ops dispatched (on a GPU, about the kernel launches) — counted by a TorchDispatchMode over one step, the
data loading and the host-side preprocessing left out.

For each size and precision: random-init sam2.1, everything trained (`--freeze none`) by our SAM2 Trainer on
synthetic scenes (every object, up to 8), batch --batch; the median step time over --steps after 3 warm-up steps,
and torch's peak allocated memory over those steps. Utilisation: the image encoder's forward FLOPs for one image,
counted by torch.utils.flop_counter (the issue's figure: ~205 GFLOPs for tiny at 1024²), x3 for forward + backward,
x images/s, against the chip's dense matrix peak (--peak-tflops, default the H200's ~990 for fp16/bf16 and ~67 for
fp32; fp32 matmuls run as TF32 since issue 17: the trainer sets it on CUDA). The decoder's share is left
out of the FLOPs, so the figure is a lower bound. Also the encoder's inference images/s at batch 8 (the app's
embedding). Ratios against fp32 measured in the same run.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

# run as a script from anywhere; --compare's workers import trainer/ from the commit they measure
sys.path.insert(0, os.environ.get("BENCH_TRAINER_TREE", str(Path(__file__).resolve().parents[1])))
warnings.filterwarnings("ignore")

PEAK_TFLOPS = {"fp32": 67.0, "fp16": 990.0, "bf16": 990.0}  # H200 SXM datasheet, dense
BEFORE_17 = "6f855ed^"  # the commit before issue 17's step changes
# aten ops that make the host wait for a GPU: a value read back, or an output whose size depends on the data
SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_dim", "equal", "is_nonzero",
           "bincount", "repeat_interleave"}


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
    from trainer.engine.images import TrainingImages
    from trainer.precision import resolve
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.trainer import Sam2Trainer
    from trainer.sam2_model.model import Sam2Spec, build_model

    samples = [make_scene(i, size=image_size, max_vessels=4) for i in range(2 * batch)]
    dataset = SegmentationDataset.from_samples(samples, CLASS_NAMES, root="synthetic", format="synthetic")
    cfg = Sam2TrainConfig(size=size_name, image_size=image_size, no_pretrained=True, freeze="none", batch_size=batch,
                          max_objects=8, progress=False, steps=steps + 4, warmup_steps=0, augment="none", device=device,
                          precision=precision_name).validate()
    torch.manual_seed(0)
    model = build_model(Sam2Spec(size_name, image_size), device=device, train=True)
    trainer = Sam2Trainer(cfg, model, TrainingImages.for_run(dataset, cfg, progress=False),
                          resolve(precision_name, device))
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


def count_ops(step) -> tuple[int, int]:
    """(syncing ops, all aten ops) dispatched by one call of `step`."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[func._overloadpacket.__name__ in SYNCING] += 1
            return func(*args, **(kwargs or {}))

    counts = [0, 0]
    with Count():
        step()
    return counts[1], counts[0] + counts[1]


def step_worker(args: argparse.Namespace) -> None:
    """One variant of --compare in this process (trainer/ from PYTHONPATH): prints its figures as one JSON line."""
    from torch.utils._python_dispatch import _disable_current_modes

    from trainer.data.sample import SegmentationDataset
    from trainer.data.synthetic import CLASS_NAMES, make_scene
    from trainer.engine.images import TrainingImages
    from trainer.precision import resolve
    from trainer.sam2_ft import objective as objective_module
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.trainer import Sam2Trainer
    from trainer.sam2_model.model import Sam2Spec, build_model

    samples = [make_scene(i, size=args.image_size, max_vessels=4) for i in range(2 * args.batch)]
    dataset = SegmentationDataset.from_samples(samples, CLASS_NAMES, root="synthetic", format="synthetic")
    extra = {"compile": True} if args.compiled else {}
    cfg = Sam2TrainConfig(image_size=args.image_size, no_pretrained=True, freeze=args.freeze, batch_size=args.batch,
                          max_objects=8, progress=False, steps=1000, warmup_steps=0, augment="none",
                          device=args.device, precision=args.precision, prompts=args.prompts,
                          correction_clicks=args.clicks, **extra).validate()
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", args.image_size), device=args.device, train=True)
    trainer = Sam2Trainer(cfg, model, TrainingImages.for_run(dataset, cfg, progress=False),
                      resolve(args.precision, args.device))
    unread = {"read": False} if "read" in inspect.signature(trainer.train_step).parameters else {}
    if args.padded:
        trainer.objective.bucket = cfg.max_objects  # what Trainer does on a GPU
    load, preprocess = trainer.micro_batch, objective_module.preprocess

    def on_host(fn):  # data loading and preprocessing run on the host in a GPU step too: not counted
        def run(*a):
            with _disable_current_modes():
                return fn(*a)
        return run

    trainer.micro_batch, objective_module.preprocess = on_host(load), on_host(preprocess)
    start = time.perf_counter()
    for _ in range(args.warmup):  # fills the feature cache (and compiles every graph of the recipe)
        trainer.train_step()
    sync(args.device)
    first_s = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.train_step(**unread)
        sync(args.device)
        times.append(time.perf_counter() - start)
    syncs, ops = count_ops(lambda: trainer.train_step(**unread))
    getattr(trainer, "read", lambda: None)()
    print(json.dumps({"step_s": statistics.median(times), "first_s": first_s, "syncs": syncs, "ops": ops}))


def checkout(ref: str | None, into: Path) -> Path:
    """trainer/ at git `ref` (None: this working tree; a folder: that one) as an importable folder."""
    root = Path(__file__).resolve().parents[1]
    if ref is None or Path(ref, "trainer").is_dir():
        return Path(ref) if ref else root
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "trainer"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def compare(args: argparse.Namespace) -> None:
    """Before/after table of one step (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": checkout(args.before, Path(tmp) / "before"), "after": checkout(args.after, Path(tmp) / "after")}
        variants = {f"eager, {args.before}": (trees["before"], None),
                    f"eager, {args.after or 'working tree'}": (trees["after"], None)}
        if args.padded_too:
            variants[f"eager, padded as on a GPU, {args.after or 'working tree'}"] = (trees["after"], "--padded")
        if args.compile_too:
            variants[f"--compile, {args.after or 'working tree'}"] = (trees["after"], "--compiled")
        flags = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
                 ("image_size", "batch", "steps", "warmup", "device", "precision", "freeze", "prompts", "clicks")]
        results: dict[str, list[dict]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            for name, (tree, option) in variants.items():
                if option == "--compiled" and round_:
                    continue  # one round: it compiles again in every new process
                env = {**os.environ, "BENCH_TRAINER_TREE": str(tree)}
                out = subprocess.run([sys.executable, __file__, "--worker", *flags, *([option] if option else [])],
                                     env=env, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
                results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  round {round_ + 1} {name}: {results[name][-1]}", flush=True)
    base = next(iter(results.values()))
    print(f"\n| variant | step s (median; rounds) | speed vs before (median; rounds) | first {args.warmup} steps s | "
          "syncing ops/step | aten ops/step |\n|---|---|---|---|---|---|")
    for name, runs in results.items():
        step_s = statistics.median(r["step_s"] for r in runs)
        each = ", ".join(f"{r['step_s']:.3f}" for r in runs)
        ratios = [b["step_s"] / r["step_s"] for b, r in zip(base, runs)]
        print(f"| {name} | {step_s:.3f} ({each}) | {statistics.median(ratios):.2f}x "
              f"({', '.join(f'{x:.2f}' for x in ratios)}) | "
              f"{runs[0]['first_s']:.1f} | {runs[0]['syncs']} | {runs[0]['ops']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "bf16"])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compare", action="store_true", help="before/after one step (issue 17); CPU too")
    parser.add_argument("--before", default=BEFORE_17, help="--compare: git ref of the baseline's trainer/")
    parser.add_argument("--after", default=None, help="--compare: git ref (default: this working tree)")
    parser.add_argument("--compile-too", action="store_true", help="--compare: also --compile (after), one round")
    parser.add_argument("--padded-too", action="store_true", help="--compare: also after, padded as on a GPU")
    parser.add_argument("--rounds", type=int, default=3, help="--compare: alternating rounds of the eager variants")
    parser.add_argument("--warmup", type=int, default=3, help="--compare: untimed first steps (cache, compilation)")
    parser.add_argument("--precision", default="fp32", help="--compare: precision of the step")
    parser.add_argument("--freeze", default="image_encoder", help="--compare: frozen parts (default: the CPU default)")
    parser.add_argument("--prompts", default="point,points,box", help="--compare: prompt types")
    parser.add_argument("--clicks", type=int, default=6, help="--compare: corrective clicks")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--padded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return step_worker(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_sam2_gpu.py needs a CUDA GPU (--device cpu only to smoke-test the script)")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    if args.compare:
        print(f"{name} | torch {torch.__version__} | {torch.get_num_threads()} threads | {args.image_size}² | batch "
              f"{args.batch} | freeze {args.freeze} | prompts {args.prompts} + {args.clicks} clicks | {args.precision}"
              f" | median of {args.steps} steps after {args.warmup}", flush=True)
        return compare(args)
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
