"""The training loop every trainer plugs into: optimizer, schedule, precision, accumulation, DDP, NaN guard,
checkpoints, resume. It knows no model (as detectron2's engine/ knows none).

A trainer subclasses `Trainer` and supplies what differs: `build_objective` (the trainable parameters and the loss
module), `build_items` (a micro-batch's data, built ahead by the loader's workers), `micro_batch` (the objective's
arguments) and optionally `split` (a micro-batch backpropagated in parts, for memory); `weights_state` /
`extra_state` / `load_extra_state` add what its checkpoints hold beyond the model's state dict (e.g. sam2_ft's LoRA
adapters). `run_training` is the whole loop; `train_step` is one optimizer step, readable top to bottom.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
import torch.distributed as dist
from tqdm import tqdm

from trainer.checkpoint import STATE_NAME, load_state, rng_state, save_state, save_weights, set_rng_state
from trainer.engine.memory import tune_malloc
from trainer.engine.options import LoopOptions
from trainer.engine.sampling import Ahead
from trainer.precision import Precision
from trainer.runlog import RunDir


def loader_workers(requested: int, model: torch.nn.Module) -> int:
    """--workers, with -1 resolved: 2 when the model is on a GPU (its step is short; decoding must not wait for
    it), 0 on a CPU (the step uses every core already; a worker would only take turns with it)."""
    if requested >= 0:
        return requested
    return 2 if next(model.parameters()).device.type == "cuda" else 0


class TrainingStopped(RuntimeError):
    """Too many non-finite losses in a row; the last good checkpoint is kept."""


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to zero at `total` steps."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


@dataclass
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class Trainer:
    cfg: LoopOptions  # a trainer's config: the loop's options plus its own
    model: torch.nn.Module
    data: Any  # the training split as the trainer's build_items reads it
    precision: Precision
    world: World = field(default_factory=World)

    name: ClassVar[str] = "train"  # the progress bar's label

    def __post_init__(self) -> None:
        cfg = self.cfg
        if next(self.model.parameters()).device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # fp32 matmuls as TF32 on tensor cores (fp32 runs only)
        else:  # the step's activations and the cache's views live in host memory; a config without an image size
            tune_malloc(getattr(cfg, "image_size", 1024))  # gets the 1024-px setting, the most conservative
        self.params, self.objective = self.build_objective()
        self.module = self.objective
        if self.world.size > 1:  # unused params: e.g. the box-corner embeddings in a step without boxes
            self.module = torch.nn.parallel.DistributedDataParallel(self.objective, find_unused_parameters=True)
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                           fused=True)  # one kernel per tensor; CPU's foreach is a Python loop
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg.warmup_steps, cfg.steps))
        self.scaler = self.precision.grad_scaler()
        self.step = 0
        self.bad_in_a_row = 0
        self.ahead = Ahead(self.build_items, cfg.grad_accum, cfg.steps, loader_workers(cfg.workers, self.model))
        self.unread: list[tuple[int, float, torch.Tensor]] = []  # (step, lr, [loss, grad norm, bad]) still on device

    # What a trainer plugs in ---------------------------------------------------------------------------------------
    def build_objective(self) -> tuple[list[torch.nn.Parameter], torch.nn.Module]:
        """The trainable parameters and the loss module: module(*micro_batch(micro)) is the micro-batch's loss."""
        raise NotImplementedError

    def build_items(self, step: int, micro: int) -> list:
        """This process's share of micro-batch `micro` of `step`: data only, so the loader's workers can make it
        ahead (every draw seeded by the step: the same in any process)."""
        raise NotImplementedError

    def micro_batch(self, micro: int) -> tuple:
        """The objective's arguments for micro-batch `micro` of this step (its items from self.ahead)."""
        return (self.ahead.get(self.step, micro),)

    def split(self, inputs: tuple) -> list[tuple[tuple, float]]:
        """A micro-batch's arguments as parts whose losses are backpropagated one after the other, each with its
        weight in the micro-batch's loss (the loss is the weighted sum: the same gradient), so only one part's graph
        is alive at a time. Default: the whole micro-batch, weight 1."""
        return [(inputs, 1.0)]

    def weights_state(self) -> dict[str, torch.Tensor]:
        """The weights saved as RUN_DIR/model.safetensors."""
        return self.model.state_dict()

    def extra_state(self) -> dict[str, Any]:
        """More of the trainer's own state for RUN_DIR/state (restored by load_extra_state before the optimizer)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what extra_state saved (called before the optimizer's state is loaded)."""

    # One optimizer step ------------------------------------------------------------------------------------------
    def train_step(self, read: bool = True) -> dict[str, float]:
        """One optimizer step that never waits for the device: a non-finite loss or gradient skips the update on
        the device itself (fused AdamW's found_inf). Its figures stay there until `read` (a GPU sync), which also
        applies the NaN guard (warnings, TrainingStopped) to every step since the last read; returns the last
        step's record then, else {"step": ...}. run_training reads every --log-every steps."""
        cfg = self.cfg
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=next(self.model.parameters()).device)
        for micro in range(cfg.grad_accum):
            parts = self.split(self.micro_batch(micro))  # the objective's arguments, e.g. (items, prompt type) for sam2
            for part, (inputs, weight) in enumerate(parts):
                last = micro == cfg.grad_accum - 1 and part == len(parts) - 1  # DDP all-reduces on the last backward
                with self.module.no_sync() if (self.world.size > 1 and not last) else contextlib.nullcontext():
                    with self.precision.autocast():
                        loss = self.module(*inputs) * weight / cfg.grad_accum
                    self.scaler.scale(loss).backward()
                total += loss.detach().float()
        if self.world.size > 1:
            dist.all_reduce(total)
            total /= self.world.size
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.clip_grad if cfg.clip_grad > 0 else float("inf"))
        skip = ~(torch.isfinite(total) & torch.isfinite(norm))  # the same on every rank: both values are reduced
        # fp16's scaler skips inf-gradient steps as it lowers its scale (normal); anything else non-finite is ours
        ours = ~torch.isfinite(total) if self.scaler.is_enabled() else skip
        self.optimizer.found_inf = skip.float()
        self.optimizer.step()
        del self.optimizer.found_inf
        self.scaler.update()
        self.unread.append((self.step + 1, self.scheduler.get_last_lr()[0],
                            torch.stack([total, norm.float(), ours.float()])))
        self.scheduler.step()  # skipped steps advance the schedule too (as fp16's skipped steps always did)
        self.step += 1
        return self.read() if read else {"step": self.step}

    def read(self) -> dict[str, float]:
        """The unread steps' figures in one device-to-host copy, through the NaN guard in order; the last record."""
        if not self.unread:
            return {"step": self.step}
        values = torch.stack([v for _, _, v in self.unread]).tolist()
        steps, self.unread = self.unread, []
        for (step, lr, _), (loss, norm, bad) in zip(steps, values):
            record = self._skipped(step, loss) if bad else {"step": step, "loss": loss, "lr": lr, "grad_norm": norm}
            self.bad_in_a_row = self.bad_in_a_row + 1 if bad else 0
        return record

    def _skipped(self, step: int, loss: float) -> dict[str, float]:
        """A NaN/inf loss or gradient dropped step `step`'s update; too many in a row stop the run."""
        bad = self.bad_in_a_row + 1
        warnings.warn(f"step {step}: non-finite loss/gradient ({loss}); update skipped "
                      f"({bad}/{self.cfg.max_bad_steps} in a row)", stacklevel=3)
        if bad >= self.cfg.max_bad_steps:
            raise TrainingStopped(f"{bad} non-finite steps in a row at step {step}; stopped, last good checkpoint kept")
        return {"step": step, "loss": loss, "skipped": 1}

    # Checkpoints ---------------------------------------------------------------------------------------------------
    def save(self, run: RunDir) -> None:
        self.read()  # the NaN guard's count is saved too (and a run stopped by it saves nothing more)
        if not self.world.main:
            return
        save_weights(self.weights_state(), run.weights_path)
        save_state({"step": self.step, "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                    "bad_in_a_row": self.bad_in_a_row, "rng": rng_state(), **self.extra_state()},
                   run.state_dir / STATE_NAME)

    def load(self, run: RunDir) -> None:
        """Optimizer/scheduler/scaler/RNG/step from RUN_DIR/state (the weights were loaded with the model)."""
        state = load_state(run.state_dir / STATE_NAME)
        self.load_extra_state(state)  # before the optimizer: its state may refer to what this restores
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.lr_lambdas[0] = lr_lambda(self.cfg.warmup_steps, self.cfg.steps)  # --steps may have grown
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.unread = int(state["step"]), []
        self.bad_in_a_row = int(state.get("bad_in_a_row", 0))
        set_rng_state(state["rng"])


def run_training(trainer: Trainer, run: RunDir, until: int,
                 on_eval: Callable[[int], dict] | None = None) -> dict[str, float]:
    """Steps until `until`, logging, periodic eval/checkpoints; returns timing figures."""
    cfg = trainer.cfg
    images = 0
    start = time.perf_counter()
    bar = tqdm(total=until, initial=trainer.step, desc=trainer.name, disable=not (cfg.progress and trainer.world.main),
               dynamic_ncols=True)
    try:
        while trainer.step < until:
            logged = (trainer.step + 1) % cfg.log_every == 0 or trainer.step + 1 == until
            record = trainer.train_step(read=logged)  # figures read back (a GPU sync) only when logged
            images += cfg.batch_size * cfg.grad_accum
            rate = images / max(time.perf_counter() - start, 1e-9)
            bar.update(1)
            if logged:
                bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{rate:.2f}")
            if trainer.world.main and logged:
                run.log({**record, "images_per_s": rate})
            if cfg.eval_every and trainer.step % cfg.eval_every == 0 and trainer.step < until and on_eval:
                on_eval(trainer.step)
            if cfg.save_every and trainer.step % cfg.save_every == 0:
                trainer.save(run)
    finally:
        bar.close()
        trainer.ahead.close()
    elapsed = time.perf_counter() - start
    return {"train_time_s": elapsed, "images_per_s": images / max(elapsed, 1e-9), "images": images}
