"""What a model repo of each kind holds and how to load it: the one table the card, push and pull code read.

Adding a model kind means adding one `Kind` row here (plus its loader in the trainer package).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainer.checkpoint import CheckpointError, WEIGHTS_NAME

MODEL_CONFIG_NAME = "model_config.yaml"
CARD_NAME = "README.md"
# Files every repo holds; pulls fetch these plus the kind's extras (never resume state or pickles).
REQUIRED_FILES = (WEIGHTS_NAME, MODEL_CONFIG_NAME)
REPO_FILES = (*REQUIRED_FILES, "config.yaml", "summary.json", "metrics.json", CARD_NAME, "curves.png")
# A SAM2 repo in transformers' layout (config.json + model.safetensors, e.g. fine-tuned with transformers elsewhere)
# is read too; a segkit repo's own transformers/ copy is for transformers users and is not pulled.
FOREIGN_FILES = ("config.json", "processor_config.json", "preprocessor_config.json")
ALLOW_PATTERNS = [*REPO_FILES, "overlays/*.png", *FOREIGN_FILES]


class HubError(CheckpointError):
    """A repo or folder that is missing, of the wrong kind, or not a segkit model (one line: path + problem)."""


@dataclass(frozen=True)
class Kind:
    name: str
    library_name: str  # the Hub's model-libraries id
    pipeline_tag: str
    main_metric: str
    metrics: tuple[str, ...]  # summary["metrics"] keys shown in the card, in this order
    loader: str  # "module:function" taking (folder, device)
    usage: str  # the card's usage snippet; {repo_id} is filled in
    evaluator: str = ""  # "module:function" (folder, dataset, device) -> {metric: value}, summary["metrics"] keys
    hf_usage: str = ""  # a second usage snippet, with transformers alone; {repo_id} is filled in
    stager: str = ""  # "module:function" (run_dir, out_dir) writing extra repo files at push (sam2: transformers/)
    foreign: str = ""  # "module:function" (folder) -> bool: a folder of this kind in another library's layout
    data_loader: str = "trainer.data.load:load_dataset"  # (path, format, skip_bad) -> its evaluation data

    def evaluate(self, folder: str | Path, dataset: Any, device: str = "cpu") -> dict[str, Any]:
        """`python -m trainer evaluate`: this kind's metrics of the model in `folder` on `dataset`."""
        return _call(self.evaluator, folder, dataset, device)

    @property
    def clips(self) -> bool:
        return "clips" in self.data_loader

    def load_data(self, path: str, format: str = "auto", skip_bad: bool = False) -> Any:
        """The data `python -m trainer evaluate` scores this kind on (images; clips for sam2-video)."""
        return _call(self.data_loader, path, format, skip_bad)

    @property
    def allow_patterns(self) -> list[str]:
        return list(ALLOW_PATTERNS)

    def load(self, folder: str | Path, device: str = "cpu") -> Any:
        """Import the loader only when needed: sam2 and detectron2 are heavy."""
        return _call(self.loader, folder, device)

    def stage_extra(self, run_dir: str | Path, out_dir: str | Path) -> None:
        if self.stager:
            _call(self.stager, run_dir, out_dir)

    def recognizes(self, folder: str | Path) -> bool:
        """Whether `folder` holds a model of this kind in another library's layout (no model_config.yaml)."""
        return bool(self.foreign) and bool(_call(self.foreign, folder))


def _call(target: str, *args: Any) -> Any:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)(*args)


_SAM2_USAGE = '''\
import numpy as np
from PIL import Image
from hub_cards import load_model
from trainer.sam2_model.model import make_predictor

model, spec = load_model("{repo_id}")  # (SAM2Base, Sam2Spec)
predictor = make_predictor(model)
image = np.array(Image.open("your_image.jpg").convert("RGB"))
predictor.set_image(image)
h, w = image.shape[:2]
masks, scores, _ = predictor.predict(point_coords=np.array([[w // 2, h // 2]]), point_labels=np.array([1]),
                                     multimask_output=False)
print(masks.shape, scores)
'''

# The same model with transformers alone (no segkit): the repo's transformers/ folder
# (see trainer/sam2_model/hf_format.py)
_SAM2_HF_USAGE = '''\
import torch
from PIL import Image
from transformers import Sam2Model, Sam2Processor

model = Sam2Model.from_pretrained("{repo_id}", subfolder="transformers")
processor = Sam2Processor.from_pretrained("{repo_id}", subfolder="transformers")
image = Image.open("your_image.jpg").convert("RGB")
w, h = image.size
inputs = processor(images=image, input_points=[[[[w // 2, h // 2]]]], input_labels=[[[1]]], return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs, multimask_output=False)
masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"])[0][0]  # 1 x H x W bool
print(masks.shape, outputs.iou_scores)
# or: pipeline("mask-generation", model="{repo_id}", model_kwargs={{"subfolder": "transformers"}})
'''

_D2_USAGE = '''\
import numpy as np
from PIL import Image
from hub_cards import load_model

model = load_model("{repo_id}")  # trainer.d2_ft.model.InstanceSegmenter
image = np.array(Image.open("your_image.jpg").convert("RGB"))
out = model.predict(image, score_threshold=0.5)
print(out["masks"].shape, out["class_names"], out["scores"])
'''

_SEMANTIC_USAGE = '''\
import numpy as np
from PIL import Image
from hub_cards import load_model

model = load_model("{repo_id}")  # trainer.semantic.model.SemanticSegmenter
image = np.array(Image.open("your_image.jpg").convert("RGB"))
labels = model.predict(image)  # H x W class indices into model.class_names (0 = background), no prompts
print(labels.shape, {{name: float((labels == i).mean()) for i, name in enumerate(model.class_names)}})
'''

_VIDEO_USAGE = '''\
import numpy as np
from hub_cards import load_model

predictor, spec = load_model("{repo_id}")  # sam2's SAM2VideoPredictor (trainer.video.model.load_folder)
state = predictor.init_state("video_frames/")  # a folder of 00000.jpg, 00001.jpg, ... (or an .mp4)
predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=np.array([[200, 150]]), labels=np.array([1]))
for frame_idx, obj_ids, mask_logits in predictor.propagate_in_video(state):
    masks = (mask_logits[:, 0] > 0).cpu().numpy()  # objects x H x W, one frame at a time
# plain sam2: torch.save({{"model": safetensors.torch.load_file("model.safetensors")}}, "model.pt"), then
# sam2.build_sam.build_sam2_video_predictor(config, "model.pt")  (config: model_config.yaml's `config`)
'''

KINDS: dict[str, Kind] = {
    "sam2": Kind("sam2", library_name="sam2", pipeline_tag="mask-generation", main_metric="miou_box",
                 metrics=("miou_box", "miou_1pt", "miou_3pt", "auto_mean_best_iou", "auto_recall50", "area_corr_box",
                          "area_corr_1pt", "area_corr_3pt"),
                 loader="trainer.sam2_model.model:load_folder", usage=_SAM2_USAGE,
                 evaluator="trainer.sam2_ft.evaluate:evaluate_folder", hf_usage=_SAM2_HF_USAGE,
                 stager="trainer.sam2_model.hf_format:stage_transformers",
                 foreign="trainer.sam2_model.hf_format:is_hf_folder"),
    "sam2-video": Kind("sam2-video", library_name="sam2", pipeline_tag="mask-generation", main_metric="jf_mask",
                       metrics=("jf_mask", "j_mask", "f_mask", "jf_click", "j_click", "f_click"),
                       loader="trainer.video.model:load_folder", usage=_VIDEO_USAGE,
                       evaluator="trainer.video.evaluate:evaluate_folder",
                       data_loader="trainer.data.clips:load_clips"),
    "detectron2": Kind("detectron2", library_name="detectron2", pipeline_tag="image-segmentation",
                       main_metric="segm_AP", metrics=("segm_AP", "segm_AP50", "bbox_AP"),
                       loader="trainer.d2_ft.model:load_folder", usage=_D2_USAGE,
                       evaluator="trainer.d2_ft.evaluate:evaluate_folder"),
    # library "segkit": the weights are sam2's image encoder under an smp-style head; only segkit's loader reads them
    "semantic": Kind("semantic", library_name="segkit", pipeline_tag="image-segmentation", main_metric="miou",
                     metrics=("miou", "pixel_accuracy"), loader="trainer.semantic.model:load_folder",
                     usage=_SEMANTIC_USAGE, evaluator="trainer.semantic.evaluate:evaluate_folder"),
}

METRIC_LABELS = {
    "miou_box": "mIoU, box prompt", "miou_1pt": "mIoU, 1 point", "miou_3pt": "mIoU, 3 points",
    "auto_mean_best_iou": "automatic masks: mean best IoU", "auto_recall50": "automatic masks: recall@IoU 0.5",
    "segm_AP": "mask AP", "segm_AP50": "mask AP50", "bbox_AP": "box AP",
    "miou": "mean IoU over classes", "pixel_accuracy": "pixel accuracy",
    "jf_mask": "J&F, first-frame mask", "j_mask": "J (region IoU), first-frame mask",
    "f_mask": "F (boundary), first-frame mask", "jf_click": "J&F, one click on the first frame",
    "j_click": "J (region IoU), one click", "f_click": "F (boundary), one click",
    "area_corr_box": "area correlation, box", "area_corr_1pt": "area correlation, 1 point",
    "area_corr_3pt": "area correlation, 3 points",
}


def get_kind(name: str | None, source: str = "kind") -> Kind:
    if name not in KINDS:
        raise HubError(f"{source}: unknown model kind {name!r}; expected one of {', '.join(KINDS)}")
    return KINDS[name]


def folder_kind(folder: str | Path) -> Kind:
    """The kind a model folder declares in model_config.yaml (safe_load: plain YAML only), or the kind whose
    foreign layout it is in (a SAM2 in transformers' format)."""
    path = Path(folder) / MODEL_CONFIG_NAME
    if not path.is_file():
        for kind in KINDS.values():
            if kind.recognizes(folder):
                return kind
        raise HubError(f"{path}: missing; a segkit model folder holds {' and '.join(REQUIRED_FILES)} "
                       f"(or, for SAM2, transformers' config.json and {WEIGHTS_NAME})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise HubError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise HubError(f"{path}: expected a mapping with a 'kind' field")
    return get_kind(data.get("kind"), str(path))


def check_folder(folder: str | Path, expected: str | None = None) -> Kind:
    """The folder's kind, after checking it matches `expected` and holds every required file."""
    kind = folder_kind(folder)
    if expected is not None and kind.name != get_kind(expected).name:
        raise HubError(f"{folder}: this is a {kind.name} model, not a {expected} model")
    required = REQUIRED_FILES if (Path(folder) / MODEL_CONFIG_NAME).is_file() else (WEIGHTS_NAME,)  # foreign layout
    missing = [name for name in required if not (Path(folder) / name).is_file()]
    if missing:
        raise HubError(f"{folder}: missing {', '.join(missing)}; not a complete {kind.name} model repo")
    return kind
