"""SAM2 training speed, as ratios against a baseline measured in the same run (random-init sam2.1 tiny, CPU).

    python bench/bench_sam2_speed.py tutorial    our trainer vs the LabPics tutorial loop (images/s) at 1024 px with
                                                 every object of each image, and the validation mIoU of both after
                                                 the same number of steps
    python bench/bench_sam2_speed.py short       a short run (32 steps over 6 images, cache fill included) with default
                                                 augmentation vs the tutorial loop, per --cache-views choice
    python bench/bench_sam2_speed.py warm        a long run's steady state: default augmentation, every view its rule
                                                 gives a 2,000-step run cached, vs the tutorial loop (images/s)
    python bench/bench_sam2_speed.py cache       epochs with the feature cache vs recomputing the encoder
    python bench/bench_sam2_speed.py precision   fp32 vs bf16 train step
    python bench/bench_sam2_speed.py all

`tutorial`, `short` and `warm` run at --image-size 1024 unless given (`tutorial` about 2.5 minutes on 2 free cores;
`--quality-steps 150 --lr 1e-3` trains both sides further so that their mIoU means something: ~15 minutes; `warm`
about 6); the others at 256 (well under 3 minutes each).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from trainer.data.sample import SegmentationDataset
from trainer.data.synthetic import CLASS_NAMES, make_dataset, make_scene
from trainer.engine.images import TrainingImages
from trainer.precision import resolve
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.trainer import Sam2Trainer
from trainer.sam2_model.model import Sam2Spec, build_model, make_predictor

warnings.filterwarnings("ignore")


def model(size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(Sam2Spec("tiny", size), train=True)


def tutorial_loop(dataset, size: int, lr: float = 1e-5) -> tuple[Callable[[], int], torch.nn.Module]:
    """The LabPics SAM2 fine-tuning tutorial's loop, faithfully: one image per step, the image encoder recomputed
    every step through predictor.set_image (under no_grad), one random point per object (every object of the
    image), BCE + 0.05 x |IoU error|, AdamW(lr 1e-5, wd 4e-5) over all parameters. Returns (a callable doing one
    step -> images processed, the model)."""
    predictor = make_predictor(model(size))
    predictor.model.sam_mask_decoder.train(True)
    predictor.model.sam_prompt_encoder.train(True)
    optimizer = torch.optim.AdamW(params=predictor.model.parameters(), lr=lr, weight_decay=4e-5)
    rng = np.random.default_rng(0)

    def read_batch():
        sample = dataset[int(rng.integers(len(dataset)))]
        masks = np.asarray(sample.masks)  # the tutorial's dense N x H x W masks
        points = []
        for mask in masks:
            ys, xs = np.nonzero(mask)
            k = rng.integers(len(ys))
            points.append([[xs[k], ys[k]]])
        return sample.image, masks, np.array(points), np.ones((len(points), 1))

    def step() -> int:
        image, mask, input_point, input_label = read_batch()
        predictor.set_image(image)
        mask_input, unnorm_coords, labels, unnorm_box = predictor._prep_prompts(
            input_point, input_label, box=None, mask_logits=None, normalize_coords=True)
        sparse_embeddings, dense_embeddings = predictor.model.sam_prompt_encoder(
            points=(unnorm_coords, labels), boxes=None, masks=None)
        batched_mode = unnorm_coords.shape[0] > 1
        high_res_features = [feat_level[-1].unsqueeze(0) for feat_level in predictor._features["high_res_feats"]]
        low_res_masks, prd_scores, _, _ = predictor.model.sam_mask_decoder(
            image_embeddings=predictor._features["image_embed"][-1].unsqueeze(0),
            image_pe=predictor.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embeddings, dense_prompt_embeddings=dense_embeddings,
            multimask_output=True, repeat_image=batched_mode, high_res_features=high_res_features)
        prd_masks = predictor._transforms.postprocess_masks(low_res_masks, predictor._orig_hw[-1])
        gt_mask = torch.tensor(mask.astype(np.float32))
        prd_mask = torch.sigmoid(prd_masks[:, 0])
        seg_loss = (-gt_mask * torch.log(prd_mask + 0.00001)
                    - (1 - gt_mask) * torch.log((1 - prd_mask) + 0.00001)).mean()
        inter = (gt_mask * (prd_mask > 0.5)).sum(1).sum(1)
        iou = inter / (gt_mask.sum(1).sum(1) + (prd_mask > 0.5).sum(1).sum(1) - inter)
        score_loss = torch.abs(prd_scores[:, 0] - iou).mean()
        loss = seg_loss + score_loss * 0.05
        predictor.model.zero_grad()
        loss.backward()
        optimizer.step()
        return 1

    return step, predictor.model


def ours(dataset, size: int, batch: int = 4, **overrides) -> tuple[Callable[[], int], Trainer]:
    """Our Trainer as a callable doing one optimizer step (-> images processed)."""
    cfg = Sam2TrainConfig(image_size=size, no_pretrained=True, batch_size=batch, progress=False,
                          **{"max_objects": 16, **overrides})
    trainer = Sam2Trainer(cfg, model(size), TrainingImages.for_run(dataset, cfg, progress=False),
                          resolve(cfg.precision, "cpu"))

    def step() -> int:
        trainer.train_step()
        return batch

    return step, trainer


def timed(step: Callable[[], int], images: int) -> float:
    """Seconds per image over at least `images` images."""
    start, done = time.perf_counter(), 0
    while done < images:
        done += step()
    return (time.perf_counter() - start) / done


def compare(baseline: Callable[[], int], others: dict[str, Callable[[], int]], images: int, rounds: int) -> None:
    """Alternate baseline and candidates round by round (the machine is shared: load drifts), median ratios."""
    for fn in (baseline, *others.values()):
        fn()  # warm-up
    base_t, ratios = [], {name: [] for name in others}
    for _ in range(rounds):
        base_t.append(timed(baseline, images))
        for name, fn in others.items():
            ratios[name].append(base_t[-1] / timed(fn, images))
    print(f"  baseline: {1 / np.median(base_t):.2f} images/s (median of {rounds} rounds of {images} images)")
    for name, r in ratios.items():
        print(f"  {name}: {np.median(r):.2f}x baseline images/s (rounds: {', '.join(f'{x:.2f}' for x in r)})")


LIKE_TUTORIAL = dict(prompts="point", correction_clicks=0, loss="bce_iou", augment="none")  # the tutorial: no augmentation


def ours_like_tutorial(dataset, size: int, lr: float, **overrides) -> tuple[Callable[[], int], Trainer]:
    """Ours with the tutorial's prompts, loss, batch (1), lr and every object of each image, the encoder frozen and
    cached; `overrides` change the rest (steps, views, augmentation)."""
    objects = max(len(s.masks) for s in dataset)
    return ours(dataset, size, batch=1, freeze="image_encoder", max_objects=objects, lr=lr, warmup_steps=0,
                clip_grad=0.0, **{**LIKE_TUTORIAL, **overrides})


def scenes(n: int, size: int, seed: int) -> SegmentationDataset:
    """Synthetic vessel scenes drawn at `size` (no resize), up to 6 vessels with their liquids: ~7 objects each."""
    samples = [make_scene(seed * 100_003 + i, size=size, max_vessels=6) for i in range(n)]
    return SegmentationDataset.from_samples(samples, CLASS_NAMES, root="synthetic", format="synthetic")


def miou(model: torch.nn.Module, dataset: SegmentationDataset) -> dict[str, float]:
    """Validation mIoU with one (most interior) point and with a box per object, through SAM2ImagePredictor."""
    from trainer.data.instances import iou_matrix
    from trainer.sam2_ft.evaluate import predict
    from trainer.sam2_model.model import inference_mode

    ious: dict[str, list[float]] = {"1pt": [], "box": []}
    with inference_mode(model):
        predictor = make_predictor(model)
        for sample in dataset:
            predictor.set_image(sample.image)
            for kind in ious:
                pred, _, _ = predict(predictor, torch.from_numpy(np.asarray(sample.masks)), kind)
                ious[kind].extend(np.diag(iou_matrix(sample.masks, pred)).tolist())
    return {kind: float(np.mean(v)) for kind, v in ious.items()}


def bench_tutorial(dataset, size: int, rounds: int = 3, lr: float = 1e-4, quality_steps: int = 0) -> None:
    """Same data, random init, prompts (one point per object, every object), loss (BCE + IoU) and batch (1) on
    both sides; ours with the frozen encoder's feature cache. Equal step counts (both continue to `quality_steps`
    when that is more than the timing took), then validation mIoU of both."""
    val = scenes(2, size, seed=1)
    objects = [len(s.masks) for s in dataset]
    print(f"[tutorial] baseline = the LabPics tutorial loop (1 image/step, encoder recomputed under no_grad); "
          f"{len(dataset)} training images with {np.mean(objects):.1f} objects each (all used), lr {lr}")
    tutorial, tutorial_model = tutorial_loop(dataset, size, lr)
    cached, trainer = ours_like_tutorial(dataset, size, lr, steps=10_000)
    for _ in range(len(dataset)):  # an epoch each: our cache is filled (steady state = every epoch after the first)
        tutorial(), cached()
    compare(tutorial, {"ours, frozen encoder + feature cache (same prompts/loss/batch as the tutorial)": cached},
            images=len(dataset), rounds=rounds)
    steps = len(dataset) * (rounds + 1) + 1  # epoch + compare's warm-up step + rounds: the same on both sides
    if quality_steps > steps:
        from tqdm import tqdm

        for _ in tqdm(range(quality_steps - steps), desc="both to --quality-steps", leave=False):
            tutorial(), cached()
        steps = quality_steps
    print(f"  validation mIoU after {steps} steps each ({len(val)} held-out scenes): "
          f"tutorial {miou(tutorial_model, val)}, ours {miou(trainer.model, val)}")


def bench_short(dataset, size: int, steps: int = 32, views: tuple[int, ...] = (8, 0)) -> None:
    """Whole short runs from a fresh model and an empty cache, as a user's first fine-tune: the tutorial loop, then
    ours (the tutorial's prompts, loss and batch; default augmentation; frozen encoder + cache) per --cache-views
    (0 = auto), then the tutorial loop again; each ours against the mean of the two tutorial runs."""
    def run(step: Callable[[], int]) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start

    print(f"[short] {steps} steps of 1 image over {len(dataset)} images at {size} px, cache fill included; "
          f"baseline = the tutorial loop before and after")
    first = run(tutorial_loop(dataset, size)[0])
    times = {}
    for v in views:
        step, trainer = ours(dataset, size, batch=1, freeze="image_encoder", steps=steps,
                             cache_views=v, **{**LIKE_TUTORIAL, "augment": "default"})
        times[v] = run(step)
        cache = trainer.objective.cache
        print(f"  ours --cache-views {v or 'auto'} ({trainer.data.views} views/image): {times[v]:.0f} s, "
              f"{cache.misses} encoder passes, {cache.hits} hits", flush=True)
    last = run(tutorial_loop(dataset, size)[0])
    base = (first + last) / 2
    print(f"  tutorial loop: {first:.0f} s before, {last:.0f} s after")
    for v, t in times.items():
        print(f"  ours --cache-views {v or 'auto'}: {base / t:.2f}x the tutorial loop")


def bench_warm(dataset, size: int, rounds: int = 3, lr: float = 1e-4) -> None:
    """Issue 31's warm-cache goal: ours as a long run trains by default (default augmentation, the views its rule
    gives 2,000 steps over these images), after every view is cached (drawn as training draws them, so the fill
    is the run's own), against the tutorial loop; same prompts, loss and batch as `tutorial`."""
    tutorial = tutorial_loop(dataset, size, lr)[0]
    cached, trainer = ours_like_tutorial(dataset, size, lr, steps=2000, cache_views=0, augment="default")
    views, cache = trainer.data.views, trainer.objective.cache
    start, steps = time.perf_counter(), 0
    while cache.misses < len(dataset) * views:
        steps += cached()
    print(f"[warm] {len(dataset)} images x {views} views cached in {steps} steps ({time.perf_counter() - start:.0f} s,"
          f" {cache.misses} encoder passes); baseline = the tutorial loop")
    compare(tutorial, {f"ours, warm cache, default augmentation ({views} views/image)": cached},
            images=len(dataset), rounds=rounds)
    print(f"  during the rounds: {cache.misses - len(dataset) * views} more encoder passes, {cache.hits} hits in all")


def bench_cache(dataset, size: int) -> None:
    print("[cache] baseline = frozen encoder recomputed every step; candidate = feature cache after its first epoch")
    cached, trainer = ours(dataset, size, freeze="image_encoder", feature_cache=True, augment="none")
    start = time.perf_counter()
    for _ in range(len(dataset) // 4):
        cached()
    print(f"  first epoch (fills the cache, {len(trainer.objective.cache)} entries): "
          f"{time.perf_counter() - start:.1f}s")
    compare(ours(dataset, size, freeze="image_encoder", feature_cache=False, augment="none")[0],
            {"feature cache": cached}, images=8, rounds=3)


def bench_precision(dataset, size: int) -> None:
    print("[precision] baseline = fp32 train step (everything trained), candidate = bf16 autocast")
    compare(ours(dataset, size, batch=2, freeze="none", precision="fp32")[0],
            {"bf16": ours(dataset, size, batch=2, freeze="none", precision="bf16")[0]}, images=2, rounds=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", default="all", choices=["tutorial", "short", "warm", "cache",
                                                                     "precision", "all"])
    parser.add_argument("--image-size", type=int, default=None,
                        help="default: 1024 for tutorial, short and warm, 256 otherwise")
    parser.add_argument("--images", type=int, default=None, help="training images (default: 4 tutorial, 8 others)")
    parser.add_argument("--rounds", type=int, default=3, help="tutorial, warm: timed rounds of one epoch each")
    parser.add_argument("--lr", type=float, default=1e-4, help="tutorial, warm: both sides' learning rate")
    parser.add_argument("--quality-steps", type=int, default=0,
                        help="tutorial: train both sides to this many steps before comparing validation mIoU "
                             "(default: the steps the timing took)")
    args = parser.parse_args()
    print(f"machine: {torch.get_num_threads()} torch threads, CPU; sam2.1 tiny random init")
    for name in ("tutorial", "short", "warm", "cache", "precision"):
        if args.which not in (name, "all"):
            continue
        size = args.image_size or (1024 if name in ("tutorial", "short", "warm") else 256)
        start = time.perf_counter()
        if name == "tutorial":
            bench_tutorial(scenes(args.images or 4, size, seed=0), size, args.rounds, args.lr, args.quality_steps)
        elif name == "short":
            bench_short(scenes(args.images or 6, size, seed=0), size)
        elif name == "warm":
            bench_warm(scenes(args.images or 4, size, seed=0), size, args.rounds, args.lr)
        else:
            dataset = make_dataset(args.images or 8, size, seed=0)
            print(f"[{name}] {size}px, {len(dataset)} synthetic images")
            (bench_cache if name == "cache" else bench_precision)(dataset, size)
        print(f"[{name}] bench time {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
