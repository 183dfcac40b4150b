"""What a model repo of each kind holds and how to load it: the one table the card, push and pull code read.

Adding a model kind means adding one `Kind` row here (plus its loader in the trainer package).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from trainer.checkpoint import CheckpointError, WEIGHTS_NAME

MODEL_CONFIG_NAME = "model_config.yaml"
CARD_NAME = "README.md"
# Files every repo holds; pulls fetch these plus the kind's extras (never resume state or pickles).
REQUIRED_FILES = (WEIGHTS_NAME, MODEL_CONFIG_NAME)
REPO_FILES = (*REQUIRED_FILES, "config.yaml", "summary.json", "metrics.json", CARD_NAME, "curves.png")
# Each ecosystem's own files beside segkit's (see the stagers): a sam2 / sam2-video repo is laid out like the official
# facebook/sam2.1-hiera-* repos — transformers' config.json, model.safetensors (transformers' keys) and processor
# config at the root, sam2's weights as sam2.safetensors; a detectron2 repo adds a plain cfg.dump().
# (A SAM2 repo in transformers' layout alone, e.g. fine-tuned with transformers elsewhere, is read too.)
# Named here, not imported: hub_cards sits below the trainer packages (the loaders are imported by name, lazily).
SAM2_WEIGHTS_NAME = "sam2.safetensors"  # = trainer.sam2_model.hf_format.SAM2_WEIGHTS_NAME (tests/test_hub_layout.py)
D2_CONFIG_NAME = "detectron2_config.yaml"  # written by trainer.d2_ft.weights.stage_repo
FOREIGN_FILES = ("config.json", "processor_config.json", "preprocessor_config.json", SAM2_WEIGHTS_NAME,
                 D2_CONFIG_NAME)
ONNX_FILES = ("onnx/decoder.onnx",)  # a sam2 repo's prompt decoder for onnxruntime (trainer/sam2_model/onnx_export.py)
ALLOW_PATTERNS = [*REPO_FILES, "overlays/*.png", *FOREIGN_FILES, *ONNX_FILES]


def pull_patterns(files: Iterable[str]) -> list[str]:
    """What a pull of a repo holding `files` fetches: ALLOW_PATTERNS, less the root model.safetensors where sam2's
    own weights are there (in the official layout it is transformers' copy of sam2.safetensors)."""
    skip = WEIGHTS_NAME if SAM2_WEIGHTS_NAME in set(files) else None
    return [p for p in ALLOW_PATTERNS if p != skip]


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
    usage: str  # the card's usage snippet, with segkit; {repo_id} is filled in
    files: str  # the card's line on what the repo holds (markdown)
    evaluator: str = ""  # "module:function" (folder, dataset, device) -> {metric: value}, summary["metrics"] keys
    # more usage snippets, each with another library alone: (heading, a line of markdown, code with {repo_id})
    snippets: tuple[tuple[str, ...], ...] = ()  # (heading, text, code[, a repo file it needs])
    tags: tuple[str, ...] = ()  # Hub tags beyond segkit's (the libraries the snippets use)
    stagers: tuple[str, ...] = ()  # "module:function"s (run_dir, out_dir) writing the other libraries' files at push
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
        for stager in self.stagers:
            _call(stager, run_dir, out_dir)

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

model, spec = load_model("{repo_id}")  # (SAM2Base, Sam2Spec): sam2's model with sam2.safetensors
predictor = make_predictor(model)
image = np.array(Image.open("your_image.jpg").convert("RGB"))
predictor.set_image(image)
h, w = image.shape[:2]
masks, scores, _ = predictor.predict(box=np.array([w // 4, h // 4, 3 * w // 4, 3 * h // 4]), multimask_output=False)
print(masks.shape, scores)
'''

# The same model with transformers alone: the root's config.json, model.safetensors, processor_config.json
_SAM2_HF_USAGE = '''\
import torch
from PIL import Image
from transformers import Sam2Model, Sam2Processor

model = Sam2Model.from_pretrained("{repo_id}").eval()
processor = Sam2Processor.from_pretrained("{repo_id}")
image = Image.open("your_image.jpg").convert("RGB")
w, h = image.size
inputs = processor(images=image, input_boxes=[[[w // 4, h // 4, 3 * w // 4, 3 * h // 4]]], return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs, multimask_output=False)
masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"])[0][0]  # 1 x H x W bool
print(masks.shape, outputs.iou_scores)
# automatic masks: transformers.pipeline("mask-generation", model="{repo_id}")(image, points_per_batch=64)
'''

# With sam2 alone: its builder from the packaged config, then sam2.safetensors loaded strictly (sam2's own loader
# reads .pt pickles; this repo publishes none)
_SAM2_OWN_USAGE = '''\
import numpy as np
import yaml
from huggingface_hub import hf_hub_download
from PIL import Image
from safetensors.torch import load_file
from sam2.build_sam import build_sam2
from sam2.sam2_image_predictor import SAM2ImagePredictor

spec = yaml.safe_load(open(hf_hub_download("{repo_id}", "model_config.yaml")))  # sam2's config name, input size
s = spec["image_size"]
model = build_sam2(spec["config"], None, device="cpu", hydra_overrides_extra=[f"++model.image_size={{s}}"])
model.load_state_dict(load_file(hf_hub_download("{repo_id}", "sam2.safetensors")), strict=True)
predictor = SAM2ImagePredictor(model)
predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]  # it assumes 1024 px
image = np.array(Image.open("your_image.jpg").convert("RGB"))
predictor.set_image(image)
h, w = image.shape[:2]
masks, scores, _ = predictor.predict(box=np.array([w // 4, h // 4, 3 * w // 4, 3 * h // 4]), multimask_output=False)
print(masks.shape, scores)
'''

# The prompt decoder exported to ONNX (trainer/sam2_model/onnx_export.py says its inputs and outputs)
_SAM2_ONNX_USAGE = '''\
import numpy as np
import onnxruntime
import torch
from huggingface_hub import hf_hub_download
from PIL import Image
from hub_cards import load_model
from trainer.sam2_model.model import make_predictor
from trainer.sam2_model.onnx_export import image_inputs, onnx_inputs

model, spec = load_model("{repo_id}")
predictor = make_predictor(model)
image = np.array(Image.open("your_image.jpg").convert("RGB"))
predictor.set_image(image)  # the image encoder, once per image
image_side = image_inputs(model, predictor._features)  # the decoder's image-side work, once per image
s, (h, w) = spec.image_size, image.shape[:2]
box = np.array([[w // 4, h // 4], [3 * w // 4, 3 * h // 4]], np.float32) * [s / w, s / h]  # model-input pixels
decoder = onnxruntime.InferenceSession(hf_hub_download("{repo_id}", "onnx/decoder.onnx"))
# each prompt is the ONNX graph's: here a box, its two corners labelled 2 and 3 (clicks: 1 positive, 0 negative)
low_res, scores = decoder.run(None, onnx_inputs(image_side, box, np.array([2, 3])))
# [:, 0] is the single mask, [:, 1:] the 3 of a multimask answer: upsampled as sam2 does, thresholded at 0
masks = predictor._transforms.postprocess_masks(torch.from_numpy(low_res[:, :1]), (h, w))[0].numpy() > 0
print(masks.shape, scores)
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

# With detectron2 alone: its cfg (a plain cfg.dump()) and DefaultPredictor; the weights are safetensors (no pickle),
# so they are loaded into the predictor's model strictly instead of through MODEL.WEIGHTS
_D2_OWN_USAGE = '''\
import numpy as np
import torch
from detectron2.config import get_cfg
from detectron2.engine import DefaultPredictor
from huggingface_hub import hf_hub_download
from PIL import Image
from safetensors.torch import load_file

cfg = get_cfg()
cfg.merge_from_file(hf_hub_download("{repo_id}", "detectron2_config.yaml"))
cfg.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
predictor = DefaultPredictor(cfg)  # MODEL.WEIGHTS is empty: the weights come next
predictor.model.load_state_dict(load_file(hf_hub_download("{repo_id}", "model.safetensors")), strict=True)
image = np.array(Image.open("your_image.jpg").convert("RGB"))
instances = predictor(image[:, :, ::-1])["instances"].to("cpu")  # DefaultPredictor takes BGR
print(instances.pred_masks.shape, instances.pred_classes, instances.scores)
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
'''

_VIDEO_HF_USAGE = '''\
from transformers import Sam2VideoModel

model = Sam2VideoModel.from_pretrained("{repo_id}").eval()  # every tensor, video memory included
# then transformers' Sam2VideoProcessor / inference session API (see transformers' SAM2 Video docs)
'''

_VIDEO_OWN_USAGE = '''\
import yaml
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from sam2.build_sam import build_sam2_video_predictor

spec = yaml.safe_load(open(hf_hub_download("{repo_id}", "model_config.yaml")))  # sam2's config name, input size
predictor = build_sam2_video_predictor(spec["config"], None, device="cpu",
                                       hydra_overrides_extra=[f"++model.image_size={{spec['image_size']}}"])
predictor.load_state_dict(load_file(hf_hub_download("{repo_id}", "sam2.safetensors")), strict=True)
'''

_SAM2_FILES = ("Files: transformers' `config.json`, `model.safetensors` and `processor_config.json` at the root (as in "
               "the official facebook/sam2.1-hiera-* repos); `sam2.safetensors` (sam2's own key layout) and "
               "`model_config.yaml` (sam2's config name and input size) for sam2 and segkit")
_SAM2_IMAGE_FILES = _SAM2_FILES + ("; `onnx/decoder.onnx` (the prompt encoder + mask decoder for onnxruntime, when its "
                                   "export passed its check against PyTorch)")
_SEGKIT_FILES = "Files: `model.safetensors` (weights), `model_config.yaml` (architecture)"
_D2_FILES = ("Files: `model.safetensors` (weights, detectron2's keys), `detectron2_config.yaml` (a plain `cfg.dump()`), "
             "`model_config.yaml` (segkit's: class names + the same cfg)")


def _sam2_snippets(hf_usage: str, own_usage: str, classes: str) -> tuple[tuple[str, str, str], ...]:
    return (("With transformers", f"{classes} read the root, no segkit needed:", hf_usage),
            ("With sam2", "sam2's builder from its packaged config, then the weights loaded strictly:", own_usage))


KINDS: dict[str, Kind] = {
    "sam2": Kind("sam2", library_name="sam2", pipeline_tag="mask-generation", main_metric="miou_box",
                 metrics=("miou_box", "miou_1pt", "miou_3pt", "miou_click_1", "miou_click_3", "miou_click_5", "noc_85",
                          "noc_90", "auto_mean_best_iou", "auto_recall50", "area_corr_box", "area_corr_1pt",
                          "area_corr_3pt"),
                 loader="trainer.sam2_model.model:load_folder", usage=_SAM2_USAGE, files=_SAM2_IMAGE_FILES,
                 evaluator="trainer.sam2_ft.evaluate:evaluate_folder", tags=("transformers",),
                 snippets=(*_sam2_snippets(_SAM2_HF_USAGE, _SAM2_OWN_USAGE,
                                           "`Sam2Model`, `Sam2Processor` and the `mask-generation` pipeline"),
                           ("With onnxruntime", "the image's features once, then each prompt decoded by "
                            "`onnx/decoder.onnx` (what a browser runs with onnxruntime-web):", _SAM2_ONNX_USAGE,
                            ONNX_FILES[0])),
                 stagers=("trainer.sam2_model.hf_format:stage_repo", "trainer.sam2_model.onnx_export:stage_onnx"),
                 foreign="trainer.sam2_model.hf_format:is_hf_folder"),
    "sam2-video": Kind("sam2-video", library_name="sam2", pipeline_tag="mask-generation", main_metric="jf_mask",
                       metrics=("jf_mask", "j_mask", "f_mask", "jf_click", "j_click", "f_click"),
                       loader="trainer.video.model:load_folder", usage=_VIDEO_USAGE, files=_SAM2_FILES,
                       evaluator="trainer.video.evaluate:evaluate_folder", tags=("transformers",),
                       snippets=_sam2_snippets(_VIDEO_HF_USAGE, _VIDEO_OWN_USAGE, "`Sam2VideoModel`"),
                       stagers=("trainer.sam2_model.hf_format:stage_repo",), data_loader="trainer.data.clips:load_clips"),
    "detectron2": Kind("detectron2", library_name="detectron2", pipeline_tag="image-segmentation",
                       main_metric="segm_AP", metrics=("segm_AP", "segm_AP50", "bbox_AP"),
                       loader="trainer.d2_ft.model:load_folder", usage=_D2_USAGE, files=_D2_FILES,
                       evaluator="trainer.d2_ft.evaluate:evaluate_folder",
                       snippets=(("With detectron2", "detectron2's own `get_cfg` and `DefaultPredictor`, no segkit "
                                  "needed; the safetensors weights are loaded strictly:", _D2_OWN_USAGE),),
                       stagers=("trainer.d2_ft.weights:stage_repo",)),
    # library "segkit": the weights are sam2's image encoder under an smp-style head; only segkit's loader reads them
    "semantic": Kind("semantic", library_name="segkit", pipeline_tag="image-segmentation", main_metric="miou",
                     metrics=("miou", "pixel_accuracy"), loader="trainer.semantic.model:load_folder",
                     usage=_SEMANTIC_USAGE, files=_SEGKIT_FILES, evaluator="trainer.semantic.evaluate:evaluate_folder"),
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
    **{f"miou_click_{k}": f"mIoU after {k} click{'s' if k > 1 else ''} (standard clicks)" for k in (1, 2, 3, 5, 10)},
    "noc_85": "clicks to 85 % IoU (NoC@85, fewer is better)", "noc_90": "clicks to 90 % IoU (NoC@90, fewer is better)",
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
    if WEIGHTS_NAME in missing and (Path(folder) / SAM2_WEIGHTS_NAME).is_file() and MODEL_CONFIG_NAME in required:
        missing.remove(WEIGHTS_NAME)  # segkit reads sam2.safetensors; the root's is transformers' (not pulled)
    if missing:
        raise HubError(f"{folder}: missing {', '.join(missing)}; not a complete {kind.name} model repo")
    return kind
