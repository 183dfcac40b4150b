"""The Space's Video tab through gradio_client: a real (random-init) SAM2 video predictor on CPU tracks a clicked
or boxed object through an uploaded clip; bad uploads are one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from demo.testing import running_app
    from test_video_data import frame_image

    from trainer.data.clips import write_video

    root = tmp_path_factory.mktemp("videoapp")
    clip = write_video(root / "clip.mp4", [frame_image(t, 96, 128) for t in range(6)], fps=6)
    with running_app(root, with_d2=False, with_semantic=False, image_size=128) as served:
        video_repo = served["hub"] / "me" / "video-ft"  # a sam2-video model: the image repo's weights, its kind
        shutil.copytree(served["hub"] / "me" / "sam2-ft", video_repo)
        spec = yaml.safe_load((video_repo / "model_config.yaml").read_text())
        (video_repo / "model_config.yaml").write_text(yaml.safe_dump({**spec, "kind": "sam2-video"}))
        served["client"] = Client(served["url"], verbose=False)
        served["clip"] = str(clip)
        yield served


def test_click_on_a_later_frame_tracks_through_the_whole_clip(app):
    from trainer.data.clips import read_video_frames

    client = app["client"]
    first, slider, prompts, info = client.predict(handle_file(app["clip"]), api_name="/video_load")
    assert info.startswith("6 frames, 128 x 96") and json.loads(prompts) == {"points": []}
    played, download, info = client.predict(handle_file(app["clip"]), "me/video-ft", 3,
                                            json.dumps({"points": [[40, 16, 1]]}), "fp32", api_name="/video_track")
    assert "6 frames (128 x 96) tracked from frame 3" in info and "frames/s" in info and "sam2-video" in info
    frames = read_video_frames(download if isinstance(download, str) else download["path"])
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)  # backwards and forwards from frame 3


def test_box_with_an_image_model_and_bad_inputs(app, tmp_path):
    client = app["client"]
    _, _, info = client.predict(handle_file(app["clip"]), "me/sam2-ft", 0, json.dumps({"box": [4, 10, 30, 22]}),
                                "fp32", api_name="/video_track")
    assert "tracked from frame 0" in info and "(sam2, sam2.1 tiny" in info
    with pytest.raises(AppError, match="click the object"):
        client.predict(handle_file(app["clip"]), "me/video-ft", 0, json.dumps({"points": []}), "fp32",
                       api_name="/video_track")
    with pytest.raises(AppError, match="(frame 9 is outside the clip|Value 9 is greater than maximum value 5)"):
        client.predict(handle_file(app["clip"]), "me/video-ft", 9, json.dumps({"points": [[5, 5, 1]]}), "fp32",
                       api_name="/video_track")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 10)
    with pytest.raises(AppError, match="junk.mp4: not a readable video"):
        client.predict(handle_file(str(junk)), api_name="/video_load")


def test_upload_limits_are_clear(tmp_path, monkeypatch):
    from demo.images import UploadError
    from demo.video_tab import read_clip
    from test_video_data import frame_image

    from trainer.data.clips import write_video

    clip = write_video(tmp_path / "long.mp4", [frame_image(t % 4) for t in range(12)], fps=2)  # 6 s
    monkeypatch.setenv("SEGKIT_VIDEO_MAX_FRAMES", "10")
    with pytest.raises(UploadError, match="more than 10 frames; the limit is 10"):
        read_clip(clip)
    monkeypatch.setenv("SEGKIT_VIDEO_MAX_FRAMES", "100")
    monkeypatch.setenv("SEGKIT_VIDEO_MAX_SECONDS", "5")
    with pytest.raises(UploadError, match="6.0 s long; the limit is 5 s"):
        read_clip(clip)
    monkeypatch.setenv("SEGKIT_VIDEO_MAX_SECONDS", "20")
    monkeypatch.setenv("SEGKIT_VIDEO_MAX_SIDE", "32")
    upload = read_clip(clip)
    assert len(upload.frames) == 12 and max(upload.frames[0].shape[:2]) == 32 and np.isclose(upload.fps, 2)
    with pytest.raises(UploadError, match="not a video file"):
        read_clip(tmp_path / "x.png")
