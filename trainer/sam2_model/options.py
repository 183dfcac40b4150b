"""The options of a SAM2-based model, shared by every trainer built on it (sam2, sam2-video, semantic, federated):
which sam2.1 architecture, which weights, what input size, and the automatic mask generator's evaluation grid."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.sam2_model.configs import CONFIGS, HUB_IDS


@dataclass
class Sam2ModelOptions:
    size: str = field(default="tiny", metadata={"help": "sam2.1 hiera size",
                                                "choices": tuple(CONFIGS)})
    weights: str | None = field(default=None, metadata={
        "help": "checkpoint file, run/Hub folder, or Hub id (default: the official sam2.1 weights of --size)"})
    no_pretrained: bool = field(default=False, metadata={"help": "random initialisation (no download)"})
    image_size: int = field(default=1024, metadata={"help": "model input size (multiple of 32)"})

    @property
    def base_weights(self) -> str | None:
        """What the run starts from: None (random init), a file/folder, or the official Hub id of --size."""
        if self.no_pretrained:
            return None
        return self.weights or HUB_IDS[self.size]

    def validate(self):
        if self.size not in CONFIGS:
            raise ValueError(f"--size: unknown size {self.size!r}; choose from {', '.join(CONFIGS)}")
        if self.image_size % 32:
            raise ValueError(f"--image-size must be a multiple of 32, got {self.image_size}")
        if self.weights and self.no_pretrained:
            raise ValueError("--weights and --no-pretrained exclude each other")
        return super().validate()  # type: ignore[misc]  # the next options class of the config


@dataclass
class AutoMaskOptions:
    """sam2's automatic mask generator as an evaluation (prompt-free masks, or the semantic trainer's baseline)."""

    auto_points_per_side: int = field(default=16, metadata={"help": "grid of the prompt-free evaluation"})
    auto_iou_thresh: float = field(default=0.5, metadata={
        "help": "prompt-free evaluation: keep masks whose predicted IoU reaches this (sam2's generator: 0.8)"})
    auto_stability_thresh: float = field(default=0.8, metadata={
        "help": "prompt-free evaluation: keep masks whose stability score reaches this (sam2's generator: 0.95)"})

    @property
    def auto_thresholds(self) -> dict[str, float]:
        """The generator's filters for evaluation. sam2's defaults (predicted IoU 0.8, stability 0.95) keep only
        confident masks, which drops every mask of a young (e.g. random-init) model and reads 0; evaluation uses
        laxer ones, recorded in the run config."""
        return {"pred_iou_thresh": self.auto_iou_thresh, "stability_score_thresh": self.auto_stability_thresh}
