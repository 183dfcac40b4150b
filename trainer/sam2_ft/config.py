"""Every option of `python -m trainer sam2`, with its default: the one source of defaults.

The CLI flags are generated from this dataclass (field `foo_bar` -> `--foo-bar`), and the resolved config is saved
as RUN_DIR/config.yaml, so a run can be repeated from that file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from trainer import options

FREEZABLE = ("image_encoder", "prompt_encoder", "mask_decoder")
PROMPT_TYPES = ("point", "points", "box", "mask")


@dataclass
class Sam2TrainConfig(options.RunConfig):
    kind = "sam2"
    # Data
    data: str = field(default="builtin", metadata={"help": "dataset path, or 'builtin' (real photos shipped with us)"})
    format: str = field(default="auto", metadata={"help": "dataset format (auto-detected by default)"})
    skip_bad: bool = field(default=False, metadata={"help": "skip unreadable samples instead of stopping"})
    val_fraction: float = field(default=0.2, metadata={"help": "fraction of images held out for validation"})
    max_objects: int = field(default=8, metadata={"help": "objects sampled per image per step"})
    augment: str = field(default="default", metadata={
        "help": "augmentation (seeded): none | flip | default (zoom 0.67-1.5x with crops, flip, small affine, "
                "colour jitter, grayscale) | strong (sam2's MOSE recipe: affine 25 deg / shear 20, zoom 0.5-2x)",
        "choices": ("none", "flip", "default", "strong")})
    cache_views: int = field(default=8, metadata={
        "help": "augmented views per image whose features the cache keeps (frozen encoder): a step draws one"})
    cache_budget: float = field(default=2048.0, metadata={
        "help": "MiB of cached features kept in memory; least recently used ones are dropped beyond it (0 = no limit)"})
    cache_dir: str | None = field(default=None, metadata={
        "help": "disk tier of the feature cache (reused by --resume and later runs with the same encoder weights)"})
    # Model
    size: str = field(default="tiny", metadata={"help": "sam2.1 hiera size",
                                                "choices": ("tiny", "small", "base_plus", "large")})
    weights: str | None = field(default=None, metadata={
        "help": "checkpoint file, run/Hub folder, or Hub id (default: the official sam2.1 weights of --size)"})
    no_pretrained: bool = field(default=False, metadata={"help": "random initialisation (no download)"})
    image_size: int = field(default=1024, metadata={"help": "model input size (multiple of 32)"})
    freeze: str = field(default="image_encoder", metadata={
        "help": f"comma list of parts to freeze: {', '.join(FREEZABLE)} (or 'none')"})
    lora: int = field(default=0, metadata={
        "help": "LoRA rank on the frozen image encoder's attention (peft; 0 = off; merged into the saved weights)"})
    grad_checkpointing: bool = field(default=False, metadata={
        "help": "recompute the image encoder's activations in backward (less memory when it trains)"})
    # Recipe
    loss: str = field(default="dice_bce_iou", metadata={
        "help": "dice+BCE+IoU-head MSE (default; learns every prompt type from random init too), sam2's "
                "focal+dice+IoU (20:1:1), the LabPics tutorial's BCE+IoU, or the HF/MONAI/FedSAM Dice+CE",
        "choices": ("focal_dice_iou", "bce_iou", "dice_ce", "dice_bce_iou")})
    prompts: str = field(default="point,points,box", metadata={
        "help": f"prompt types drawn each step, from {', '.join(PROMPT_TYPES)} (mask: the model's own "
                "prediction fed back with its point)"})
    correction_clicks: int = field(default=6, metadata={
        "help": "corrective clicks per step, each sampled from the previous prediction's error region"})
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
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the decoder + loss (objects padded to power-of-two buckets up to --max-objects; "
                "compiles once per bucket and prompt type; off by default: see bench/README.md, issue 17)"})
    workers: int = field(default=-1, metadata={
        "help": "processes that decode and augment the next micro-batches during the step (-1: 2 on a GPU, 0 on a "
                "CPU, where the step already uses every core)"})
    feature_cache: bool = field(default=True, metadata={
        "help": "cache image features when the encoder is frozen (off with --lora: the encoder changes)"})
    # Run
    out: str | None = field(default=None, metadata={"help": "run folder (default runs/sam2-<timestamp>)"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out from its last checkpoint"})
    stop_after: int = field(default=0, metadata={
        "help": "stop this session after N steps with a resumable checkpoint (0 = run to --steps)"})
    eval: bool = field(default=True, metadata={"help": "evaluate on the validation split before and after training"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every N steps (0 = only before and after)"})
    save_every: int = field(default=50, metadata={"help": "checkpoint every N steps"})
    log_every: int = field(default=1, metadata={
        "help": "log metrics every N steps (a GPU step's figures are read back, a sync, only then)"})
    eval_images: int = field(default=8, metadata={"help": "validation images used by the evaluation (0 = all)"})
    eval_clicks: int = field(default=20, metadata={
        "help": "clicks per object of the interactive evaluation (mIoU after 1-10 clicks, NoC@85/90 capped at it; "
                "0 = off)"})
    auto_points_per_side: int = field(default=16, metadata={"help": "grid of the prompt-free evaluation"})
    auto_iou_thresh: float = field(default=0.5, metadata={
        "help": "prompt-free evaluation: keep masks whose predicted IoU reaches this (sam2's generator: 0.8)"})
    auto_stability_thresh: float = field(default=0.8, metadata={
        "help": "prompt-free evaluation: keep masks whose stability score reaches this (sam2's generator: 0.95)"})
    overlays: int = field(default=4, metadata={"help": "validation overlays drawn at the end"})
    push_to: str | None = field(default=None, metadata={"help": "Hub repo id or file:PATH to push the run to"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if available)"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bar"})

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
        return self.feature_cache and "image_encoder" in self.frozen and not self.lora

    @property
    def prompt_types(self) -> list[str]:
        kinds = [p.strip() for p in self.prompts.split(",") if p.strip()]
        unknown = [p for p in kinds if p not in PROMPT_TYPES]
        if unknown or not kinds:
            raise ValueError(f"--prompts: unknown prompt type(s) {unknown}; choose from {', '.join(PROMPT_TYPES)}")
        return kinds

    def validate(self) -> "Sam2TrainConfig":
        from trainer.sam2_ft.losses import LOSSES
        from trainer.sam2_ft.model import CONFIGS

        self.frozen, self.prompt_types  # noqa: B018 - raise early on bad lists
        if self.loss not in LOSSES:
            raise ValueError(f"--loss: unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.size not in CONFIGS:
            raise ValueError(f"--size: unknown size {self.size!r}; choose from {', '.join(CONFIGS)}")
        if self.image_size % 32:
            raise ValueError(f"--image-size must be a multiple of 32, got {self.image_size}")
        if self.weights and self.no_pretrained:
            raise ValueError("--weights and --no-pretrained exclude each other")
        if self.lora < 0:
            raise ValueError(f"--lora must be >= 0 (0 = off), got {self.lora}")
        if self.lora and "image_encoder" not in self.frozen:
            raise ValueError("--lora trains low-rank updates of a frozen image encoder; add image_encoder to --freeze "
                             "(or drop --lora to train the encoder fully)")
        if self.grad_checkpointing and "image_encoder" in self.frozen and not self.lora:
            raise ValueError("--grad-checkpointing saves memory only when the image encoder trains: "
                             "remove image_encoder from --freeze or use --lora")
        for name in ("steps", "batch_size", "grad_accum", "max_objects", "cache_views"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        return self


def sam2_option(name: str, default: Any = None, help: str | None = None) -> Any:
    """A field for another trainer's config that is the SAM2 trainer's option `name` (flag, help, choices, default),
    optionally with another default or help text: one source for the options the trainers share."""
    f = {f.name: f for f in fields(Sam2TrainConfig)}[name]
    metadata = {**f.metadata, **({"help": help} if help else {})}
    return field(default=f.default if default is None else default, metadata=metadata)
