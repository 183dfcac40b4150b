"""Issue 27's attacks played through gradio_client against one running app with the default (public) rules.

The app runs in a child process (demo.testing.app_process) so its peak memory (VmHWM) is its own. Every attack must
get a clear refusal (not an answer, not an "internal error"), the app's peak memory may grow by at most 1.5 GB over
all of them, and a normal click must still answer afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from demo import finetune_tab  # noqa: E402
from demo.access import REFUSED  # noqa: E402
from demo.testing import app_process, peak_rss_mb  # noqa: E402

BASE = "facebook/sam2.1-hiera-tiny"
MAX_GROWTH_MB = 1536
MANY_POINTS = json.dumps({"points": [[1, 1, 1]] * 1000}, separators=(",", ":"))  # 8 KB, under the text bound
HUGE_PROMPTS = json.dumps({"points": [[10.0, 10.0, 1]] * 50_000})  # the issue's ~800 KB attack


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app bound to every interface (GRADIO_SERVER_NAME=0.0.0.0) with no SEGKIT_PUBLIC / SPACE_ID: the public
    rules must hold by default (finding 10). Its local hub holds models whose configs ask for too much."""
    from trainer.data.clips import write_video

    root = tmp_path_factory.mktemp("attacked")
    env = {"GRADIO_SERVER_NAME": "0.0.0.0", "SEGKIT_SESSION_DIR": str(root / "sessions"), "SEGKIT_PUBLIC": "",
           "SPACE_ID": "", "SEGKIT_OPEN": ""}
    with app_process(root, env, with_d2=True, with_semantic=True) as served:
        hub = Path(served["hub"])
        _copy_with(hub / "me" / "sam2-ft", hub / "me" / "huge", lambda c: {**c, "image_size": 8192})
        _copy_with(hub / "me" / "semantic-ft", hub / "me" / "semantic-huge",
                   lambda c: {**c, "decoder_channels": [100_000, 64, 32]})
        _copy_with(hub / "me" / "d2-ft", hub / "me" / "d2-huge",
                   lambda c: {**c, "cfg": {**c["cfg"], "INPUT": {**c["cfg"]["INPUT"], "MIN_SIZE_TEST": 8000}}})
        frames = [np.full((96, 128, 3), 40 * t, np.uint8) for t in range(4)]
        served["clip"] = str(write_video(root / "clip.mp4", frames, fps=4))
        served["client"] = client = Client(served["url"], verbose=False)
        _click(served)  # loads the base model and embeds the image: the baseline is a warm app
        served["baseline_mb"] = peak_rss_mb(served["pid"])
        yield served


def _copy_with(source: Path, dest: Path, change) -> None:
    shutil.copytree(source, dest)
    config = dest / "model_config.yaml"
    config.write_text(yaml.safe_dump(change(yaml.safe_load(config.read_text()))))


def _click(app: dict) -> str:
    """A normal visitor's click: one point, the base model."""
    info = app["client"].predict(handle_file(app["image"]), json.dumps({"points": [[60, 60, 1]]}), BASE, "fp32",
                                 False, api_name="/segment")[3]
    assert info.startswith("score"), info
    return info


def _refused(call, pattern: str) -> str:
    with pytest.raises(AppError) as err:
        call()
    message = str(err.value)
    assert re.search(pattern, message), message
    assert "internal error" not in message
    return message


def _survived(app: dict) -> None:
    grown = peak_rss_mb(app["pid"]) - app["baseline_mb"]
    assert grown <= MAX_GROWTH_MB, f"the app's peak memory grew by {grown:.0f} MB"
    _click(app)


def test_prompt_points_are_capped_on_every_endpoint(app):
    """Finding 1: 50,000 points were GBs of score tensors; every endpoint that takes prompts refuses them first."""
    client, image = app["client"], handle_file(app["image"])
    too_many = r"1000 points; this Space takes at most \d+"
    _refused(lambda: client.predict(image, MANY_POINTS, BASE, "fp32", False, api_name="/segment"), too_many)
    _refused(lambda: client.predict(image, MANY_POINTS, BASE, BASE, "fp32", api_name="/compare"), too_many)
    _refused(lambda: client.predict(image, MANY_POINTS, "vessel", BASE, "fp32", api_name="/add_to_dataset"),
             too_many)
    _refused(lambda: client.predict(handle_file(app["clip"]), BASE, 0, MANY_POINTS, "fp32",
                                    api_name="/video_track"), too_many)  # the Video tab's parser is the same one
    _refused(lambda: client.predict(image, HUGE_PROMPTS, BASE, "fp32", False, api_name="/segment"),
             "over this Space's limit of .* characters")
    _refused(lambda: client.predict(image, '{"points": [[NaN, 1e999, 1]]}', BASE, "fp32", False,
                                    api_name="/segment"), "finite numbers")
    _survived(app)


def test_model_configs_that_ask_for_too_much_are_refused_before_loading(app):
    """Finding 2: a config's image_size 8192, a semantic head of 100,000 channels, a detectron2 test size of 8000."""
    client = app["client"]
    refused = "not a model this Space offers"
    _refused(lambda: client.predict("me/huge", api_name="/load_model"), refused)
    _refused(lambda: client.predict(handle_file(app["image"]), '{"points": [[5, 5, 1]]}', "me/huge", "fp32", False,
                                    api_name="/segment"), refused)
    _refused(lambda: client.predict(handle_file(app["image"]), "me/semantic-huge", "fp32", api_name="/semantic"),
             refused)
    _refused(lambda: client.predict(handle_file(app["image"]), "me/d2-huge", "fp32", 0.5, api_name="/detectron2"),
             refused)
    _survived(app)


def test_a_session_model_ref_cannot_leave_the_session(app):
    """Finding 3: `session:<own token>/../<another run>` handed back that run's zip; now every ref that is not one
    of the visitor's own models gets the same answer, whether its folder exists or not, and nothing is written."""
    client = app["client"]
    client.predict([handle_file(app["image"])], api_name="/add_images")  # the visitor's session now has a folder
    root = Path(app["hub"]).parent / "sessions"
    token = next(p.name for p in root.iterdir() if (p / "data").is_dir())
    victim = root.parent / "victim-run"
    shutil.copytree(Path(app["hub"]) / "me" / "sam2-ft", victim)
    (victim / "summary.json").write_text("{}")
    before = sorted(p.name for p in root.parent.iterdir())
    refs = [f"session:{token}/../../victim-run", f"session:{token}//{victim}", f"session:{token}/../{token}/x",
            f"session:{token}/run-7", f"session:{'0' * 32}/run-0", "../victim-run"]
    answers, NO_SUCH = set(), re.escape(finetune_tab.NO_SUCH_MODEL)
    for ref in refs:
        answers.add(_refused(lambda: client.predict(ref, api_name="/export_model"), NO_SUCH))
        answers.add(_refused(lambda: client.predict(ref, "me/x", api_name="/push"), NO_SUCH))
    assert len(answers) == 1, answers  # no way to tell which folders exist
    assert sorted(p.name for p in root.parent.iterdir()) == before and not list(victim.glob("*.zip"))
    _survived(app)


def test_automatic_masks_are_bounded_and_do_not_block_clicks(app):
    """Finding 4: a grid over the Space's bound is refused; one within it runs in the heavy group without holding
    the shared model's lock, so a visitor's click answers while it decodes."""
    client, image = app["client"], handle_file(app["image"])
    with pytest.raises(AppError):  # over the slider (Gradio's own check) and over the Space's bound
        client.predict(image, BASE, "fp32", 64, 0.8, 0.9, 100, api_name="/automatic")
    grid = client.submit(image, BASE, "fp32", 32, 0.0, 0.0, 0, api_name="/automatic")
    while grid.status().code.name not in ("PROCESSING", "PROGRESS", "FINISHED"):
        time.sleep(0.05)
    start = time.perf_counter()
    _click(app)
    click_s = time.perf_counter() - start
    assert not grid.done(), f"the click ({click_s:.1f} s) waited for the grid to finish"
    assert "masks" in grid.result()[1]
    _survived(app)


def test_uploads_are_bounded_before_decoding(app, tmp_path):
    """Finding 6 and 11: a playlist-type file named .mp4 is not probed (no other files or URLs opened); more images
    than the dataset holds are refused before any is decoded."""
    client = app["client"]
    playlist = tmp_path / "playlist.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    _refused(lambda: client.predict(handle_file(str(playlist)), api_name="/video_load"), "not a readable video")
    images = [handle_file(app["image"])] * 25
    _refused(lambda: client.predict(images, api_name="/add_images"), "over its maximum of 20 images")
    _survived(app)


def test_server_paths_are_refused_without_any_public_switch(app):
    """Finding 10: no SPACE_ID, no SEGKIT_PUBLIC, bound to every interface: still the public rules."""
    client = app["client"]
    for ref in ["/etc", str(Path(app["hub"]) / "me" / "sam2-ft"), "file:/tmp"]:
        _refused(lambda: client.predict(ref, api_name="/load_model"), re.escape(REFUSED))
    _survived(app)
