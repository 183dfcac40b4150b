"""detectron2 HookBase hooks that connect the training loop to our run folder (main process only)."""

from __future__ import annotations

import time
from typing import Callable

from detectron2.engine import HookBase
from tqdm import tqdm

from trainer.runlog import RunDir

# EventStorage name -> metrics.jsonl name ("time" would clash with the record's wall-clock time)
LOGGED = {"total_loss": "loss", "loss_cls": "loss_cls", "loss_box_reg": "loss_box_reg", "loss_mask": "loss_mask",
          "loss_rpn_cls": "loss_rpn_cls", "loss_rpn_loc": "loss_rpn_loc", "lr": "lr", "time": "iter_time",
          "data_time": "data_time"}


class MetricsHook(HookBase):
    """Losses, lr and timings from detectron2's EventStorage into metrics.jsonl (step = iterations done)."""

    def __init__(self, run: RunDir, every: int = 1):
        self.run, self.every = run, every

    def after_step(self) -> None:
        step = self.trainer.iter + 1
        if step % self.every and step != self.trainer.max_iter:
            return
        latest = self.trainer.storage.latest()
        record = {ours: latest[k][0] for k, ours in LOGGED.items() if k in latest and latest[k][1] == self.trainer.iter}
        if record:
            self.run.log({"step": step, **record})


class ProgressHook(HookBase):
    """A tqdm bar over the iterations, showing the latest total loss."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def before_train(self) -> None:
        self.bar = tqdm(total=self.trainer.max_iter, initial=self.trainer.start_iter, desc="detectron2",
                        disable=not self.enabled, dynamic_ncols=True)

    def after_step(self) -> None:
        latest = self.trainer.storage.latest()
        if "total_loss" in latest:
            self.bar.set_postfix(loss=f"{latest['total_loss'][0]:.3f}", refresh=False)
        self.bar.update(1)

    def after_train(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ExportHook(HookBase):
    """Every `period` iterations and at the end: model.safetensors + model_config.yaml, written atomically, so
    the run folder always holds a loadable model (detectron2's PeriodicCheckpointer keeps the resume state)."""

    def __init__(self, export: Callable[[], None], period: int):
        self.export, self.period = export, period

    def after_step(self) -> None:
        if self.period > 0 and (self.trainer.iter + 1) % self.period == 0:
            self.export()

    def after_train(self) -> None:
        self.export()


class EvalTimer:
    """Wraps an evaluation function; keeps its latest result and total time (training speed excludes it)."""

    def __init__(self, fn: Callable[..., dict]):
        self.fn, self.seconds, self.last = fn, 0.0, {}

    def __call__(self, **kwargs) -> dict:
        start = time.perf_counter()
        try:
            self.last = self.fn(**kwargs)
            return self.last
        finally:
            self.seconds += time.perf_counter() - start
