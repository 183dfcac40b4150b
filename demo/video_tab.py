"""Video tab: upload a short clip, click or box an object on any frame, and sam2's SAM2VideoPredictor (of the picked
model: a sam2-video model fine-tuned here, a SAM2 image model, or the base) tracks it through the clip, forwards and
backwards from that frame; the masked clip plays and downloads as an mp4, with the frames/s of the propagation.

Uploads are bounded before anything heavy runs: file size, container (mp4/mov, matroska/webm or gif demuxers chosen
from the name, never probed from the content; the file protocol only), frame size before decoding, duration, frame
count; frames are downscaled so the longest side is <= SEGKIT_VIDEO_MAX_SIDE, and a decoded clip is kept for the
slider and clicks that follow. Prompts go through the Prompt tab's one strict parser (demo/prompts.py).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import gradio as gr
import numpy as np
import torch
from PIL import Image

from demo import access, models, prompts as P, settings
from demo.errors import user_errors
from demo.images import UploadError
from trainer.data.clips import write_video
from trainer.video.evaluate import quiet_bars, write_frames
from trainer.video.model import VideoSpec, build_predictor, load_folder

DEMUXERS = {".mp4": "mp4", ".mov": "mov", ".webm": "matroska", ".mkv": "matroska", ".gif": "gif"}
VIDEO_TYPES = tuple(DEMUXERS)
KIND = "sam2-video"
TRACKED_KEEP = 8  # tracked clips kept on disk for Gradio to serve; older ones are deleted
_clips = models.LRU(2)  # decoded uploads: the slider and clicks redraw frames without decoding again


def limits() -> dict[str, float]:
    bound = settings.get()
    return {"frames": bound.video_max_frames, "seconds": bound.video_max_seconds, "side": bound.video_max_side,
            "pixels": bound.video_max_source_pixels}


@dataclass
class Upload:
    frames: list[np.ndarray]  # T x H x W x 3 uint8, downscaled
    fps: float


def read_clip(path: str | Path | None) -> Upload:
    """The upload's frames within the limits (decoded once per file and limits), or an UploadError that says which
    limit and how to fix it."""
    if not path:
        raise UploadError("upload a clip first (mp4, webm or gif)")
    path = Path(path)
    if path.suffix.lower() not in VIDEO_TYPES:
        raise UploadError(f"{path.name}: not a video file; upload an mp4, webm or gif")
    if not path.is_file():
        raise UploadError(f"{path.name}: file not found")
    stat = path.stat()
    max_bytes = settings.get().max_file_bytes
    if stat.st_size > max_bytes:
        raise UploadError(f"{path.name}: {stat.st_size / 2**20:.0f} MB; the limit is {max_bytes // 2**20} MB")
    key = (str(path), stat.st_mtime_ns, stat.st_size, tuple(limits().items()))
    upload = _clips.get(key)
    if upload is None:
        upload = _decode(path, limits())
        _clips.put(key, upload)
    return upload


def _decode(path: Path, bound: dict[str, float]) -> Upload:
    frames, fps = [], 10.0
    try:  # the demuxer from the name and the file protocol only: a playlist-type file cannot open other files/URLs
        with av.open(str(path), format=DEMUXERS[path.suffix.lower()], options={"protocol_whitelist": "file"}) \
                as container:
            if not container.streams.video:
                raise UploadError(f"{path.name}: no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > bound["pixels"]:
                raise UploadError(f"{path.name}: {width}x{height} frames are too large (limit "
                                  f"{bound['pixels'] / 1e6:.1f} MP a frame)")
            fps = float(stream.average_rate or stream.guessed_rate or 10) or 10.0
            seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            if seconds > bound["seconds"]:
                raise UploadError(f"{path.name}: {seconds:.1f} s long; the limit is {bound['seconds']:g} s (trim it)")
            for frame in container.decode(stream):
                if frame.width * frame.height > bound["pixels"]:  # a stream may change size mid-way
                    raise UploadError(f"{path.name}: a {frame.width}x{frame.height} frame is too large")
                if len(frames) >= bound["frames"]:
                    raise UploadError(f"{path.name}: more than {bound['frames']} frames; the limit is "
                                      f"{bound['frames']} (trim it or lower its frame rate)")
                frames.append(_downscale(frame.to_ndarray(format="rgb24"), int(bound["side"])))
    except (av.FFmpegError, OSError, ValueError) as err:
        if isinstance(err, UploadError):
            raise
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
    ref = (ref or models.BASE_REF).strip()

    def load() -> models.Sam2Handle:
        if ref == models.BASE_REF:
            base, spec, note = models._load_base(torch.device("cpu"))  # the image model of the base weights
            predictor = build_predictor(VideoSpec(spec.size, spec.image_size), None, models.device())
            predictor.load_state_dict(base.state_dict())
        else:
            predictor, spec = load_folder(access.model_folder(ref, None), models.device())
            note = f"{ref} ({spec.kind}, sam2.1 {spec.size}, image size {spec.image_size})"
        return models.Sam2Handle(ref, predictor.eval(), spec, note)

    return models.cached_model((KIND, ref), load)


def parse_prompts(prompts_json: str, shape: tuple[int, ...]) -> tuple[np.ndarray | None, ...]:
    """The prompts (demo/prompts.py's strict parser, inside a frame of `shape`) -> (points, labels, box)."""
    prompts = P.parse(prompts_json, shape)
    if prompts.empty:
        raise ValueError("click the object (or draw a box) on a frame first")
    return prompts.arrays()


def paint(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = frame.astype(np.float32)
    out[mask] = 0.45 * out[mask] + 0.55 * np.array([30, 144, 255], np.float32)
    return out.astype(np.uint8)


def track(upload: Upload, handle: models.Sam2Handle, frame_idx: int, prompts_json: str, precision: str,
          progress: Any = None) -> tuple[list[np.ndarray], float]:
    """Masks (H x W bool per frame) of the prompted object through the whole clip, and the frames/s."""
    points, labels, box = parse_prompts(prompts_json, upload.frames[0].shape)
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
    frame = upload.frames[min(max(int(frame_idx), 0), len(upload.frames) - 1)].copy()
    prompts = P.parse(prompts_json, frame.shape)
    for x, y, label in prompts.points:
        yy, xx = int(y), int(x)
        frame[max(0, yy - 3):yy + 4, max(0, xx - 3):xx + 4] = (0, 220, 0) if label else (220, 0, 0)
    if prompts.box:
        x0, y0, x1, y1 = map(int, prompts.box)
        frame[y0:y1 + 1, [x0, min(x1, frame.shape[1] - 1)]] = (255, 200, 0)
        frame[[y0, min(y1, frame.shape[0] - 1)], x0:x1 + 1] = (255, 200, 0)
    return frame


@user_errors
def click(prompts_json: str, mode: str, evt: gr.SelectData) -> str:
    """A click on the frame: a positive / negative point, or a box corner (two clicks make the box)."""
    x, y = evt.index[:2]
    as_prompt_mode = P.MODES[0] if mode.startswith("positive") else P.MODES[1] if mode.startswith("negative") \
        else P.MODES[2]
    return P.add_click(P.parse(prompts_json), float(x), float(y), as_prompt_mode).to_json()


def _tracked_file() -> Path:
    """A new file for a tracked clip, in one folder that keeps only the newest TRACKED_KEEP (Gradio serves its
    own copy of each)."""
    folder = Path(tempfile.gettempdir()) / "segkit-tracked"
    folder.mkdir(exist_ok=True)
    older = sorted(folder.glob("*.mp4"), key=lambda f: f.stat().st_mtime)
    for stale in older[:max(0, len(older) - TRACKED_KEEP + 1)]:
        stale.unlink(missing_ok=True)
    return Path(tempfile.mkstemp(suffix=".mp4", prefix="tracked-", dir=folder)[1])


@user_errors
def propagate(path: str | None, model_ref: str, frame_idx: float, prompts_json: str, precision: str,
              progress: gr.Progress = gr.Progress()) -> tuple[str, str, str]:
    """(masked clip mp4 to play, the same file to download, "T frames | X frames/s | model")."""
    upload = read_clip(path)
    handle = get_video(model_ref)
    masks, fps = track(upload, handle, int(frame_idx), prompts_json, precision, progress)
    out = _tracked_file()
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
    run.click(propagate, [upload, model, frame, prompts, precision], [played, download, info], api_name="video_track",
              **settings.heavy_group())
