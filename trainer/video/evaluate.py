"""J&F of a SAM2 video predictor on held-out clips, for two inputs on the first frame:

    mask    the first frame's ground-truth masks (semi-supervised VOS, as DAVIS / MOSE score it): jf_mask, j_mask, f_mask
    click   one click per object at its most interior point: jf_click, j_click, f_click

sam2's own SAM2VideoPredictor does the tracking (init_state on the clip's frames, add_new_mask /
add_new_points_or_box, propagate_in_video); trainer/video/jf.py scores it.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import sam2.sam2_video_predictor as predictor_module
import sam2.utils.misc as misc_module
import torch
from PIL import Image
from tqdm import tqdm

from trainer.data.instances import interior_point
from trainer.video.jf import clip_jf
from trainer.video.model import load_folder

MODES = ("mask", "click")
METRICS = tuple(f"{m}_{mode}" for mode in MODES for m in ("jf", "j", "f"))
# The two trackers any model must beat, scored the same way: nothing predicted anywhere, and frame 0's masks copied
# to every frame (no motion). Objects that leave the view make the first one score well above 0.
REFERENCES = {"jf_none": "nothing predicted", "jf_copy": "frame 0's masks copied to every frame"}


@contextlib.contextmanager
def quiet_bars(quiet: bool = True) -> Iterator[None]:
    """sam2's predictor draws a tqdm bar per frame load and per propagation (TQDM_DISABLE is read only when tqdm is
    imported): its modules' `tqdm` is swapped for a disabled one meanwhile."""
    modules = [predictor_module, misc_module] if quiet else []
    saved = [m.tqdm for m in modules]
    for module in modules:
        module.tqdm = functools.partial(tqdm, disable=True)
    try:
        yield
    finally:
        for module, original in zip(modules, saved):
            module.tqdm = original


def write_frames(frames: list[np.ndarray], folder: str | Path) -> Path:
    """Frames as <index>.jpg, the folder layout SAM2VideoPredictor.init_state reads."""
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(Path(folder) / f"{t:05d}.jpg", quality=95)
    return Path(folder)


def click_point(mask: np.ndarray) -> np.ndarray:
    """The object's most interior pixel (x, y), as the SAM2 trainer's evaluation clicks."""
    return np.array([interior_point(mask)], dtype=np.float32)


def propagate(predictor, state, num_objects: int, size: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, N x H x W bool) for every frame, from the prompts already added to `state`."""
    for frame_idx, obj_ids, logits in predictor.propagate_in_video(state):
        masks = np.zeros((num_objects, *size), bool)
        for obj_id, logit in zip(obj_ids, logits):
            masks[int(obj_id) - 1] = (logit[0] > 0).cpu().numpy()
        yield frame_idx, masks


def track_clip(predictor, clip, mode: str, state=None) -> np.ndarray:
    """Predictions T x N x H x W for `clip` from its first frame's masks or one click per object."""
    first = clip.masks[0]
    predictor.reset_state(state)
    with torch.inference_mode():
        for n in range(first.shape[0]):
            if mode == "mask":
                predictor.add_new_mask(state, frame_idx=0, obj_id=n + 1, mask=first[n])
            else:
                predictor.add_new_points_or_box(state, frame_idx=0, obj_id=n + 1, points=click_point(first[n]),
                                                labels=np.array([1], np.int32))
        pred = np.zeros(clip.masks.shape, bool)
        for t, masks in propagate(predictor, state, first.shape[0], first.shape[1:]):
            pred[t] = masks
    return pred


def scored(clips, max_clips: int = 0) -> int:
    """How many of the clips an evaluation scores (the first ones; 0 = all)."""
    return len(clips) if max_clips <= 0 else min(max_clips, len(clips))


def evaluate(predictor, clips, max_clips: int = 0, progress: bool = True, modes=MODES) -> dict:
    """{jf_mask, j_mask, f_mask, jf_click, ...} averaged over objects, and `per_object` (clip/object -> J&F)."""
    n_clips = scored(clips, max_clips)
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    per_object: dict[str, dict[str, float]] = {}
    was_training = predictor.training
    predictor.eval()
    bar = tqdm(range(n_clips), desc="J&F", disable=not progress, leave=False)  # made before quiet_bars
    try:
        with quiet_bars():
            for index in bar:
                clip = clips[index]
                with tempfile.TemporaryDirectory(prefix="segkit-clip-") as tmp, torch.inference_mode():
                    state = predictor.init_state(str(write_frames(clip.frames, tmp)))
                    for mode in modes:
                        j, f = clip_jf(track_clip(predictor, clip, mode, state), clip.masks)
                        scores[f"j_{mode}"] += j.tolist()
                        scores[f"f_{mode}"] += f.tolist()
                        scores[f"jf_{mode}"] += ((j + f) / 2).tolist()
                        for n, (jn, fn) in enumerate(zip(j, f)):
                            key = f"{Path(clip.source).name}/{clip.object_ids[n]}"
                            per_object.setdefault(key, {})[f"jf_{mode}"] = round(float((jn + fn) / 2), 4)
    finally:
        predictor.train(was_training)
    metrics = {k: float(np.mean(v)) for k, v in scores.items() if v}
    metrics["num_objects"] = len(per_object)
    metrics["per_object"] = per_object
    return metrics


def references(clips, max_clips: int = 0) -> dict[str, float]:
    """J&F of the REFERENCES on the clips `evaluate` scores (the same objects and frames)."""
    scores: dict[str, list[float]] = {k: [] for k in REFERENCES}
    for index in range(scored(clips, max_clips)):
        gt = clips[index].masks
        for key, pred in (("jf_none", np.zeros_like(gt)), ("jf_copy", np.broadcast_to(gt[:1], gt.shape))):
            j, f = clip_jf(pred, gt)
            scores[key] += ((j + f) / 2).tolist()
    return {k: float(np.mean(v)) for k, v in scores.items()}


def evaluate_folder(folder: str | Path, dataset, device: str = "cpu") -> dict:
    """`python -m trainer evaluate` for a sam2-video (or sam2 image) model folder on clips."""
    predictor, _ = load_folder(folder, device)
    metrics = evaluate(predictor, dataset)
    metrics["per_class"] = {}
    metrics.pop("per_object")
    return metrics
