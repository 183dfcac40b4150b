"""Every option of `python -m trainer sam2`, with its default: the one source of defaults.

The config is the engine's loop options, the SAM2 model's options and this trainer's recipe (`Sam2Recipe`, which
the federated trainer holds too). The CLI flags are generated from the dataclass (field `foo_bar` -> `--foo-bar`),
and the resolved config is saved as RUN_DIR/config.yaml, so a run can be repeated from that file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.engine.options import LoopOptions, option
from trainer.sam2_model.options import AutoMaskOptions, Sam2ModelOptions

FREEZABLE = ("image_encoder", "prompt_encoder", "mask_decoder")
PROMPT_TYPES = ("point", "points", "box", "mask")


@dataclass
class Sam2Recipe:
    """The SAM2 objective's options (prompts, corrective clicks, losses, what trains): the sam2 and federated
    trainers' configs both hold them."""

    max_objects: int = field(default=8, metadata={"help": "objects sampled per image per step"})
    freeze: str = field(default="image_encoder", metadata={
        "help": f"comma list of parts to freeze: {', '.join(FREEZABLE)} (or 'none')"})
    lora: int = field(default=0, metadata={
        "help": "LoRA rank on the frozen image encoder's attention (peft; 0 = off; merged into the saved weights)"})
    grad_checkpointing: bool = field(default=False, metadata={
        "help": "recompute the image encoder's activations in backward (less memory when it trains)"})
    loss: str = field(default="dice_bce_iou", metadata={
        "help": "dice+BCE+IoU-head MSE (default; learns every prompt type from random init too), sam2's "
                "focal+dice+IoU (20:1:1), the LabPics tutorial's BCE+IoU, or the HF/MONAI/FedSAM Dice+CE",
        "choices": ("focal_dice_iou", "bce_iou", "dice_ce", "dice_bce_iou")})
    prompts: str = field(default="point,points,box", metadata={
        "help": f"prompt types drawn each step, from {', '.join(PROMPT_TYPES)} (mask: the model's own "
                "prediction fed back with its point)"})
    correction_clicks: int = field(default=6, metadata={
        "help": "corrective clicks per step, each sampled from the previous prediction's error region"})
    centre_clicks: float = field(default=0.5, metadata={
        "help": "share of the corrective clicks put at the centre of the larger error (the interactive "
                "evaluation's rule) rather than at an error pixel drawn uniformly (sam2's training rule); 0-1 "
                "(0.5: clicks help on every seed, README)"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the decoder + loss (objects padded to power-of-two buckets up to --max-objects; "
                "compiles once per bucket and prompt type; off by default: see bench/README.md, issue 17)"})
    eval_images: int = field(default=8, metadata={"help": "validation images used by the evaluation (0 = all)"})
    eval_clicks: int = field(default=20, metadata={
        "help": "clicks per object of the interactive evaluation (mIoU after 1-10 clicks, NoC@85/90 capped at it; "
                "0 = off)"})

    @property
    def frozen(self) -> list[str]:
        parts = [p.strip() for p in self.freeze.split(",") if p.strip() and p.strip() != "none"]
        unknown = [p for p in parts if p not in FREEZABLE]
        if unknown:
            raise ValueError(f"--freeze: unknown part(s) {unknown}; choose from {', '.join(FREEZABLE)}")
        return parts

    @property
    def cache_features(self) -> bool:
        """The encoder's output is cached only when it cannot change: frozen, and no LoRA on it."""
        return self.feature_cache and "image_encoder" in self.frozen and not self.lora  # type: ignore[attr-defined]

    @property
    def prompt_types(self) -> list[str]:
        kinds = [p.strip() for p in self.prompts.split(",") if p.strip()]
        unknown = [p for p in kinds if p not in PROMPT_TYPES]
        if unknown or not kinds:
            raise ValueError(f"--prompts: unknown prompt type(s) {unknown}; choose from {', '.join(PROMPT_TYPES)}")
        return kinds

    def validate(self):
        from trainer.sam2_ft.losses import LOSSES  # imports torch: `python -m trainer --help` reads this class

        self.frozen, self.prompt_types  # noqa: B018 - raise early on bad lists
        if self.loss not in LOSSES:
            raise ValueError(f"--loss: unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.lora < 0:
            raise ValueError(f"--lora must be >= 0 (0 = off), got {self.lora}")
        if self.lora and "image_encoder" not in self.frozen:
            raise ValueError("--lora trains low-rank updates of a frozen image encoder; add image_encoder to --freeze "
                             "(or drop --lora to train the encoder fully)")
        if self.grad_checkpointing and "image_encoder" in self.frozen and not self.lora:
            raise ValueError("--grad-checkpointing saves memory only when the image encoder trains: "
                             "remove image_encoder from --freeze or use --lora")
        if self.max_objects < 1:
            raise ValueError("--max-objects must be >= 1")
        if not 0.0 <= self.centre_clicks <= 1.0:
            raise ValueError(f"--centre-clicks is a share of the clicks, 0-1; got {self.centre_clicks}")
        return super().validate()  # type: ignore[misc]  # the loop's and the model's options


@dataclass
class Sam2TrainConfig(Sam2Recipe, AutoMaskOptions, Sam2ModelOptions, LoopOptions):
    kind = "sam2"
    out: str | None = option(LoopOptions, "out", help="run folder (default runs/sam2-<timestamp>)")
