"""Every option of `python -m trainer semantic`, with its default: the one source of defaults.

The engine's loop options (data, schedule, precision, run folder), the SAM2 model's options (the encoder) and the
automatic-mask baseline's, with this trainer's defaults (`option`); the rest are this trainer's own. The CLI flags
are generated from this dataclass (field `foo_bar` -> `--foo-bar`); the resolved config is saved as
RUN_DIR/config.yaml, so a run can be repeated (or resumed) from that file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.engine.options import LoopOptions, option
from trainer.sam2_model.options import AutoMaskOptions, Sam2ModelOptions

FREEZE_CHOICES = ("image_encoder", "none")


@dataclass
class SemanticTrainConfig(AutoMaskOptions, Sam2ModelOptions, LoopOptions):
    kind = "semantic"
    weights: str | None = option(Sam2ModelOptions, "weights", help=(
        "encoder weights: a sam2 checkpoint file, a SAM2 run/Hub folder of ours, or a Hub id (default: the official "
        "sam2.1 weights of --size)"))
    freeze: str = field(default="image_encoder", metadata={
        "help": "image_encoder: train the head only (encoder features cached); none: train everything",
        "choices": FREEZE_CHOICES})
    decoder_channels: str = field(default="128,64,32", metadata={
        "help": "channels of the UNet decoder blocks at strides 8, 4 (with the FPN skips), then 2, 1 (2 to 4 blocks; "
                "logits are upsampled from the last one)"})
    ce_weight: float = field(default=1.0, metadata={"help": "weight of the cross-entropy term"})
    dice_weight: float = field(default=1.0, metadata={"help": "weight of the (multiclass) Dice term"})
    class_weights: str = field(default="none", metadata={
        "help": "cross-entropy class weights: none, balanced (inverse pixel frequency on the training split), "
                "or one number per class, background first: '0.5,1,2'"})
    batch_size: int = option(LoopOptions, "batch_size", default=4)
    cache_views: int = option(LoopOptions, "cache_views", 8, "augmented views per image whose features the cache "
                              "keeps (frozen encoder): a step draws one (0 = auto, as `trainer sam2` defaults to)")
    lr: float = option(LoopOptions, "lr", default=5e-4, help="AdamW learning rate (lower it, e.g. 1e-5, with --freeze "
                                                              "none)")
    weight_decay: float = option(LoopOptions, "weight_decay", default=1e-4)
    seed: int = option(LoopOptions, "seed", help="seed for split, sampling, augmentation")
    out: str | None = option(LoopOptions, "out", help="run folder (default runs/semantic-<timestamp>)")
    eval_images: int = field(default=0, metadata={"help": "validation images used by the evaluation (0 = all)"})
    baseline: bool = field(default=True, metadata={
        "help": "score the promptless SAM2 baseline (automatic mask generator) on the validation split"})
    auto_points_per_side: int = option(AutoMaskOptions, "auto_points_per_side",
                                       help="point grid of the automatic-mask baseline")
    auto_iou_thresh: float = option(AutoMaskOptions, "auto_iou_thresh", default=0.0, help=(
        "baseline: keep masks whose predicted IoU is above this (sam2's generator: 0.8)"))
    auto_stability_thresh: float = option(AutoMaskOptions, "auto_stability_thresh", default=0.0, help=(
        "baseline: keep masks whose stability score is above this (sam2's generator: 0.95)"))

    @property
    def frozen(self) -> list[str]:
        return [] if self.freeze == "none" else [self.freeze]

    @property
    def cache_features(self) -> bool:
        """The encoder's features are cached only when it is frozen."""
        return self.feature_cache and bool(self.frozen)

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
        return super().validate()
