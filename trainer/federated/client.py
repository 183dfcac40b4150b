"""One client's side of a round, without Flower: local SAM2 training with the SAM2 trainer's own step, from the
global trainable parameters, and evaluation of the global model on the site's validation split.

Only the trainable parameters travel (the frozen encoders are rebuilt from the same base weights on every side and
checked with `frozen_fingerprint`); images, masks and prompts never leave the client.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator, Mapping

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR

from trainer.data.sample import SegmentationDataset
from trainer.engine.images import TrainingImages
from trainer.engine.loop import lr_lambda
from trainer.federated.config import FederatedConfig
from trainer.precision import Precision
from trainer.sam2_ft.evaluate import METRICS, evaluate
from trainer.sam2_ft.trainer import Sam2Trainer, set_trainable

# Weighted by objects, the clients' mIoUs average to the pooled one; correlations (area_corr_*) do not pool that way.
POOLED = tuple(m for m in METRICS if not m.startswith("area_corr"))
PROMPTED = tuple(m for m in POOLED if not m.startswith("auto_"))


def trainable_names(model: torch.nn.Module, frozen: list[str]) -> list[str]:
    """The parameters a client trains and sends (the same rule the SAM2 trainer freezes by)."""
    set_trainable(model, frozen)
    return [name for name, p in model.named_parameters() if p.requires_grad]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy the global parameters into the model in place (the optimizer keeps referring to the same tensors)."""
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise ValueError(f"the server sent {len(unknown)} parameter(s) this model lacks, e.g. {unknown[:3]}")
    with torch.no_grad():
        for name, value in state.items():
            own[name].copy_(value)


def frozen_fingerprint(model: torch.nn.Module) -> str:
    """A hash of every parameter that is not trained: server and clients must hold the same frozen parts."""
    digest = hashlib.sha1()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def proximal_term(trainer: Trainer, mu: float) -> Iterator[None]:
    """FedProx (Li et al. 2020): the loss gains mu/2 ||w - w_global||^2. Its gradient mu (w - w_global) is added to
    each parameter's gradient, scaled as the step scales the loss (AMP loss scale, accumulation)."""
    if mu <= 0:
        yield
        return
    cfg = trainer.cfg

    def pull(param: torch.nn.Parameter, anchor: torch.Tensor):
        def add(grad: torch.Tensor) -> torch.Tensor:
            scale = trainer.scaler.get_scale() if trainer.scaler.is_enabled() else 1.0
            return grad + (mu * scale / cfg.grad_accum) * (param.detach() - anchor)
        return add

    handles = [p.register_hook(pull(p, p.detach().clone())) for p in trainer.params]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def local_train(cfg: FederatedConfig, model: torch.nn.Module, data: TrainingImages,
                precision: Precision, server_round: int, proximal_mu: float = 0.0) -> dict[str, float]:
    """`cfg.local_steps` SAM2 trainer steps; the model already holds the global parameters.

    Each client's schedule and seeded sampling run over the whole federation (rounds x local steps): round r
    continues at step (r - 1) x local_steps, so a resumed run repeats exactly what an uninterrupted one does.
    The optimizer starts fresh each round (FedAvg's clients keep no state between rounds).
    """
    trainer = Sam2Trainer(cfg, model, data, precision)
    start = (server_round - 1) * cfg.local_steps
    trainer.step = start
    # initial_lr was set by the trainer's scheduler: a scheduler built at `start` gives that step's learning rate
    trainer.scheduler = LambdaLR(trainer.optimizer, lr_lambda(cfg.warmup_steps, cfg.steps), last_epoch=start - 1)
    with proximal_term(trainer, proximal_mu):
        records = [trainer.train_step() for _ in range(cfg.local_steps)]
    losses = [r["loss"] for r in records if not r.get("skipped")]
    return {"train-loss": float(np.mean(losses)) if losses else float("nan"),
            "skipped-steps": len(records) - len(losses),
            "lr": float(records[-1].get("lr", 0.0)),
            "num-examples": len(data)}


def local_evaluate(cfg: FederatedConfig, model: torch.nn.Module, val: SegmentationDataset) -> dict[str, float]:
    """The global model's prompted mIoU on this site's validation split (+ prompt-free metrics if asked)."""
    metrics = evaluate(model, val, cfg.eval_images, cfg.auto_points_per_side, cfg.seed, progress=False,
                       thresholds=cfg.auto_thresholds, clicks=cfg.eval_clicks)
    names = POOLED if cfg.auto_points_per_side > 0 else PROMPTED
    # weight = objects evaluated, so the weighted mean over clients is the pooled mIoU (and NoC) over every object
    return {**{k: float(metrics[k]) for k in names if k in metrics}, "num-examples": int(metrics["num_objects"])}
