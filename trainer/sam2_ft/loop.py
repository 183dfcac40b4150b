"""The training loop: optimizer, schedule, precision, accumulation, DDP, NaN guard, checkpoints.

`run_training` is the whole loop; `train_step` is one optimizer step, readable top to bottom.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.distributed as dist

from trainer.checkpoint import STATE_NAME, load_state, rng_state, save_state, save_weights, set_rng_state
from trainer.precision import Precision
from trainer.runlog import RunDir
from trainer.sam2_ft import lora
from trainer.sam2_ft.batches import Ahead, TrainingImages, make_items, rank_slice, sample_seed, step_indices
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.feature_cache import run_cache
from trainer.sam2_ft.objective import Sam2Objective

# Each click's decoder pass is recomputed in backward once a micro-batch holds more object-passes than this, counted
# at 1024² (~60 MB of activations each): the default 1024-px recipe (2 images × 8 objects × 7 passes = 112) peaked at
# 11.2 GB without it and 4.3 GB with it, while a small step (the Space's 2 × 4 × 3 = 24) saves 0.4 GB for 22 % time.
CHECKPOINT_ABOVE_PASSES = 32
PARTS = {"image_encoder": "image_encoder", "prompt_encoder": "sam_prompt_encoder", "mask_decoder": "sam_mask_decoder"}


def loader_workers(requested: int, model: torch.nn.Module) -> int:
    """--workers, with -1 resolved: 2 when the model is on a GPU (its step is short; decoding must not wait for
    it), 0 on a CPU (the step uses every core already; a worker would only take turns with it)."""
    if requested >= 0:
        return requested
    return 2 if next(model.parameters()).device.type == "cuda" else 0


def checkpoint_clicks(cfg: Sam2TrainConfig) -> bool:
    """Whether the step recomputes each click's decoder pass in backward: only when the micro-batch's object-passes,
    scaled to 1024² pixels, would hold more activations than CHECKPOINT_ABOVE_PASSES of them."""
    images = max(1, cfg.batch_size // cfg.grad_accum)
    passes = images * cfg.max_objects * (cfg.correction_clicks + 1) * (cfg.image_size / 1024) ** 2
    return passes > CHECKPOINT_ABOVE_PASSES


class TrainingStopped(RuntimeError):
    """Too many non-finite losses in a row; the last good checkpoint is kept."""


def set_trainable(model: torch.nn.Module, frozen: list[str]) -> list[torch.nn.Parameter]:
    """Train the unfrozen parts among image encoder / prompt encoder / mask decoder; sam2's video-only modules
    (memory attention, memory encoder, object pointers) never get gradients in image training and stay fixed."""
    model.requires_grad_(False)
    for part, attr in PARTS.items():
        if part not in frozen:
            getattr(model, attr).requires_grad_(True)
    for param in lora.adapter_parameters(model):  # LoRA trains inside a frozen encoder
        param.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("--freeze: everything is frozen; nothing to train")
    return params


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
    cfg: Sam2TrainConfig
    model: torch.nn.Module
    data: TrainingImages  # the training split, decoded and augmented per step
    precision: Precision
    world: World = field(default_factory=World)

    name: ClassVar[str] = "sam2"  # the progress bar's label

    def __post_init__(self) -> None:
        cfg = self.cfg
        if next(self.model.parameters()).device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # fp32 matmuls as TF32 on tensor cores (fp32 runs only)
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

    def build_objective(self) -> tuple[list[torch.nn.Parameter], torch.nn.Module]:
        """The trainable parameters and the loss module (another trainer overrides this and micro_batch)."""
        cfg = self.cfg
        if cfg.lora:
            lora.add_lora(self.model, cfg.lora)
        if cfg.grad_checkpointing:
            lora.enable_grad_checkpointing(self.model)
        params = set_trainable(self.model, cfg.frozen)
        device = next(self.model.parameters()).device
        return params, Sam2Objective(self.model, cfg.loss, cfg.correction_clicks,
                                     run_cache(cfg, self.model.image_encoder, device) if cfg.cache_features else None,
                                     checkpoint_clicks=checkpoint_clicks(cfg),
                                     compile="inductor" if cfg.compile else None,  # padded: a GPU is host-bound
                                     pad_to=cfg.max_objects if cfg.compile or device.type == "cuda" else None)

    # One optimizer step ------------------------------------------------------------------------------------------
    def build_items(self, step: int, micro: int) -> list:
        """This process's share of micro-batch `micro` of `step` (images, objects, views, prompt generators): data
        only, so the loader's workers can make it ahead (another trainer overrides this and micro_batch)."""
        cfg = self.cfg
        positions = step_indices(len(self.data), cfg.batch_size, step, micro, cfg.grad_accum, cfg.seed)
        return make_items(self.data, rank_slice(positions, self.world.rank, self.world.size), step, cfg.seed,
                          cfg.max_objects)

    def micro_batch(self, micro: int) -> tuple[list, str]:
        """This micro-batch's items and the prompt type."""
        cfg, step = self.cfg, self.step
        items = self.ahead.get(step, micro)
        kinds = cfg.prompt_types  # one type per micro-batch: a single decoder call serves every object
        return items, kinds[np.random.default_rng(sample_seed(cfg.seed, step, micro)).integers(len(kinds))]

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
            inputs = self.micro_batch(micro)  # the objective's arguments: (items, prompt type) for sam2
            last = micro == cfg.grad_accum - 1  # DDP all-reduces gradients only on the last micro-batch
            with self.module.no_sync() if (self.world.size > 1 and not last) else contextlib.nullcontext():
                with self.precision.autocast():
                    loss = self.module(*inputs) / cfg.grad_accum
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
    @property
    def lora_rank(self) -> int:
        return int(getattr(self.cfg, "lora", 0))  # trainers built on this one (semantic) have no LoRA option

    def save(self, run: RunDir) -> None:
        self.read()  # the NaN guard's count is saved too (and a run stopped by it saves nothing more)
        if not self.world.main:
            return
        save_weights(lora.merged_state_dict(self.model), run.weights_path)  # plain sam2 keys, LoRA merged
        save_state({"step": self.step, "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                    "bad_in_a_row": self.bad_in_a_row, "rng": rng_state(),
                    **({"lora": lora.adapter_state(self.model)} if self.lora_rank else {})}, run.state_dir / STATE_NAME)

    def load(self, run: RunDir) -> None:
        """Optimizer/scheduler/scaler/RNG/step from RUN_DIR/state (the weights were loaded with the model)."""
        state = load_state(run.state_dir / STATE_NAME)
        if self.lora_rank:  # before the optimizer: its state refers to the adapters
            lora.restore_adapters(self.model, state.get("lora"))
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
    from tqdm import tqdm

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



# A run's session, shared by the trainers' pipelines ---------------------------------------------------------------
def evaluation(run: RunDir, world: World, measure: Callable[[], dict], enabled: bool = True,
               keys: tuple[str, ...] | None = None) -> Callable[..., dict]:
    """on_eval(step, phase="eval"): rank 0 measures and logs {step, phase, metrics (only `keys` if given)}; the other
    ranks wait for it."""
    def eval_now(step: int, phase: str = "eval") -> dict:
        if not enabled:
            return {}
        metrics = measure() if world.main else {}
        if world.main:
            run.log({"step": step, "phase": phase, **{k: v for k, v in metrics.items() if keys is None or k in keys}})
        if world.size > 1:
            dist.barrier()
        return metrics
    return eval_now


def start_or_resume(trainer: Trainer, run: RunDir) -> list[dict]:
    """--resume: optimizer/RNG/step from RUN_DIR/state and metrics.jsonl cut back to that step; otherwise a fresh
    log. Returns what metrics.jsonl holds now (a resumed run reports its 'before' from there)."""
    if trainer.cfg.resume:
        trainer.load(run)
        if trainer.world.main:
            run.truncate_metrics(trainer.step)
    elif trainer.world.main and run.metrics_path.exists():
        run.metrics_path.unlink()  # a fresh run in an old folder starts a fresh log
    if trainer.world.size > 1:
        dist.barrier()
    return run.read_metrics()


def train_session(trainer: Trainer, run: RunDir, on_eval: Callable[..., dict] | None = None) -> tuple[str, dict]:
    """This session's steps (to --steps, or --stop-after more), then a checkpoint. Returns the status ("finished",
    "paused" by --stop-after, "stopped" by non-finite losses: last good checkpoint kept) and the timings."""
    cfg = trainer.cfg
    until = min(cfg.steps, trainer.step + cfg.stop_after) if cfg.stop_after else cfg.steps
    try:
        timing = run_training(trainer, run, until, on_eval=on_eval)
        trainer.save(run)
    except TrainingStopped as err:
        print(f"warning: {err}")
        return "stopped", {"train_time_s": 0.0, "images_per_s": 0.0}
    return ("paused" if trainer.step < cfg.steps else "finished"), timing
