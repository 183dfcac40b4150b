"""Every option of `python -m trainer semantic`, with its default: the one source of defaults.

The CLI flags are generated from this dataclass (field `foo_bar` -> `--foo-bar`); the resolved config is saved as
RUN_DIR/config.yaml, so a run can be repeated (or resumed) from that file alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trainer import options

FREEZE_CHOICES = ("image_encoder", "none")


@dataclass
class SemanticTrainConfig:
    # Data
    data: str = field(default="builtin", metadata={"help": "dataset path, or 'builtin' (real photos shipped with us)"})
    format: str = field(default="auto", metadata={"help": "dataset format (auto-detected by default)"})
    skip_bad: bool = field(default=False, metadata={"help": "skip unreadable samples instead of stopping"})
    val_fraction: float = field(default=0.2, metadata={"help": "fraction of images held out for validation"})
    hflip: bool = field(default=True, metadata={"help": "random horizontal flip augmentation"})
    # Model
    size: str = field(default="tiny", metadata={"help": "sam2.1 hiera size of the encoder",
                                                "choices": ("tiny", "small", "base_plus", "large")})
    weights: str | None = field(default=None, metadata={
        "help": "encoder weights: a sam2 checkpoint file, a SAM2 run/Hub folder of ours, or a Hub id "
                "(default: the official sam2.1 weights of --size)"})
    no_pretrained: bool = field(default=False, metadata={"help": "random initialisation (no download)"})
    image_size: int = field(default=1024, metadata={"help": "model input size (multiple of 32)"})
    freeze: str = field(default="image_encoder", metadata={
        "help": "image_encoder: train the head only (encoder features cached); none: train everything",
        "choices": FREEZE_CHOICES})
    decoder_channels: str = field(default="128,64,32,16", metadata={
        "help": "channels of the 4 UNet decoder blocks (strides 8, 4, 2, 1)"})
    # Recipe
    ce_weight: float = field(default=1.0, metadata={"help": "weight of the cross-entropy term"})
    dice_weight: float = field(default=1.0, metadata={"help": "weight of the (multiclass) Dice term"})
    class_weights: str = field(default="none", metadata={
        "help": "cross-entropy class weights: none, balanced (inverse pixel frequency on the training split), "
                "or one number per class, background first: '0.5,1,2'"})
    steps: int = field(default=200, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=4, metadata={"help": "images per step (global, across processes)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches accumulated per optimizer step"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate (lower it, e.g. 1e-5, with --freeze none)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=10, metadata={"help": "linear warm-up steps before the cosine decay"})
    clip_grad: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    precision: str = field(default="auto", metadata={"help": "auto: bf16/fp16 on GPUs, fp32 on CPU",
                                                     "choices": ("auto", "fp32", "fp16", "bf16")})
    seed: int = field(default=0, metadata={"help": "seed for split, sampling, augmentation"})
    max_bad_steps: int = field(default=5, metadata={"help": "consecutive NaN/inf losses before the run stops"})
    feature_cache: bool = field(default=True, metadata={"help": "cache encoder features when the encoder is frozen"})
    # Run
    out: str | None = field(default=None, metadata={"help": "run folder (default runs/semantic-<timestamp>)"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out from its last checkpoint"})
    stop_after: int = field(default=0, metadata={
        "help": "stop this session after N steps with a resumable checkpoint (0 = run to --steps)"})
    eval: bool = field(default=True, metadata={"help": "evaluate on the validation split before and after training"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every N steps (0 = only before and after)"})
    save_every: int = field(default=50, metadata={"help": "checkpoint every N steps"})
    log_every: int = field(default=1, metadata={"help": "log metrics every N steps"})
    eval_images: int = field(default=0, metadata={"help": "validation images used by the evaluation (0 = all)"})
    baseline: bool = field(default=True, metadata={
        "help": "score the promptless SAM2 baseline (automatic mask generator) on the validation split"})
    auto_points_per_side: int = field(default=16, metadata={"help": "point grid of the automatic-mask baseline"})
    auto_pred_iou_thresh: float = field(default=0.0, metadata={
        "help": "baseline: keep masks with predicted IoU above this (sam2's default 0.8 drops every mask of a "
                "random-init or young model)"})
    auto_stability_thresh: float = field(default=0.0, metadata={
        "help": "baseline: keep masks with stability score above this (sam2's default: 0.95)"})
    overlays: int = field(default=4, metadata={"help": "validation overlays drawn at the end"})
    push_to: str | None = field(default=None, metadata={"help": "Hub repo id, local:owner/name or file:PATH"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if available)"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bar"})

    @property
    def frozen(self) -> list[str]:
        return [] if self.freeze == "none" else [self.freeze]

    @property
    def channels(self) -> list[int]:
        try:
            values = [int(v) for v in self.decoder_channels.split(",")]
        except ValueError:
            values = []
        if len(values) != 4 or min(values) < 1:
            raise ValueError(f"--decoder-channels: expected 4 positive integers like 128,64,32,16, "
                             f"got {self.decoder_channels!r}")
        return values

    def validate(self) -> "SemanticTrainConfig":
        from trainer.sam2_ft.model import CONFIGS

        if self.freeze not in FREEZE_CHOICES:
            raise ValueError(f"--freeze: {self.freeze!r}; choose from {', '.join(FREEZE_CHOICES)}")
        if self.size not in CONFIGS:
            raise ValueError(f"--size: unknown size {self.size!r}; choose from {', '.join(CONFIGS)}")
        if self.image_size % 32:
            raise ValueError(f"--image-size must be a multiple of 32, got {self.image_size}")
        if self.weights and self.no_pretrained:
            raise ValueError("--weights and --no-pretrained exclude each other")
        if self.ce_weight < 0 or self.dice_weight < 0 or self.ce_weight + self.dice_weight == 0:
            raise ValueError("--ce-weight and --dice-weight must be >= 0 and not both 0")
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        self.channels  # noqa: B018 - raise early on a bad list
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "semantic", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SemanticTrainConfig":
        return options.from_dict(cls, data)
