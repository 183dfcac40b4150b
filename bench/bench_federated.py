"""Federated (N clients, Flower simulation) vs centralised training on the union of their data, same recipe and
same total number of local steps; plus the bytes a round sends (trainable parameters only vs the whole model).

    PYTHONPATH=. .venv/bin/python bench/bench_federated.py [--clients 2 --rounds 3 --local-steps 40 --image-size 128]

Centralised = the same SAM2 Trainer (one torch thread, as each client) on the union of the clients' training splits for clients x rounds x local
steps steps; both evaluated on the union of the clients' validation splits (the federated figure is the object-
weighted mean of the clients' mIoU, which is that pooled mIoU). Random-init sam2.1 tiny unless --weights.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch

from trainer.data.sample import SegmentationDataset
from trainer.engine.images import TrainingImages
from trainer.federated.config import FederatedConfig
from trainer.federated.pipeline import run as run_federated
from trainer.federated.sites import load_sites
from trainer.precision import resolve
from trainer.sam2_ft.evaluate import evaluate
from trainer.sam2_ft.pipeline import build
from trainer.sam2_ft.trainer import Sam2Trainer

warnings.filterwarnings("ignore")


def union(parts: list[SegmentationDataset]) -> SegmentationDataset:
    first = parts[0]
    return SegmentationDataset(first.class_names, [ref for part in parts for ref in part.refs], first.root,
                               first.format, first.normalization)


def centralised(cfg: FederatedConfig) -> dict[str, float]:
    """The SAM2 trainer on every client's training images at once, as many steps as all clients took together."""
    sites = load_sites(cfg)
    train, val = union([s.train for s in sites]), union([s.val for s in sites])
    steps = cfg.num_clients * cfg.rounds * cfg.local_steps
    central = FederatedConfig(**{**vars(cfg), "client_data": list(cfg.client_data)}).validate()
    central.steps = steps  # one schedule over all the steps
    # One torch thread, as each simulated client has (Ray gives an actor one core): two threads were 2.5-4.5x slower
    # per step on the shared 2-core machine. The federated clients train side by side, one core each.
    torch.set_num_threads(1)
    model = build(central, central.base_weights, torch.device("cpu"))
    trainer = Sam2Trainer(central, model, TrainingImages.for_run(train, central, progress=False),
                      resolve(cfg.precision, "cpu"))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    seconds = time.perf_counter() - start
    metrics = evaluate(model, val, 0, 0, cfg.seed, progress=False)
    return {"miou_box": metrics["miou_box"], "miou_1pt": metrics["miou_1pt"], "train_s": seconds, "steps": steps}


def federated(cfg: FederatedConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-federated-") as out:
        start = time.perf_counter()
        summary = run_federated(FederatedConfig(**{**vars(cfg), "out": out, "overlays": 0})).summary
        total = time.perf_counter() - start
    fed, after = summary["federated"], summary["metrics"]["after"]
    return {"miou_box": after["miou_box"], "miou_1pt": after["miou_1pt"], "before_box": summary["metrics"]["before"]
            ["miou_box"], "rounds_s": summary["train_time_s"], "total_s": total, "update_bytes": fed["update_bytes"],
            "model_bytes": fed["model_bytes"], "trainable": fed["trainable_parameters"],
            "total_params": fed["total_parameters"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="builtin")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--split", default="iid")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-steps", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weights", default=None, help="default: random init (no download)")
    args = parser.parse_args()
    cfg = FederatedConfig(data=args.data, clients=args.clients, split=args.split, rounds=args.rounds,
                          local_steps=args.local_steps, image_size=args.image_size, lr=args.lr, weights=args.weights,
                          no_pretrained=args.weights is None, eval_images=0, progress=False).validate()

    fed = federated(cfg)
    cen = centralised(cfg)
    n = cfg.num_clients
    print(f"\n{n} clients x {cfg.rounds} rounds x {cfg.local_steps} local steps = {cen['steps']} steps "
          f"({cfg.data}, {cfg.split}, {cfg.image_size} px, {cfg.strategy})")
    print(f"{'':34}{'federated':>12}{'centralised':>13}")
    print(f"{'pooled val mIoU, box (before ' + format(fed['before_box'], '.3f') + ')':34}"
          f"{fed['miou_box']:>12.3f}{cen['miou_box']:>13.3f}   gap {fed['miou_box'] - cen['miou_box']:+.3f}")
    print(f"{'pooled val mIoU, 1 point':34}{fed['miou_1pt']:>12.3f}{cen['miou_1pt']:>13.3f}"
          f"   gap {fed['miou_1pt'] - cen['miou_1pt']:+.3f}")
    print(f"{'training wall time (s)':34}{fed['rounds_s']:>12.1f}{cen['train_s']:>13.1f}"
          f"   ratio {fed['rounds_s'] / cen['train_s']:.2f}x")
    print(f"{'  federated incl. Ray start (s)':34}{fed['total_s']:>12.1f}")
    per_round = 2 * n * fed["update_bytes"]
    whole = 2 * n * fed["model_bytes"]
    print(f"bytes per round (down + up, {n} clients): {per_round / 1e6:.1f} MB trainable parameters "
          f"({fed['trainable']:,} of {fed['total_params']:,}) vs {whole / 1e6:.1f} MB whole model "
          f"= {per_round / whole:.3f}x")


if __name__ == "__main__":
    main()
