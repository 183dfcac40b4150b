"""Video tab: upload a short clip, click or box an object on any frame, and sam2's SAM2VideoPredictor (of the picked
model: a sam2-video model fine-tuned here, a SAM2 image model, or the base) tracks it through the clip, forwards and
backwards from that frame; the masked clip plays and downloads as an mp4, with the frames/s of the propagation.

Uploads are bounded before anything heavy runs: file size, duration, frame count; frames are downscaled so the
longest side is <= SEGKIT_VIDEO_MAX_SIDE.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch
from PIL import Image

from demo import models
from demo.errors import user_errors
from demo.images import MAX_FILE_BYTES, UploadError

VIDEO_TYPES = (".mp4", ".webm", ".gif", ".mov", ".mkv")
KIND = "sam2-video"


def limits() -> dict[str, float]:
    return {"frames": int(os.environ.get("SEGKIT_VIDEO_MAX_FRAMES", "120")),
            "seconds": float(os.environ.get("SEGKIT_VIDEO_MAX_SECONDS", "20")),
            "side": int(os.environ.get("SEGKIT_VIDEO_MAX_SIDE", "512"))}


@dataclass
class Upload:
    frames: list[np.ndarray]  # T x H x W x 3 uint8, downscaled
    fps: float


def read_clip(path: str | Path | None) -> Upload:
    """The upload's frames within the limits, or an UploadError that says which limit and how to fix it."""
    import av

    if not path:
        raise UploadError("upload a clip first (mp4, webm or gif)")
    path = Path(path)
    if path.suffix.lower() not in VIDEO_TYPES:
        raise UploadError(f"{path.name}: not a video file; upload an mp4, webm or gif")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UploadError(f"{path.name}: {path.stat().st_size / 2**20:.0f} MB; the limit is "
                          f"{MAX_FILE_BYTES // 2**20} MB")
    bound = limits()
    frames, fps = [], 10.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 10) or 10.0
            seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            if seconds > bound["seconds"]:
                raise UploadError(f"{path.name}: {seconds:.1f} s long; the limit is {bound['seconds']:g} s (trim it)")
            for frame in container.decode(stream):
                if len(frames) >= bound["frames"]:
                    raise UploadError(f"{path.name}: more than {bound['frames']} frames; the limit is "
                                      f"{bound['frames']} (trim it or lower its frame rate)")
                frames.append(_downscale(frame.to_ndarray(format="rgb24"), int(bound["side"])))
    except (av.FFmpegError, OSError) as err:
        raise UploadError(f"{path.name}: not a readable video ({type(err).__name__})") from None
    if len(frames) < 2:
        raise UploadError(f"{path.name}: {len(frames)} frame(s); a clip needs at least 2")
    if len(frames) / fps > bound["seconds"]:
        raise UploadError(f"{path.name}: {len(frames) / fps:.1f} s long; the limit is {bound['seconds']:g} s (trim it)")
    return Upload(frames, fps)


def _downscale(frame: np.ndarray, side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return frame
    return np.asarray(Image.fromarray(frame).resize((max(2, round(w * scale)), max(2, round(h * scale))),
                                                    Image.BILINEAR))


def get_video(ref: str) -> models.Sam2Handle:
    """A loaded SAM2VideoPredictor for `ref` (sam2-video or sam2 model, or the base), cached with the app's models."""
    from trainer.video.model import VideoSpec, build_predictor, load_folder

    ref = (ref or models.BASE_REF).strip()
    key = (KIND, ref)
    with models._load_lock:
        handle = models._models.get(key)
        if handle is None:
            if ref == models.BASE_REF:
                base, spec, note = models._load_base(torch.device("cpu"))  # the image model of the base weights
                predictor = build_predictor(VideoSpec(spec.size, spec.image_size), None, models.device())
                predictor.load_state_dict(base.state_dict())
            else:
                from demo.access import model_folder

                predictor, spec = load_folder(model_folder(ref, None), models.device())
                note = f"{ref} ({spec.kind}, sam2.1 {spec.size}, image size {spec.image_size})"
            handle = models.Sam2Handle(ref, predictor.eval(), spec, note)
            models._models.put(key, handle)
    return handle


def parse_prompts(prompts_json: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """{"points": [[x, y, label], ...], "box": [x0, y0, x1, y1]} -> (points, labels, box)."""
    try:
        data = json.loads(prompts_json or "{}")
        points = [tuple(map(float, p)) for p in data.get("points") or []]
        box = data.get("box")
    except (ValueError, TypeError, AttributeError):
        raise ValueError('prompts: expected JSON like {"points": [[x, y, 1]], "box": [x0, y0, x1, y1]}') from None
    if not points and not box:
        raise ValueError("click the object (or draw a box) on a frame first")
    coords = np.array([p[:2] for p in points], np.float32) if points else None
    labels = np.array([int(p[2]) for p in points], np.int32) if points else None
    return coords, labels, np.array(box, np.float32) if box else None


def paint(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = frame.astype(np.float32)
    out[mask] = 0.45 * out[mask] + 0.55 * np.array([30, 144, 255], np.float32)
    return out.astype(np.uint8)


def track(upload: Upload, handle: models.Sam2Handle, frame_idx: int, prompts_json: str, precision: str,
          progress: Any = None) -> tuple[list[np.ndarray], float]:
    """Masks (H x W bool per frame) of the prompted object through the whole clip, and the frames/s."""
    from trainer.video.evaluate import quiet_bars, write_frames

    points, labels, box = parse_prompts(prompts_json)
    n = len(upload.frames)
    if not 0 <= frame_idx < n:
        raise ValueError(f"frame {frame_idx} is outside the clip (0..{n - 1})")
    masks = [np.zeros(upload.frames[0].shape[:2], bool) for _ in range(n)]
    predictor = handle.model  # the SAM2VideoPredictor itself
    with handle.lock, tempfile.TemporaryDirectory(prefix="segkit-video-") as tmp, quiet_bars(), \
            torch.inference_mode(), models.resolve_precision(precision).autocast():
        state = predictor.init_state(str(write_frames(upload.frames, tmp)))
        predictor.add_new_points_or_box(state, frame_idx=frame_idx, obj_id=1, points=points, labels=labels, box=box)
        start, done = time.perf_counter(), 0
        for reverse in (False, True):
            if reverse and frame_idx == 0:
                break
            for t, _, logits in predictor.propagate_in_video(state, start_frame_idx=frame_idx, reverse=reverse):
                masks[t] = (logits[0, 0] > 0).float().cpu().numpy().astype(bool)
                done += 1
                if progress is not None:
                    progress((min(done, n), n), desc="propagating", unit="frames")
        fps = done / max(time.perf_counter() - start, 1e-9)
    return masks, fps


@user_errors
def load_clip(path: str | None) -> tuple[np.ndarray, dict, str, str]:
    """(first frame, frame slider, cleared prompts, "T frames, W x H, fps")."""
    upload = read_clip(path)
    h, w = upload.frames[0].shape[:2]
    return (upload.frames[0], gr.Slider(minimum=0, maximum=len(upload.frames) - 1, value=0, step=1),
            json.dumps({"points": []}),
            f"{len(upload.frames)} frames, {w} x {h}, {upload.fps:.1f} frames/s: click the object on any frame")


@user_errors
def show_frame(path: str | None, frame_idx: float, prompts_json: str) -> np.ndarray:
    upload = read_clip(path)
    frame = upload.frames[min(int(frame_idx), len(upload.frames) - 1)].copy()
    data = json.loads(prompts_json or "{}")
    for x, y, label in data.get("points") or []:
        yy, xx = int(y), int(x)
        frame[max(0, yy - 3):yy + 4, max(0, xx - 3):xx + 4] = (0, 220, 0) if label else (220, 0, 0)
    if data.get("box"):
        x0, y0, x1, y1 = map(int, data["box"])
        frame[y0:y1 + 1, [x0, x1]] = (255, 200, 0)
        frame[[y0, y1], x0:x1 + 1] = (255, 200, 0)
    return frame


def click(prompts_json: str, mode: str, evt: gr.SelectData) -> str:
    """A click on the frame: a positive / negative point, or a box corner (two clicks make the box)."""
    data = json.loads(prompts_json or "{}")
    x, y = evt.index
    if mode == "box (2 clicks)":
        corner = data.pop("corner", None)
        if corner is None:
            data["corner"] = [x, y]
        else:
            data["box"] = [min(x, corner[0]), min(y, corner[1]), max(x, corner[0]), max(y, corner[1])]
    else:
        data.setdefault("points", []).append([x, y, 1 if mode.startswith("positive") else 0])
    return json.dumps(data)


@user_errors
def propagate(path: str | None, model_ref: str, frame_idx: float, prompts_json: str, precision: str,
              progress: gr.Progress = gr.Progress()) -> tuple[str, str, str]:
    """(masked clip mp4 to play, the same file to download, "T frames | X frames/s | model")."""
    from trainer.data.clips import write_video

    upload = read_clip(path)
    handle = get_video(model_ref)
    masks, fps = track(upload, handle, int(frame_idx), prompts_json, precision, progress)
    out = Path(tempfile.mkdtemp(prefix="segkit-tracked-")) / "tracked.mp4"
    write_video(out, [paint(f, m) for f, m in zip(upload.frames, masks)], upload.fps)
    h, w = upload.frames[0].shape[:2]
    info = (f"{len(masks)} frames ({w} x {h}) tracked from frame {int(frame_idx)} | {fps:.1f} frames/s | "
            f"object on {sum(bool(m.any()) for m in masks)} frames | {handle.note} | {precision}")
    return str(out), str(out), info


def model_choices() -> list[str]:
    return [*models.local_models(KIND), *models.local_models("sam2"), models.BASE_REF]


def build(precision: gr.Radio) -> None:
    choices = model_choices()
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(choices, value=choices[0], label="Video model", allow_custom_value=True,
                                info="sam2-video models fine-tuned here, SAM2 image models, or the base")
            upload = gr.File(label="Clip (mp4, webm, gif; short)", file_types=list(VIDEO_TYPES), type="filepath",
                             height=120, elem_id="video-upload")
            frame = gr.Slider(0, 1, value=0, step=1, label="Frame to prompt on", elem_id="video-frame")
            mode = gr.Radio(["positive click", "negative click", "box (2 clicks)"], value="positive click",
                            label="Click adds", elem_id="video-mode")
            prompts = gr.Textbox(value=json.dumps({"points": []}), label="Prompts (JSON, frame pixels)",
                                 elem_id="video-prompts")
            with gr.Row():
                run = gr.Button("Track through the clip", variant="primary", elem_id="video-run")
                clear = gr.Button("Clear prompts", size="sm")
            info = gr.Textbox(label="Result", interactive=False, elem_id="video-info")
        with gr.Column(scale=2):
            canvas = gr.Image(label="Click the object", interactive=False, format="jpeg", elem_id="video-canvas")
            played = gr.Video(label="Tracked clip", interactive=False, elem_id="video-out")
            download = gr.File(label="Download the masked clip (mp4)", interactive=False, elem_id="video-download")
    upload.change(load_clip, [upload], [canvas, frame, prompts, info], api_name="video_load")
    frame.release(show_frame, [upload, frame, prompts], [canvas], api_visibility="private")
    canvas.select(click, [prompts, mode], [prompts], api_visibility="private") \
        .then(show_frame, [upload, frame, prompts], [canvas], api_visibility="private")
    clear.click(lambda: json.dumps({"points": []}), None, [prompts], api_visibility="private") \
        .then(show_frame, [upload, frame, prompts], [canvas], api_visibility="private")
    run.click(propagate, [upload, model, frame, prompts, precision], [played, download, info], api_name="video_track")
