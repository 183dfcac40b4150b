"""Every option of `python -m trainer sam2-video`, with its default: the one source of defaults.

The engine's loop options and the SAM2 model's options, with the defaults of sam2's MOSE fine-tune recipe
(`option`); the clip options (--frames, --correct-frames, ...) are this trainer's own. Flags are
generated from this dataclass; the resolved config is saved as RUN_DIR/config.yaml (rerun, --resume).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.engine.options import LoopOptions, option
from trainer.sam2_model.options import Sam2ModelOptions

# The parts a video model trains; the image encoder stays frozen (its per-frame features are cached).
VIDEO_PARTS = ("memory_attention", "memory_encoder", "mask_decoder", "prompt_encoder", "obj_ptr")


@dataclass
class VideoTrainConfig(Sam2ModelOptions, LoopOptions):
    kind = "sam2-video"
    # Data
    data: str = option(LoopOptions, "data", help="clip folder (JPEGImages/ + Annotations/, or videos/ + "
                                                 "Annotations/), or 'builtin' (a camera moving over a bundled photo)")
    format: str = field(default="auto", metadata={"help": "clip layout", "choices": ("auto", "davis", "videos")})
    skip_bad: bool = option(LoopOptions, "skip_bad", help="skip clips with problems instead of stopping")
    val_fraction: float = option(LoopOptions, "val_fraction", help="fraction of clips held out (when the data has no "
                                                                   "heldout.txt)")
    frames: int = field(default=8, metadata={"help": "frames per training clip (sam2's MOSE recipe: 8)"})
    max_objects: int = field(default=3, metadata={"help": "objects per clip per step (MOSE recipe: 3)"})
    augment: str = option(LoopOptions, "augment", help="augmentation, one draw for all of a clip's frames: none | "
                                                       "flip | default | strong (sam2's MOSE recipe: affine 25 deg / "
                                                       "shear 20)")
    cache_views: int = option(LoopOptions, "cache_views", default=4, help="augmented views per clip whose frame "
                                                                          "features the cache keeps")
    # Model
    train: str = field(default="memory_attention,memory_encoder,mask_decoder,obj_ptr", metadata={
        "help": f"parts trained (comma list of {', '.join(VIDEO_PARTS)}); the image encoder stays frozen"})
    memory_start: str = field(default="auto", metadata={
        "help": "memory attention at the start: local (its cross-attention first reads the same place in earlier "
                "frames: a start for a memory that never trained), as-is (the weights' own), auto (local from random "
                "init or a SAM2 image model, else as-is)", "choices": ("auto", "local", "as-is")})
    # Prompts, as sam2's SAM2Train draws them on the first frame
    point_prob: float = field(default=0.5, metadata={
        "help": "probability of a point/box prompt on the first frame instead of its mask (MOSE recipe: 0.5)"})
    box_prob: float = field(default=0.5, metadata={"help": "of those, probability of a box rather than a click"})
    correct_frames: int = field(default=2, metadata={
        "help": "frames that get corrective clicks (the first one included; sam2's num_frames_to_correct; MOSE: 2)"})
    correction_points: int = field(default=7, metadata={"help": "corrective clicks per such frame (sam2: 7)"})
    # Recipe
    loss_weights: str = field(default="20,1,1,1", metadata={
        "help": "sam2's MultiStepMultiMasksAndIous weights: focal mask, dice, IoU, object score"})
    steps: int = option(LoopOptions, "steps", default=200)
    batch_size: int = option(LoopOptions, "batch_size", default=1, help="clips per step (global, across processes)")
    lr: float = option(LoopOptions, "lr", default=5e-6, help="AdamW learning rate (MOSE recipe: 5e-6)")
    weight_decay: float = option(LoopOptions, "weight_decay", default=0.1, help="AdamW weight decay (MOSE recipe: "
                                                                                "0.1)")
    clip_grad: float = option(LoopOptions, "clip_grad", default=0.1, help="max gradient norm (MOSE recipe: 0.1; "
                                                                          "0 = off)")
    feature_cache: bool = option(LoopOptions, "feature_cache", help="cache the frozen image encoder's per-frame "
                                                                    "features")
    # Run
    out: str | None = option(LoopOptions, "out", help="run folder (default runs/sam2-video-<timestamp>)")
    eval: bool = option(LoopOptions, "eval", help="J&F on the held-out clips before and after training")
    eval_clips: int = field(default=0, metadata={"help": "held-out clips the evaluation uses (0 = all)"})
    compare_with: str | None = field(default=None, metadata={
        "help": "also score this SAM2 image model (run folder, local hub name, Hub id) as a video predictor"})
    overlays: int = option(LoopOptions, "overlays", default=2, help="held-out clips drawn as frame strips at the end")

    @property
    def trained(self) -> list[str]:
        parts = [p.strip() for p in self.train.split(",") if p.strip()]
        unknown = [p for p in parts if p not in VIDEO_PARTS]
        if unknown or not parts:
            raise ValueError(f"--train: unknown part(s) {unknown}; choose from {', '.join(VIDEO_PARTS)}")
        return parts

    @property
    def weights_of_losses(self) -> dict[str, float]:
        try:
            values = [float(v) for v in self.loss_weights.split(",")]
        except ValueError:
            values = []
        if len(values) != 4 or min(values, default=-1) < 0:
            raise ValueError(f"--loss-weights: expected 4 non-negative numbers (mask, dice, iou, class), "
                             f"got {self.loss_weights!r}")
        return dict(zip(("loss_mask", "loss_dice", "loss_iou", "loss_class"), values))

    def validate(self) -> "VideoTrainConfig":
        self.trained, self.weights_of_losses  # noqa: B018 - raise early on bad lists
        if self.frames < 2:
            raise ValueError("--frames must be >= 2 (memory needs a frame to remember)")
        if not 1 <= self.correct_frames <= self.frames:
            raise ValueError(f"--correct-frames must be between 1 (the first frame) and --frames ({self.frames})")
        for name in ("point_prob", "box_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a probability (0..1)")
        if self.correction_points < 0:
            raise ValueError("--correction-points must be >= 0")
        if self.max_objects < 1:
            raise ValueError("--max-objects must be >= 1")
        return super().validate()
