"""Video clips with per-frame object masks: the data of `python -m trainer sam2-video`.

Two layouts (auto-detected):

    davis    JPEGImages/<video>/<frame>.jpg + Annotations/<video>/<frame>.png   (DAVIS, MOSE, YouTube-VOS; an
             extra resolution level such as JPEGImages/480p/ is found too)
    videos   videos/<video>.mp4|.webm|.gif|.mkv|.avi + Annotations/<video>/<frame index>.png  (decoded with PyAV)

Annotations are palette (or grayscale) PNGs whose values are object ids (0 = background). Only annotated frames
are used; an object is one id of the first annotated frame, followed through the later ones. A `heldout.txt`
(or `val.txt`) beside the two folders lists the videos held out for validation.

Every clip is a `SampleRef` in the data layer's `SegmentationDataset` (same split, subset and description), whose
`load()` returns a `Clip`. `check_clips` decodes everything once and names each problem's file, as
`trainer/data/validate.py` does for images.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from trainer.data.normalize import to_uint8_rgb
from trainer.data.readers.images import is_image_file, read_image, read_mask
from trainer.data.report import ValidationReport
from trainer.data.sample import DataError, SampleRef, SegmentationDataset

CLIP_FORMATS = ("davis", "videos")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".gif", ".mkv", ".avi", ".mov")
HELDOUT_LISTS = ("heldout.txt", "val.txt")
BUILTIN = "builtin-clips"
CLASS_NAMES = ["object"]


@dataclass
class Clip:
    """frames: T images H x W x 3 uint8; masks: T x N x H x W bool (object n = id object_ids[n] in every frame)."""

    frames: list[np.ndarray]
    masks: np.ndarray
    object_ids: list[int]
    source: str  # the video's folder or file
    frame_names: list[str] = field(default_factory=list)
    split: str = ""
    normalization: str = "none"

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def label_maps(self) -> np.ndarray:
        """T x H x W int: 0 background, n + 1 object n (later objects over earlier ones)."""
        labels = np.zeros(self.masks.shape[:1] + self.masks.shape[2:], np.int32)
        for n in range(self.masks.shape[1]):
            labels[self.masks[:, n]] = n + 1
        return labels


@dataclass
class ClipEntry:
    """One video as listed (nothing decoded): its annotated frames and how to read them."""

    source: str
    annotations: list[Path]  # sorted by frame
    read_frames: Callable[[list[int]], list[np.ndarray]]  # frame numbers -> raw arrays (DataError names the file)
    frame_numbers: list[int]
    frame_files: list[Path | None]  # davis: each annotation's frame file (None: missing); videos: []
    split: str = ""


# Listing ----------------------------------------------------------------------------------------------------------
def builtin_clips_path() -> Path:
    # lazy: builtin_clips imports this module
    from trainer.data.builtin_clips import builtin_clips_path as path

    return path()


def detect_clip_format(path: str | Path) -> str | None:
    path = Path(path)
    if not path.is_dir() or not (path / "Annotations").is_dir():
        return None
    if (path / "JPEGImages").is_dir():
        return "davis"
    if (path / "videos").is_dir():
        return "videos"
    return None


def _level(folder: Path, other: Path) -> tuple[Path, Path]:
    """DAVIS keeps a resolution level (JPEGImages/480p/<video>): descend while both sides have the same one."""
    while True:
        subs = [p for p in folder.iterdir() if p.is_dir()]
        if len(subs) == 1 and (other / subs[0].name).is_dir() and not any(is_image_file(p) for p in subs[0].iterdir()) \
                and any(q.is_dir() for q in subs[0].iterdir()):
            folder, other = subs[0], other / subs[0].name
            continue
        return folder, other


def _frame_number(path: Path) -> int:
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    if not digits:
        raise DataError(str(path), "annotation name holds no frame number (expected e.g. 00012.png)")
    return int(digits)


def _heldout_names(root: Path) -> set[str]:
    for name in HELDOUT_LISTS:
        if (root / name).is_file():
            return {line.strip() for line in (root / name).read_text().splitlines() if line.strip()}
    return set()


def list_clips(path: str | Path, format: str = "auto") -> tuple[str, list[ClipEntry], list[DataError]]:
    """(format, entries, problems found while listing); a layout that cannot be listed raises DataError."""
    root = Path(path)
    fmt = detect_clip_format(root) if format in ("auto", "", None) else format
    if fmt not in CLIP_FORMATS:
        raise DataError(str(root), "not a clip dataset: expected JPEGImages/<video>/ + Annotations/<video>/ (davis) "
                                   "or videos/<video>.mp4 + Annotations/<video>/ (videos)")
    heldout = _heldout_names(root)
    entries, problems = [], []
    if fmt == "davis":
        frames_root, ann_root = _level(root / "JPEGImages", root / "Annotations")
        for video in sorted(p for p in frames_root.iterdir() if p.is_dir()):
            ann_dir = ann_root / video.name
            if not ann_dir.is_dir():
                problems.append(DataError(str(video), f"no annotation folder {ann_dir}"))
                continue
            entries.append(_davis_entry(video, ann_dir, "heldout" if video.name in heldout else ""))
    else:
        ann_root = root / "Annotations"
        for video in sorted(p for p in (root / "videos").iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS):
            ann_dir = ann_root / video.stem
            if not ann_dir.is_dir():
                problems.append(DataError(str(video), f"no annotation folder {ann_dir}"))
                continue
            anns = sorted((p for p in ann_dir.iterdir() if is_image_file(p)), key=_frame_number)
            numbers = [_frame_number(p) for p in anns]
            entries.append(ClipEntry(str(video), anns, partial(read_video_frames, video), numbers, [],
                                     "heldout" if video.stem in heldout else ""))
    if not entries and not problems:
        raise DataError(str(root), "no videos found")
    return fmt, entries, problems


def _davis_entry(video: Path, ann_dir: Path, split: str) -> ClipEntry:
    frames = {p.stem: p for p in video.iterdir() if is_image_file(p)}
    anns = sorted((p for p in ann_dir.iterdir() if is_image_file(p)), key=lambda p: p.name)
    files = [frames.get(a.stem) for a in anns]
    numbers = list(range(len(anns)))

    def read(indices: list[int]) -> list[np.ndarray]:
        return [read_image(files[i]) for i in indices]
    return ClipEntry(str(video), anns, read, numbers, files, split)


def read_video_frames(path: str | Path, numbers: list[int] | None = None, max_frames: int = 0) -> list[np.ndarray]:
    """Decoded RGB frames of a video file (all, or those with the given frame numbers); DataError names the file."""
    # lazy: PyAV only for video files
    import av

    wanted = None if numbers is None else set(numbers)
    out: dict[int, np.ndarray] = {}
    count = 0
    try:
        with av.open(str(path)) as container:
            for count, frame in enumerate(container.decode(video=0), 1):
                if wanted is None or count - 1 in wanted:
                    out[count - 1] = frame.to_ndarray(format="rgb24")
                if max_frames and len(out) >= max_frames or wanted is not None and len(out) == len(wanted):
                    break
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(str(path), f"unreadable video ({type(err).__name__}: {err})") from None
    if count == 0:
        raise DataError(str(path), "unreadable video: no frames decoded")
    if numbers is None:
        return [out[i] for i in sorted(out)]
    missing = [n for n in numbers if n not in out]
    if missing:
        raise DataError(str(path), f"has {count} frames; the annotation of frame {missing[0]} has no frame")
    return [out[n] for n in numbers]


# Decoding and checking ---------------------------------------------------------------------------------------------
def build_clip(entry: ClipEntry) -> tuple[Clip | None, list[DataError]]:
    """Decode and check one clip: (Clip, []) or (None, every problem found, each naming its file)."""
    problems = []
    if not entry.annotations:
        return None, [DataError(entry.source, "no annotation files")]
    for ann, frame in zip(entry.annotations, entry.frame_files):
        if frame is None:
            problems.append(DataError(str(ann), f"annotation without a frame: no {ann.stem}.* in {entry.source}"))
    if problems:
        return None, problems
    try:
        raw_frames = entry.read_frames(entry.frame_numbers)
    except DataError as err:
        return None, [err]
    frames, normalizations, labels = [], set(), []
    for ann, raw in zip(entry.annotations, raw_frames):
        try:
            frame, norm = to_uint8_rgb(raw, entry.source)
            label = read_mask(ann)
        except DataError as err:
            problems.append(err)
            continue
        if label.ndim == 3:  # an RGB annotation: ids from the first channel
            label = label[..., 0]
        if label.shape != frame.shape[:2]:
            problems.append(DataError(str(ann), f"annotation is {label.shape[1]}x{label.shape[0]} but its frame is "
                                                f"{frame.shape[1]}x{frame.shape[0]}"))
            continue
        frames.append(frame)
        normalizations.add(norm)
        labels.append(label.astype(np.int64))
    if problems:
        return None, problems
    if len({f.shape for f in frames}) > 1:
        return None, [DataError(entry.source, "frames of different sizes in one video")]
    ids = sorted(int(v) for v in np.unique(labels[0]) if v)
    if not ids:
        return None, [DataError(str(entry.annotations[0]), "the first annotated frame has no object")]
    for ann, label in zip(entry.annotations[1:], labels[1:]):
        new = sorted(set(int(v) for v in np.unique(label) if v) - set(ids))
        if new:
            problems.append(DataError(str(ann), f"object id {new[0]} appears without a mask in the first annotated "
                                                f"frame {entry.annotations[0].name}"))
    if problems:
        return None, problems
    masks = np.stack([np.stack([label == i for i in ids]) for label in labels])
    return Clip(frames, masks, ids, entry.source, [a.stem for a in entry.annotations], entry.split,
                "none" if normalizations <= {"none"} else sorted(normalizations - {"none"})[0]), []


def _load(entry: ClipEntry) -> Clip:
    clip, problems = build_clip(entry)
    if clip is None:
        raise problems[0]
    return clip


def clip_length(ref: SampleRef) -> int:
    """Annotated frames of a clip: from its listing when the ref comes from load_clips (nothing decoded)."""
    entry = (getattr(ref.load, "args", None) or [None])[0]
    return len(entry.annotations) if isinstance(entry, ClipEntry) else ref.load().num_frames


def check_clips(path: str | Path, format: str = "auto") -> tuple[list[ClipEntry] | None, ValidationReport]:
    """Decode every clip once; never raises for bad data. report.n_images counts clips, n_instances objects."""
    try:
        fmt, entries, listing = list_clips(path, format)
    except DataError as err:
        return None, ValidationReport(str(path), problems=[err], structural=True)
    report = ValidationReport(str(path), fmt, list(CLASS_NAMES), problems=list(listing), n_images=len(entries))
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        for entry, (clip, problems) in zip(entries, pool.map(build_clip, entries)):
            report.problems.extend(problems)
            if clip is not None:
                report.good.append(entry)  # type: ignore[arg-type]
                report.n_instances += len(clip.object_ids)
                report.normalization = clip.normalization
    return entries, report


def clip_summary(report: ValidationReport) -> str:
    if report.problems:
        return report.summary()
    return f"{report.n_images} clip{'s' * (report.n_images != 1)}, {report.n_instances} objects: OK"


def load_clips(path: str | Path | None, format: str = "auto", skip_bad: bool = False) -> SegmentationDataset:
    """Read and fully check a clip dataset ('builtin': the built-in clips); refs load Clips. Problems raise
    DataValidationError unless `skip_bad` (then bad clips are dropped and listed in `.skipped`)."""
    if path is None or str(path) in ("builtin", "builtin-clips"):
        path, format = builtin_clips_path(), "davis"
    entries, report = check_clips(path, format)
    report.raise_unless_usable(entries is not None, skip_bad, f"no usable clips in {report.root}")
    if report.problems:
        for problem in report.problems:
            warnings.warn(f"skipped: {problem}", stacklevel=2)
    refs = [SampleRef(e.source, partial(_load, e), e.split) for e in report.good]  # type: ignore[attr-defined]
    return SegmentationDataset(list(CLASS_NAMES), refs, report.root, report.format, report.normalization,
                               skipped=list(report.problems))


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Frames (H x W x 3 uint8) as an H.264 mp4 (yuv420p: even sizes, cropped by a pixel if needed), with PyAV."""
    # lazy: PyAV only for video files
    import av

    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
