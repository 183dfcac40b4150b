"""Clip data for `trainer sam2-video`: both layouts read, bad clips refused with their file named, built-in clips."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.cli import main
from trainer.data.clips import check_clips, load_clips, write_video
from trainer.data.report import DataValidationError


def label_frames(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Object 1: a square moving right; object 2: a square that leaves after frame 1."""
    labels = np.zeros((h, w), np.uint8)
    labels[10:22, 4 + 6 * t:16 + 6 * t] = 1
    if t < 2:
        labels[30:42, 40:52] = 2
    return labels


def frame_image(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    image = np.full((h, w, 3), 30, np.uint8)
    image[label_frames(t, h, w) > 0] = 200
    return image


def save_label(path: Path, labels: np.ndarray) -> None:
    png = Image.fromarray(labels, mode="P")
    png.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    path.parent.mkdir(parents=True, exist_ok=True)
    png.save(path)


def davis(root: Path, videos=("a", "b"), frames: int = 4) -> Path:
    for video in videos:
        for t in range(frames):
            (root / "JPEGImages" / video).mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame_image(t)).save(root / "JPEGImages" / video / f"{t:05d}.jpg", quality=95)
            save_label(root / "Annotations" / video / f"{t:05d}.png", label_frames(t))
    return root


def test_davis_layout_reads_objects_by_palette_id(tmp_path):
    root = davis(tmp_path / "d")
    (root / "heldout.txt").write_text("b\n")
    data = load_clips(root)
    assert len(data) == 2 and data.format == "davis"
    clip = data[0]
    assert clip.num_frames == 4 and clip.object_ids == [1, 2] and clip.masks.shape == (4, 2, 48, 64)
    assert clip.masks[0, 1].sum() == 144 and not clip.masks[3, 1].any()  # object 2 left the frame
    train, val = data.split(0.5, 0)
    assert [Path(s).name for s in val.sources] == ["b"] and len(train) == 1


def test_davis_resolution_level_is_found(tmp_path):
    root = tmp_path / "DAVIS"
    davis(root / "tmp")
    (root / "JPEGImages").mkdir(parents=True)
    (root / "tmp" / "JPEGImages").rename(root / "JPEGImages" / "480p")
    (root / "tmp" / "Annotations").rename(root / "Annotations")
    (root / "Annotations").rename(root / "ann")
    (root / "Annotations").mkdir()
    (root / "ann").rename(root / "Annotations" / "480p")
    assert [Path(s).name for s in load_clips(root).sources] == ["a", "b"]


def test_video_file_layout_decodes_with_av(tmp_path):
    root = tmp_path / "v"
    (root / "videos").mkdir(parents=True)
    write_video(root / "videos" / "clip1.mp4", [frame_image(t) for t in range(5)], fps=5)
    for t in (0, 2, 4):  # annotated every other frame: frame numbers in the names
        save_label(root / "Annotations" / "clip1" / f"{t:05d}.png", label_frames(t))
    clip = load_clips(root)[0]
    assert clip.num_frames == 3 and clip.frame_names == ["00000", "00002", "00004"]
    assert clip.frames[0].shape == (48, 64, 3) and clip.object_ids == [1, 2]
    assert clip.frames[1][14, 22, 0] > 150 > clip.frames[0][14, 22, 0]  # frame 2 decoded: the square moved 12 px


def test_bad_clips_are_named_with_their_files(tmp_path, capsys):
    root = davis(tmp_path / "bad", videos=("ok", "size", "nofr", "broken", "newid"))
    Image.fromarray(frame_image(0)[:40]).save(root / "JPEGImages" / "size" / "00001.jpg")  # smaller frame
    (root / "JPEGImages" / "nofr" / "00002.jpg").unlink()  # an annotation whose frame is missing
    (root / "JPEGImages" / "broken" / "00003.jpg").write_bytes(b"\xff\xd8\xff garbage")  # unreadable frame
    save_label(root / "Annotations" / "newid" / "00002.png", np.full((48, 64), 3, np.uint8))  # id 3 not in frame 0
    _, report = check_clips(root)
    lines = sorted(str(p) for p in report.problems)
    assert len(lines) == 4 and len(report.good) == 1
    assert any("size/00001.png: annotation is 64x48 but its frame is 64x40" in s for s in lines)
    assert any("nofr/00002.png: annotation without a frame" in s for s in lines)
    assert any("broken/00003.jpg: unreadable image" in s for s in lines)
    assert any("newid/00002.png: object id 3 appears without a mask in the first annotated frame" in s for s in lines)

    assert main(["validate-data", str(root)]) == 1
    out = capsys.readouterr().out
    assert "4 problems in 4 files" in out and "Traceback" not in out
    with pytest.raises(DataValidationError, match="--skip-bad"):
        load_clips(root)
    with pytest.warns(UserWarning, match="skipped: .*nofr/00002.png"):
        assert [Path(s).name for s in load_clips(root, skip_bad=True).sources] == ["ok"]


def test_builtin_clips_have_a_heldout_part_and_validate(capsys):
    data = load_clips("builtin")
    train, val = data.split(0.2, 0)
    assert len(train) == 16 and len(val) == 6
    assert all("heldout" in s for s in val.sources) and not any("heldout" in s for s in train.sources)
    clip = train[0]
    assert clip.num_frames == 12 and clip.frames[0].shape == (120, 160, 3) and clip.masks.shape[1] >= 2
    visible = clip.masks.reshape(*clip.masks.shape[:2], -1).any(-1)
    assert any(not visible[:, n].all() for n in range(clip.masks.shape[1]) for clip in [train[i] for i in range(4)])
    assert main(["validate-data", "builtin-clips"]) == 0
    assert "22 clips" in capsys.readouterr().out


def test_builtin_clips_move_slowly_enough_to_tell_look_alike_coins_apart():
    """A coin overlaps where it was a frame ago (DAVIS-like motion), so tracking can be learnt from these clips;
    version 2's swinging camera moved half a coin a frame (median IoU 0.43), see trainer/data/builtin_clips.py."""
    from trainer.video.jf import region_j

    _, val = load_clips("builtin").split(0.2, 0)
    overlaps = [region_j(m[t - 1, n], m[t, n]) for m in (val[i].masks for i in range(len(val)))
                for t in range(1, len(m)) for n in range(m.shape[1]) if m[t - 1, n].any() and m[t, n].any()]
    assert np.median(overlaps) > 0.65 and np.mean(np.array(overlaps) < 0.3) < 0.05
