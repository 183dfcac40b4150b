"""The training loop: detectron2's DefaultTrainer, made to run on CPU processes and in bf16.

DefaultTrainer.__init__ is replaced (everything else — optimizer, loaders, scheduler, train(), checkpointer —
is detectron2's) because it hard-codes two things we cannot use:
  * DDP with device_ids=[local_rank], which fails for CPU modules (our gloo multi-process runs);
  * AMPTrainer for any mixed precision, which asserts CUDA and autocasts to fp16 only by default.
"""

from __future__ import annotations

import weakref

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetMapper, build_detection_train_loader
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase, create_ddp_model, hooks
from detectron2.utils import comm

from trainer.d2_ft.augment import d2_augmentations
from trainer.d2_ft.weights import InitWeights, load_init
from trainer.precision import Precision


class AutocastTrainer(SimpleTrainer):
    """SimpleTrainer under torch.autocast: bf16 needs no loss scaling, and this runs on CPU as well as GPU."""

    def __init__(self, model, data_loader, optimizer, precision: Precision):
        super().__init__(model, data_loader, optimizer)
        self.precision = precision

    def run_step(self) -> None:
        with self.precision.autocast():
            super().run_step()


def step_trainer(model, data_loader, optimizer, precision: Precision) -> SimpleTrainer:
    """The per-iteration trainer for a precision: fp16 = AMPTrainer + GradScaler, bf16 = autocast, fp32 = plain."""
    if precision.name == "fp16":
        return AMPTrainer(model, data_loader, optimizer, grad_scaler=precision.grad_scaler(), precision=torch.float16)
    if precision.name == "bf16":
        return AutocastTrainer(model, data_loader, optimizer, precision)
    return SimpleTrainer(model, data_loader, optimizer)


class D2Trainer(DefaultTrainer):
    """DefaultTrainer with a device-aware DDP wrapper and our precision policy; extra hooks are added by the
    caller with register_hooks()."""

    def __init__(self, cfg, precision: Precision, augment: str = "flip"):
        TrainerBase.__init__(self)
        self.augment = augment  # trainer/augment.py's level, as detectron2 augmentations (d2_ft/augment.py)
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        on_gpu = torch.device(cfg.MODEL.DEVICE).type == "cuda"
        model = create_ddp_model(model, broadcast_buffers=False, device_ids=[comm.get_local_rank()] if on_gpu else None)
        self._trainer = step_trainer(model, data_loader, optimizer, precision)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def build_train_loader(self, cfg):  # type: ignore[override]
        """detectron2's loader with its own DatasetMapper, given our augmentation list."""

        mapper = DatasetMapper(cfg, is_train=True, augmentations=d2_augmentations(cfg, self.augment),
                               recompute_boxes=True)
        return build_detection_train_loader(cfg, mapper=mapper)

    @property
    def unwrapped(self) -> torch.nn.Module:
        model = self.model
        return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model

    def build_hooks(self) -> list:
        """Timing, lr schedule and resume checkpoints (detectron2's); evaluation/logging/export come from the
        caller, since they need the run folder."""
        ret = [hooks.IterationTimer(), hooks.LRScheduler()]
        if comm.is_main_process():
            ret.append(hooks.PeriodicCheckpointer(self.checkpointer, self.cfg.SOLVER.CHECKPOINT_PERIOD, max_to_keep=2))
        return ret

    def start(self, resume: bool, init: InitWeights) -> bool:
        """Load the last checkpoint of OUTPUT_DIR (resume) or the initial weights; True if resumed."""
        if resume and self.checkpointer.has_checkpoint():
            self.checkpointer.resume_or_load("", resume=True)
            self.start_iter = self.iter + 1
            return True
        load_init(self.unwrapped, init, self.checkpointer)
        return False
