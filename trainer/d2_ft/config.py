"""Every option of `python -m trainer detectron2`, with its default: the one source of defaults.

Solver defaults are detectron2's balloon tutorial (lr 0.00025, 2 images/step, 300 steps, 128 RoIs per image).
The flags are generated from the dataclass (field `foo_bar` -> `--foo-bar`); the resolved config is saved as
RUN_DIR/config.yaml so `--resume` (and a rerun) starts from that file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer import options
from trainer.d2_ft.choices import DEFAULT_ZOO_CONFIG, DEPTHS, NORMS


@dataclass
class D2TrainConfig(options.RunConfig):
    kind = "detectron2"
    # Data
    data: str = field(default="builtin", metadata={"help": "dataset path, or 'builtin' (real photos shipped with us)"})
    format: str = field(default="auto", metadata={"help": "dataset format (auto-detected by default)"})
    skip_bad: bool = field(default=False, metadata={"help": "skip unreadable samples instead of stopping"})
    val_fraction: float = field(default=0.2, metadata={"help": "fraction of images held out for validation"})
    # Model
    zoo_config: str = field(default=DEFAULT_ZOO_CONFIG, metadata={"help": "detectron2 model-zoo config name"})
    weights: str | None = field(default=None, metadata={
        "help": "'zoo' (the zoo config's COCO weights), a detectron2 zoo URL, a .safetensors/.pth file, a run "
                "folder, or a Hub repo id (default: zoo)"})
    no_pretrained: bool = field(default=False, metadata={"help": "random initialisation (GroupNorm, nothing frozen)"})
    norm: str = field(default="auto", metadata={
        "help": f"backbone/FPN/head norm: auto (FrozenBN pretrained, GN random-init) or {', '.join(NORMS)}"})
    depth: int = field(default=50, metadata={"help": f"ResNet depth {DEPTHS}; 18/34 only for --no-pretrained"})
    min_size: int = field(default=0, metadata={
        "help": "shortest image edge for training and test (0 = the zoo config's 640-800 / 800)"})
    max_size: int = field(default=1333, metadata={"help": "longest image edge cap"})
    augment: str = field(default="default", metadata={
        "help": "augmentation: none | flip | default (multi-scale resize over 0.67-1.5x, random crop, flip, "
                "brightness/contrast/saturation) | strong (0.5-2x)", "choices": ("none", "flip", "default", "strong")})
    # Recipe
    steps: int = field(default=300, metadata={"help": "iterations (SOLVER.MAX_ITER)"})
    batch_size: int = field(default=2, metadata={"help": "images per iteration, all processes together"})
    lr: float = field(default=0.00025, metadata={"help": "base learning rate (SGD, detectron2's solver)"})
    warmup: int = field(default=-1, metadata={"help": "linear warm-up iterations (-1 = 10%% of --steps)"})
    roi_batch: int = field(default=128, metadata={"help": "RoIs sampled per image (ROI_HEADS.BATCH_SIZE_PER_IMAGE)"})
    precision: str = field(default="auto", metadata={"help": "auto | fp32 | fp16 (GPU) | bf16"})
    seed: int = field(default=0, metadata={"help": "seed for the split and detectron2 (SEED)"})
    # Run
    out: str | None = field(default=None, metadata={"help": "run folder (default runs/detectron2-<timestamp>)"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out from its last checkpoint"})
    eval_every: int = field(default=0, metadata={"help": "COCO evaluation every N iterations (0 = before/after only)"})
    save_every: int = field(default=100, metadata={"help": "checkpoint (resume state + safetensors) every N iters"})
    log_every: int = field(default=1, metadata={"help": "metrics.jsonl record every N iterations"})
    overlays: int = field(default=4, metadata={"help": "validation overlays drawn at the end"})
    num_workers: int = field(default=1, metadata={"help": "training processes on this machine (GPUs; gloo on CPU)"})
    num_machines: int = field(default=1, metadata={"help": "machines in the job"})
    machine_rank: int = field(default=0, metadata={"help": "rank of this machine"})
    dist_url: str = field(default="auto", metadata={"help": "rendezvous URL for multi-machine (tcp://host:port)"})
    loader_workers: int = field(default=2, metadata={"help": "data-loader worker processes per training process"})
    device: str | None = field(default=None, metadata={"help": "cpu or cuda (default: cuda if available)"})
    push_to: str | None = field(default=None, metadata={"help": "Hub repo id or file:PATH to push the run to"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bar"})
    opts: list[str] = field(default_factory=list, metadata={
        "help": "detectron2 cfg overrides KEY VALUE ... (cfg.merge_from_list), applied last"})

    @property
    def pretrained(self) -> bool:
        return not self.no_pretrained

    @property
    def resolved_norm(self) -> str:
        # FrozenBN freezes random statistics: measured NaN RPN boxes at once without pretrained weights.
        return self.norm if self.norm != "auto" else ("FrozenBN" if self.pretrained else "GN")

    @property
    def warmup_iters(self) -> int:
        return self.warmup if self.warmup >= 0 else max(self.steps // 10, 0)

    def validate(self) -> "D2TrainConfig":
        if self.weights and self.no_pretrained:
            raise ValueError("--weights and --no-pretrained exclude each other")
        if self.norm != "auto" and self.norm not in NORMS:
            raise ValueError(f"--norm: unknown norm {self.norm!r}; choose auto or one of {', '.join(NORMS)}")
        if self.depth not in DEPTHS:
            raise ValueError(f"--depth: choose one of {DEPTHS}, got {self.depth}")
        if self.depth in (18, 34) and self.pretrained and not self.weights:
            raise ValueError(f"--depth {self.depth}: the model zoo has no R-{self.depth} weights; "
                             "add --no-pretrained or --weights")
        for name in ("steps", "batch_size", "roi_batch", "num_workers", "num_machines", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.batch_size % (self.num_workers * self.num_machines):
            raise ValueError(f"--batch-size {self.batch_size} must divide evenly over "
                             f"{self.num_workers * self.num_machines} processes")
        if len(self.opts) % 2:
            raise ValueError("--opts takes KEY VALUE pairs")
        return self
