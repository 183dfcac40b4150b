"""The options every trainer's loop shares, declared once: data, feature cache, schedule, precision, run folder.

Each trainer's config inherits `LoopOptions` (with its model's options, e.g. trainer/sam2_model/options.py) and adds
its own; `option(...)` re-declares a shared field with the trainer's own default or help text. The CLI flags are
generated from the final dataclass in one place (trainer/options.py: field `foo_bar` -> `--foo-bar`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from trainer.options import RunConfig


@dataclass
class LoopOptions(RunConfig):
    # Data
    data: str = field(default="builtin", metadata={"help": "dataset path, or 'builtin' (real photos shipped with us)"})
    format: str = field(default="auto", metadata={"help": "dataset format (auto-detected by default)"})
    skip_bad: bool = field(default=False, metadata={"help": "skip unreadable samples instead of stopping"})
    val_fraction: float = field(default=0.2, metadata={"help": "fraction of images held out for validation"})
    augment: str = field(default="default", metadata={
        "help": "augmentation (seeded): none | flip | default (zoom 0.67-1.5x with crops, flip, small affine, "
                "colour jitter, grayscale) | strong (sam2's MOSE recipe: affine 25 deg / shear 20, zoom 0.5-2x)",
        "choices": ("none", "flip", "default", "strong")})
    cache_views: int = field(default=0, metadata={
        "help": "augmented views per image whose features the cache keeps (frozen encoder): a step draws one "
                "(0 = auto: each view drawn ~3 times over the run, 1-8 views, within --cache-budget)"})
    cache_budget: float = field(default=2048.0, metadata={
        "help": "MiB of cached features kept in memory; least recently used ones are dropped beyond it (0 = no limit)"})
    cache_dir: str | None = field(default=None, metadata={
        "help": "disk tier of the feature cache (reused by --resume and later runs with the same encoder weights)"})
    feature_cache: bool = field(default=True, metadata={
        "help": "cache image features when the encoder is frozen (off with --lora: the encoder changes)"})
    # Recipe
    steps: int = field(default=300, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=2, metadata={"help": "images per step (global, across processes)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches accumulated per optimizer step"})
    lr: float = field(default=1e-5, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=4e-5, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=10, metadata={"help": "linear warm-up steps before the cosine decay"})
    clip_grad: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    precision: str = field(default="auto", metadata={"help": "auto: bf16/fp16 on GPUs, fp32 on CPU",
                                                     "choices": ("auto", "fp32", "fp16", "bf16")})
    seed: int = field(default=0, metadata={"help": "seed for split, sampling, prompts"})
    max_bad_steps: int = field(default=5, metadata={"help": "consecutive NaN/inf losses before the run stops"})
    workers: int = field(default=-1, metadata={
        "help": "processes that decode and augment the next micro-batches during the step (-1: 2 on a GPU, 0 on a "
                "CPU, where the step already uses every core)"})
    # Run
    out: str | None = field(default=None, metadata={"help": "run folder (default runs/<command>-<timestamp>)"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out from its last checkpoint"})
    stop_after: int = field(default=0, metadata={
        "help": "stop this session after N steps with a resumable checkpoint (0 = run to --steps)"})
    eval: bool = field(default=True, metadata={"help": "evaluate on the validation split before and after training"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every N steps (0 = only before and after)"})
    save_every: int = field(default=50, metadata={"help": "checkpoint every N steps"})
    log_every: int = field(default=1, metadata={
        "help": "log metrics every N steps (a GPU step's figures are read back, a sync, only then)"})
    overlays: int = field(default=4, metadata={"help": "validation overlays drawn at the end"})
    push_to: str | None = field(default=None, metadata={"help": "Hub repo id or file:PATH to push the run to"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if available)"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bar"})

    @property
    def cache_features(self) -> bool:
        """Whether the trainer caches its encoder's features (a trainer with a trainable encoder narrows this)."""
        return self.feature_cache

    def validate(self):
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.cache_views < 0:
            raise ValueError("--cache-views must be >= 0 (0 = auto)")
        return self


def option(options: type, name: str, default: Any = None, help: str | None = None, **metadata: Any) -> Any:
    """The field `name` of the options dataclass `options` (flag, help, choices, default) for a trainer's config,
    optionally with another default, help text or metadata: one declaration for what the trainers share."""
    f = {f.name: f for f in fields(options)}[name]
    merged = {**f.metadata, **({"help": help} if help else {}), **metadata}
    return field(default=f.default if default is None else default, metadata=merged)
