"""Every option of `python -m trainer semantic`, with its default: the one source of defaults.

Options that mean the same as in `python -m trainer sam2` (data, encoder, schedule, precision, run folder) are taken
from the SAM2 trainer's config (`sam2_option`), so the two stay alike; the rest are this trainer's own. The CLI flags
are generated from this dataclass (field `foo_bar` -> `--foo-bar`); the resolved config is saved as
RUN_DIR/config.yaml, so a run can be repeated (or resumed) from that file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from trainer import options
from trainer.sam2_ft.config import Sam2TrainConfig, sam2_option

FREEZE_CHOICES = ("image_encoder", "none")


@dataclass
class SemanticTrainConfig(options.RunConfig):
    kind = "semantic"
    # Data
    data: str = sam2_option("data")
    format: str = sam2_option("format")
    skip_bad: bool = sam2_option("skip_bad")
    val_fraction: float = sam2_option("val_fraction")
    augment: str = sam2_option("augment")
    cache_views: int = sam2_option("cache_views")
    cache_budget: float = sam2_option("cache_budget")
    cache_dir: str | None = sam2_option("cache_dir")
    # Model
    size: str = sam2_option("size")
    weights: str | None = sam2_option("weights", help="encoder weights: a sam2 checkpoint file, a SAM2 run/Hub "
                                      "folder of ours, or a Hub id (default: the official sam2.1 weights of --size)")
    no_pretrained: bool = sam2_option("no_pretrained")
    image_size: int = sam2_option("image_size")
    freeze: str = field(default="image_encoder", metadata={
        "help": "image_encoder: train the head only (encoder features cached); none: train everything",
        "choices": FREEZE_CHOICES})
    decoder_channels: str = field(default="128,64,32", metadata={
        "help": "channels of the UNet decoder blocks at strides 8, 4 (with the FPN skips), then 2, 1 (2 to 4 blocks; "
                "logits are upsampled from the last one)"})
    # Recipe
    ce_weight: float = field(default=1.0, metadata={"help": "weight of the cross-entropy term"})
    dice_weight: float = field(default=1.0, metadata={"help": "weight of the (multiclass) Dice term"})
    class_weights: str = field(default="none", metadata={
        "help": "cross-entropy class weights: none, balanced (inverse pixel frequency on the training split), "
                "or one number per class, background first: '0.5,1,2'"})
    steps: int = sam2_option("steps")
    batch_size: int = sam2_option("batch_size", default=4)
    grad_accum: int = sam2_option("grad_accum")
    lr: float = sam2_option("lr", default=5e-4, help="AdamW learning rate (lower it, e.g. 1e-5, with --freeze none)")
    weight_decay: float = sam2_option("weight_decay", default=1e-4)
    warmup_steps: int = sam2_option("warmup_steps")
    clip_grad: float = sam2_option("clip_grad")
    precision: str = sam2_option("precision")
    seed: int = sam2_option("seed", help="seed for split, sampling, augmentation")
    max_bad_steps: int = sam2_option("max_bad_steps")
    feature_cache: bool = sam2_option("feature_cache")
    workers: int = sam2_option("workers")
    # Run
    out: str | None = sam2_option("out", help="run folder (default runs/semantic-<timestamp>)")
    resume: bool = sam2_option("resume")
    stop_after: int = sam2_option("stop_after")
    eval: bool = sam2_option("eval")
    eval_every: int = sam2_option("eval_every")
    save_every: int = sam2_option("save_every")
    log_every: int = sam2_option("log_every")
    eval_images: int = sam2_option("eval_images", default=0)
    baseline: bool = field(default=True, metadata={
        "help": "score the promptless SAM2 baseline (automatic mask generator) on the validation split"})
    auto_points_per_side: int = sam2_option("auto_points_per_side", help="point grid of the automatic-mask baseline")
    # 0: the baseline is the base SAM2, never trained here; from random init none of its masks reach even the SAM2
    # trainer's lax 0.5 / 0.8 (with official weights, sam2's own 0.8 / 0.95 are the usual choice)
    auto_iou_thresh: float = sam2_option("auto_iou_thresh", default=0.0, help=(
        "baseline: keep masks whose predicted IoU is above this (sam2's generator: 0.8)"))
    auto_stability_thresh: float = sam2_option("auto_stability_thresh", default=0.0, help=(
        "baseline: keep masks whose stability score is above this (sam2's generator: 0.95)"))
    overlays: int = sam2_option("overlays")
    push_to: str | None = sam2_option("push_to")
    device: str | None = sam2_option("device")
    progress: bool = sam2_option("progress")

    @property
    def frozen(self) -> list[str]:
        return [] if self.freeze == "none" else [self.freeze]

    @property
    def channels(self) -> list[int]:
        try:
            values = [int(v) for v in self.decoder_channels.split(",")]
        except ValueError:
            values = []
        if not 2 <= len(values) <= 4 or min(values) < 1:
            raise ValueError(f"--decoder-channels: expected 2 to 4 positive integers like 128,64,32, "
                             f"got {self.decoder_channels!r}")
        return values

    def validate(self) -> "SemanticTrainConfig":
        if self.freeze not in FREEZE_CHOICES:
            raise ValueError(f"--freeze: {self.freeze!r}; choose from {', '.join(FREEZE_CHOICES)}")
        if self.ce_weight < 0 or self.dice_weight < 0 or self.ce_weight + self.dice_weight == 0:
            raise ValueError("--ce-weight and --dice-weight must be >= 0 and not both 0")
        self.channels  # noqa: B018 - raise early on a bad list
        shared = {f.name: getattr(self, f.name) for f in fields(Sam2TrainConfig) if hasattr(self, f.name)}
        Sam2TrainConfig(**shared).validate()  # the options both trainers have, checked as the SAM2 trainer does
        return self
