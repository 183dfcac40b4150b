"""Build, save and load detectron2 Mask R-CNN models, and run them on one image: the one place that knows
detectron2's configs, key layout and input conventions. Used by the trainer, the Hub loader and the demo.

A model folder (run dir or pulled Hub repo) holds
    model_config.yaml   {"kind": "detectron2", "spec": D2Spec fields, "cfg": the full detectron2 cfg}
    model.safetensors   the model's state_dict in detectron2's own key layout
so it rebuilds with `get_cfg()` + the stored cfg, without unpickling anything. To use the weights with plain
detectron2: torch.save({"model": safetensors.torch.load_file("model.safetensors")}, "model.pth").
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import yaml

from trainer.checkpoint import WEIGHTS_NAME, CheckpointError, atomic_write, check_keys, load_weights
from trainer.d2_ft.choices import DEFAULT_ZOO_CONFIG, DEPTHS, NORMS
from trainer.model_limits import check_d2_cfg

MODEL_CONFIG_NAME = "model_config.yaml"


@dataclass
class D2Spec:
    """Everything needed to rebuild the architecture on top of a model-zoo config.

    norm: "FrozenBN" matches the zoo's pretrained weights; "GN" for random init (FrozenBN's fixed identity
          statistics let random-init activations explode — measured: NaN RPN boxes at the first iterations).
    depth: ResNet depth; 18/34 give a small, fast backbone for CPU tests (no pretrained weights exist for them).
    freeze_at: backbone stages kept frozen (the zoo's 2 for pretrained weights; 0 for random init, since frozen
          random weights would never learn).
    Input sizes are the shortest-edge sizes of ResizeShortestEdge (training picks one of min_size_train).
    """

    zoo_config: str = DEFAULT_ZOO_CONFIG
    class_names: list[str] = field(default_factory=list)
    norm: str = "FrozenBN"
    depth: int = 50
    freeze_at: int = 2
    min_size_train: list[int] = field(default_factory=lambda: [640, 672, 704, 736, 768, 800])
    max_size_train: int = 1333
    min_size_test: int = 800
    max_size_test: int = 1333
    kind: str = "detectron2"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.depth not in DEPTHS:
            raise ValueError(f"unknown ResNet depth {self.depth}; choose one of {DEPTHS}")
        self.class_names = [str(c) for c in self.class_names]
        self.min_size_train = [int(s) for s in np.atleast_1d(self.min_size_train)]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model_config") -> "D2Spec":
        kind = data.get("kind", "detectron2")
        if kind != "detectron2":
            raise CheckpointError(f"{source}: this is a {kind!r} model, not a detectron2 model")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: invalid detectron2 model spec ({err})") from err


def build_cfg(spec: D2Spec, weights: str | None = None, device: str | torch.device = "cpu"):
    """A detectron2 CfgNode: the zoo config plus our overrides (classes, norm, depth, input sizes, device)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    cfg = get_cfg()
    try:
        cfg.merge_from_file(model_zoo.get_config_file(spec.zoo_config))
    except RuntimeError as err:  # model_zoo raises RuntimeError for unknown names
        raise ValueError(f"unknown detectron2 zoo config {spec.zoo_config!r} ({err})") from err
    if spec.num_classes < 1:
        raise ValueError("a detectron2 model needs at least one class name")
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = spec.num_classes
    cfg.MODEL.RETINANET.NUM_CLASSES = spec.num_classes
    if spec.norm != cfg.MODEL.RESNETS.NORM:
        cfg.MODEL.RESNETS.NORM = spec.norm
        cfg.MODEL.FPN.NORM = "" if spec.norm == "FrozenBN" else spec.norm
        cfg.MODEL.ROI_BOX_HEAD.NORM = cfg.MODEL.ROI_MASK_HEAD.NORM = cfg.MODEL.FPN.NORM
    cfg.MODEL.RESNETS.DEPTH = spec.depth
    if spec.depth in (18, 34):  # BasicBlock stages: detectron2 requires these
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.BACKBONE.FREEZE_AT = spec.freeze_at
    cfg.INPUT.MIN_SIZE_TRAIN = tuple(spec.min_size_train)
    cfg.INPUT.MAX_SIZE_TRAIN = spec.max_size_train
    cfg.INPUT.MIN_SIZE_TEST = spec.min_size_test
    cfg.INPUT.MAX_SIZE_TEST = spec.max_size_test
    cfg.INPUT.MASK_FORMAT = "bitmask"  # our masks are pixel masks (RLE in the dataset dicts), not polygons
    cfg.MODEL.WEIGHTS = weights or ""
    cfg.MODEL.DEVICE = str(device)
    return cfg


def build_model(cfg) -> torch.nn.Module:
    """detectron2's build_model (random init; load weights with `load_state` or the trainer's weight refs)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.modeling import build_model as d2_build_model

    return d2_build_model(cfg)


def load_state(model: torch.nn.Module, weights: str | Path) -> None:
    """Our safetensors weights into `model`, with a clear error for another model or class count."""
    state = load_weights(weights)
    check_keys(model, state, str(weights))
    model.load_state_dict(state)


# Model folders ----------------------------------------------------------------------------------------------

def spec_from_cfg(cfg) -> D2Spec:
    """A best-effort spec for a bare cfg (class names from the training set's metadata when they fit)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.data import MetadataCatalog

    count = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    names: list[str] = []
    if len(cfg.DATASETS.TRAIN):
        names = list(MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).get("thing_classes", []) or [])
    if len(names) != count:  # e.g. the zoo cfg still names COCO's 80 classes
        names = [f"class_{i}" for i in range(count)]
    return D2Spec(zoo_config="custom", class_names=names, norm=cfg.MODEL.RESNETS.NORM, depth=cfg.MODEL.RESNETS.DEPTH,
                  freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT, min_size_train=list(cfg.INPUT.MIN_SIZE_TRAIN),
                  max_size_train=cfg.INPUT.MAX_SIZE_TRAIN, min_size_test=cfg.INPUT.MIN_SIZE_TEST,
                  max_size_test=cfg.INPUT.MAX_SIZE_TEST)


def save_spec(spec_or_cfg, folder: str | Path, cfg=None) -> Path:
    """Write model_config.yaml: our spec fields plus the full cfg (with any --opts overrides) as plain YAML."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.config import CfgNode

    if isinstance(spec_or_cfg, CfgNode):
        spec, cfg = spec_from_cfg(spec_or_cfg), spec_or_cfg
    else:
        spec, cfg = spec_or_cfg, cfg if cfg is not None else build_cfg(spec_or_cfg)
    cfg_dict = yaml.safe_load(cfg.dump())
    cfg_dict["MODEL"]["WEIGHTS"] = ""  # the folder's model.safetensors is the weights; never a pickle path
    text = yaml.safe_dump({"kind": "detectron2", "spec": spec.to_dict(), "cfg": cfg_dict}, sort_keys=False)
    path = Path(folder) / MODEL_CONFIG_NAME
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_spec(folder: str | Path, device: str | torch.device = "cpu"):
    """(D2Spec, cfg) from a folder's model_config.yaml; CheckpointError for a missing file or another kind."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.config import CfgNode, get_cfg

    path = Path(folder) / MODEL_CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a detectron2 model folder holds {MODEL_CONFIG_NAME} and "
                              f"{WEIGHTS_NAME}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CheckpointError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a mapping, got {type(data).__name__}")
    if data.get("kind", "detectron2") != "detectron2":
        raise CheckpointError(f"{path}: this is a {data.get('kind')!r} model, not a detectron2 model")
    spec = D2Spec.from_dict(data.get("spec") or {}, str(path))
    if data.get("cfg"):
        cfg = get_cfg()
        try:
            cfg.merge_from_other_cfg(CfgNode(data["cfg"]))
        except (KeyError, ValueError, AssertionError) as err:
            raise CheckpointError(f"{path}: cfg does not fit this detectron2 version ({err})") from err
        cfg.MODEL.WEIGHTS = ""
        cfg.MODEL.DEVICE = str(device)
    else:
        cfg = build_cfg(spec, device=device)
    check_d2_cfg(cfg, str(path))
    return spec, cfg


def load_folder(folder: str | Path, device: str | torch.device = "cpu", precision=None) -> "InstanceSegmenter":
    """A ready-to-run model from a run folder or a pulled Hub repo (model_config.yaml + model.safetensors)."""
    spec, cfg = load_spec(folder, device)
    model = build_model(cfg)
    load_state(model, Path(folder) / WEIGHTS_NAME)
    return InstanceSegmenter(model, cfg, spec.class_names, precision=precision)


# Inference --------------------------------------------------------------------------------------------------

class InstanceSegmenter:
    """One image in, instances out — DefaultPredictor's preprocessing without its pickle-capable loader.

    precision: a trainer.precision.Precision for autocast at inference (None = fp32).
    """

    def __init__(self, model: torch.nn.Module, cfg, class_names: list[str], precision=None):
        # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
        from detectron2.data import transforms as T

        self.model = model.eval()
        self.cfg = cfg
        self.class_names = list(class_names)
        self.precision = precision
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to_model_format(self, image: np.ndarray) -> np.ndarray:
        """Our RGB uint8 image in the channel order the model was trained with (the zoo's is BGR)."""
        return image[:, :, ::-1] if self.input_format == "BGR" else image

    def model_input(self, image: np.ndarray) -> dict[str, Any]:
        """The dict detectron2 models take: resized CHW float image plus the original size to map back to."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        resized = self.aug.get_transform(image).apply_image(self.to_model_format(image))
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)), dtype=torch.float32)
        return {"image": tensor.to(self.device), "height": height, "width": width}

    @torch.no_grad()
    def raw(self, image: np.ndarray, score_threshold: float = 0.5):
        """detectron2's Instances (on CPU) for one RGB image, scores >= score_threshold."""
        with self._score_threshold(score_threshold), \
                self.precision.autocast() if self.precision is not None else contextlib.nullcontext():
            instances = self.model([self.model_input(image)])[0]["instances"]
        instances = instances.to("cpu")
        return instances[instances.scores >= score_threshold]

    def predict(self, image: np.ndarray, score_threshold: float = 0.5) -> dict[str, Any]:
        """masks NxHxW bool, boxes Nx4 float xyxy, class_ids N int, scores N float, class_names per instance."""
        inst = self.raw(image, score_threshold)
        h, w = np.asarray(image).shape[:2]
        masks = inst.pred_masks.numpy().astype(bool) if inst.has("pred_masks") else np.zeros((len(inst), h, w), bool)
        class_ids = inst.pred_classes.numpy().astype(np.int64)
        return {
            "masks": masks.reshape(len(inst), h, w),
            "boxes": inst.pred_boxes.tensor.float().numpy().reshape(-1, 4),
            "class_ids": class_ids,
            "scores": inst.scores.float().numpy(),
            "class_names": [self.class_names[i] if 0 <= i < len(self.class_names) else str(i) for i in class_ids],
        }

    @contextmanager
    def _score_threshold(self, score_threshold: float) -> Iterator[None]:
        """The box head drops detections below its own threshold before NMS: set the caller's for this call only,
        so the caller's threshold wins and the model (shared with training/evaluation) is left as it was. Raised
        too, not only lowered: NMS only lets a higher score suppress a box, so the detections kept are the same,
        and the mask head and mask pasting then run on those few rather than on up to 100 (an untrained or young
        model's 100 near-equal scores made each overlay cost as much as an evaluation image)."""
        predictor = getattr(getattr(self.model, "roi_heads", None), "box_predictor", None)
        if predictor is None or not hasattr(predictor, "test_score_thresh"):
            yield
            return
        saved = predictor.test_score_thresh
        # the box head keeps scores > its threshold; ours keeps >=: the float32 just below, so equal scores stay
        predictor.test_score_thresh = float(np.nextafter(np.float32(score_threshold), np.float32(-np.inf)))
        try:
            yield
        finally:
            predictor.test_score_thresh = saved
