"""Issue 27's findings that are about the server's own parts rather than one request: the rules' default, the click's
fast path, model locks, the training child, disk and logs. (The attacks through a running app: test_app_security.py.)
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from demo import access, models, sessions, settings, train_job, video_tab
from demo.images import UploadError


@pytest.mark.parametrize("env, public", [
    ({}, True),  # a plain `docker run -p 7860` on a server: public
    ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ({"GRADIO_SERVER_NAME": "127.0.0.1"}, False),  # only this machine can reach it
    ({"SEGKIT_OPEN": "1"}, False),
    ({"SEGKIT_OPEN": "1", "SPACE_ID": "me/space"}, True),  # a Space is public whatever it is told
    ({"GRADIO_SERVER_NAME": "127.0.0.1", "SEGKIT_PUBLIC": "1"}, True),
])
def test_rules_fail_closed(env, public):
    assert settings.Settings.from_env(env).public is public


def test_a_bad_setting_names_its_variable():
    with pytest.raises(ValueError, match="SEGKIT_MAX_POINTS='many': expected int"):
        settings.Settings.from_env({"SEGKIT_MAX_POINTS": "many"})


def test_settings_are_read_again_only_when_they_change(monkeypatch):
    first = settings.get()
    assert settings.get() is first
    monkeypatch.setenv("SEGKIT_MAX_POINTS", str(first.max_points + 1))
    assert settings.get().max_points == first.max_points + 1


@pytest.fixture
def offline_base(monkeypatch, tmp_path):
    for name, value in {"SEGKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "SEGKIT_IMAGE_SIZE": "128",
                        "SEGKIT_SESSION_DIR": str(tmp_path / "sessions")}.items():
        monkeypatch.setenv(name, value)
    models.clear_caches()
    yield
    models.clear_caches()


def test_a_click_skips_the_queue_only_when_its_embedding_is_cached(offline_base, tmp_path):
    """Finding 5: the unqueued click may not load a model, decode an upload or embed it."""
    from demo import prompt_tab
    from demo.testing import synthetic_image

    path = synthetic_image(tmp_path / "a.png")
    assert not prompt_tab.ready(path, models.BASE_REF, "fp32")  # no model loaded yet
    models.get_sam2(models.BASE_REF)
    assert not prompt_tab.ready(path, models.BASE_REF, "fp32")  # the upload is not decoded nor embedded
    prompt_tab.embed(path, models.BASE_REF, "fp32")
    assert prompt_tab.ready(path, models.BASE_REF, "fp32")
    assert not prompt_tab.ready(path, models.BASE_REF, "bf16")  # another precision is another embedding


def test_the_click_and_heavy_endpoints_have_their_own_groups(offline_base, monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_LOCAL_HUB", str(tmp_path / "hub"))
    from demo.ui import build_app

    fns = build_app().fns.values()
    named = {fn.api_name: fn for fn in fns if fn.api_name}
    by_name = {fn.name: fn for fn in fns}
    assert by_name["click_and_segment"].queue is False
    assert by_name["segment_pending"].concurrency_id == named["segment"].concurrency_id == "click"
    for heavy in ("automatic", "compare", "video_track", "detectron2", "semantic"):
        assert named[heavy].concurrency_id == "heavy" and named[heavy].concurrency_limit == 1, heavy


def test_a_slow_load_holds_only_its_own_model_and_the_base_stays(offline_base):
    """Finding 8: one lock per model (a download never blocks the others) and the base model pinned."""
    base = models.get_sam2(models.BASE_REF)
    started, release = threading.Event(), threading.Event()

    def slow_load():
        started.set()
        release.wait(10)
        return "slow"

    loader = threading.Thread(target=models.cached_model, args=(("sam2", "slow/model"), slow_load))
    loader.start()
    started.wait(10)
    begin = time.perf_counter()
    assert models.get_sam2(models.BASE_REF) is base
    other = models.cached_model(("sam2", "other/model"), lambda: "other")
    assert other == "other" and time.perf_counter() - begin < 1  # not behind the slow load
    release.set()
    loader.join()
    for i in range(settings.get().model_cache + 2):  # visitors' picks fill the cache
        models.cached_model(("sam2", f"pick/{i}"), lambda: "a model")
    assert models.loaded_sam2(models.BASE_REF) is base


def test_the_training_child_has_no_secrets_bounded_memory_and_dies_with_its_group(monkeypatch):
    """Finding 7."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "secret")
    env = train_job.child_env()
    assert "HF_TOKEN" not in env and "OAUTH_CLIENT_SECRET" not in env and env["OMP_NUM_THREADS"]

    monkeypatch.setenv("SEGKIT_TRAIN_MAX_MB", "400")
    greedy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1); x = bytearray(800 * 2**20)"],
                              stderr=subprocess.PIPE, text=True)
    train_job._limit(greedy.pid)
    assert greedy.wait(30) != 0 and "MemoryError" in greedy.stderr.read()

    group = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)
    time.sleep(0.3)
    grandchild = int(subprocess.run(["pgrep", "-P", str(group.pid)], capture_output=True, text=True).stdout.split()[0])
    train_job._kill(group)
    time.sleep(0.3)
    assert not _running(grandchild)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sessions_made_by_api_calls_leave_no_folders(monkeypatch, tmp_path):
    """Finding 9: a folder is made by the first write, not by every API client's first call."""
    monkeypatch.setenv("SEGKIT_SESSION_DIR", str(tmp_path))
    for _ in range(5):
        sessions.folder(None)
    assert list(tmp_path.iterdir()) == []


def test_tracked_clips_are_bounded_on_disk():
    """Finding 9: every tracked clip made a temp folder that was never deleted."""
    files = [video_tab._tracked_file() for _ in range(video_tab.TRACKED_KEEP + 5)]
    assert len(list(files[-1].parent.glob("*.mp4"))) <= video_tab.TRACKED_KEEP and files[-1].exists()


def test_a_video_frame_size_is_checked_before_decoding(monkeypatch, tmp_path):
    """Finding 6: frames were decoded at full size before any size check."""
    from trainer.data.clips import write_video

    clip = write_video(tmp_path / "c.mp4", [np.zeros((96, 128, 3), np.uint8)] * 3, fps=3)
    monkeypatch.setenv("SEGKIT_VIDEO_MAX_SOURCE_PIXELS", str(96 * 128 - 1))
    with pytest.raises(UploadError, match="128x96 frames are too large"):
        video_tab.read_clip(clip)


def test_a_refused_session_ref_is_not_logged_in_full(monkeypatch, tmp_path, caplog):
    """Low: refused refs were logged whole, session tokens included."""
    monkeypatch.setenv("SEGKIT_SESSION_DIR", str(tmp_path))
    token = sessions.folder(None).name
    with caplog.at_level(logging.INFO, logger="segkit.demo"), pytest.raises(Exception, match="not a model"):
        access.model_folder(f"session:{token}/../../etc", "sam2")
    assert "refused model ref" in caplog.text and token not in caplog.text


def test_one_training_job_per_session(monkeypatch):
    """Finding 8: jobs per session capped, even where the Space allows several at once."""
    monkeypatch.setenv("SEGKIT_TRAIN_JOBS", "3")
    train_job._acquire("alice")
    try:
        with pytest.raises(train_job.Busy, match="your session is already training"):
            train_job._acquire("alice")
        train_job._acquire("bob")
        train_job._release("bob")
    finally:
        train_job._release("alice")


def test_a_click_that_is_not_ready_hands_over_to_the_queued_step(offline_base, tmp_path):
    """Finding 5, the browser's path: the unqueued half answers only the prompts; the queued half segments."""
    import gradio as gr

    from demo import prompt_tab
    from demo.testing import synthetic_image

    path = synthetic_image(tmp_path / "b.png")
    event = gr.SelectData(None, {"index": [40, 50], "value": None})
    prompts, history, *outputs, pending = prompt_tab.click_and_segment("", [], "positive point", path,
                                                                       models.BASE_REF, "fp32", False, event)
    assert pending is True and '"points": [[40.0, 50.0, 1]]' in prompts and history == [""]
    overlay, mask, _, info, pending = prompt_tab.segment_pending(True, path, prompts, models.BASE_REF, "fp32", False)
    assert pending is False and info.startswith("score") and mask is not None
    prompts, history, overlay, mask, _, info, pending = prompt_tab.click_and_segment(
        prompts, history, "negative point", path, models.BASE_REF, "fp32", False, event)
    assert pending is False and "embed cached" in info  # now ready: answered without the queue


def test_every_spec_loader_bounds_what_a_config_asks_for():
    """Finding 2, the trainer's side: its own bounds hold wherever a model folder is loaded, not only in the Space."""
    from trainer.checkpoint import CheckpointError
    from trainer.model_limits import check_d2_cfg
    from trainer.sam2_model.model import Sam2Spec
    from trainer.semantic.model import SemanticSpec
    from trainer.video.model import VideoSpec

    for spec in (Sam2Spec, VideoSpec):
        assert spec.from_dict({"size": "tiny", "image_size": 512}).image_size == 512
        with pytest.raises(CheckpointError, match="image_size 8192 is outside 32..2048"):
            spec.from_dict({"size": "tiny", "image_size": 8192})
        with pytest.raises(CheckpointError, match="image_size must be a whole number"):
            spec.from_dict({"size": "tiny", "image_size": "1e9"})
    semantic = {"kind": "semantic", "size": "tiny", "image_size": 256, "class_names": ["bg", "a"]}
    assert SemanticSpec.from_dict(semantic).decoder_channels == [128, 64, 32]
    with pytest.raises(CheckpointError, match="decoder_channels"):
        SemanticSpec.from_dict({**semantic, "decoder_channels": [100_000]})
    check_d2_cfg({"INPUT": {"MIN_SIZE_TEST": 800, "MAX_SIZE_TEST": 1333}}, "cfg")
    with pytest.raises(CheckpointError, match="MODEL.FPN.OUT_CHANNELS = 65536"):
        check_d2_cfg({"MODEL": {"FPN": {"OUT_CHANNELS": 65536}}}, "cfg")
    with pytest.raises(CheckpointError, match="MIN_SIZE_TEST = 8000"):
        check_d2_cfg({"INPUT": {"MIN_SIZE_TEST": [640, 8000]}}, "cfg")
