"""The Video tab in a real browser (Debian chromium via playwright): upload a clip, click the object on the frame,
track it, the masked clip plays."""

from __future__ import annotations

import json

import pytest

from test_browser_app import app_page


@pytest.mark.browser
def test_upload_click_and_track_a_clip(tmp_path):
    from test_video_data import frame_image

    from trainer.data.clips import write_video

    clip = write_video(tmp_path / "clip.mp4", [frame_image(t, 96, 128) for t in range(6)], fps=6)
    with app_page(tmp_path) as (app, page):
        page.get_by_role("tab", name="Video").click()
        page.locator("#video-upload input[type=file]").set_input_files(str(clip))
        value = "() => document.querySelector('#video-info textarea').value"
        page.wait_for_function(f"({value})().includes('click the object')", timeout=60_000)
        canvas = page.locator("#video-canvas img")
        canvas.wait_for(timeout=30_000)
        box = canvas.bounding_box()
        canvas.click(position={"x": box["width"] * 10 / 128, "y": box["height"] * 16 / 96})  # the moving square
        page.wait_for_function("() => document.querySelector('#video-prompts textarea').value.includes('[[')",
                               timeout=30_000)
        prompts = json.loads(page.locator("#video-prompts textarea").input_value())
        page.locator("#video-run").click()
        page.wait_for_function(f"({value})().includes('tracked from frame')", timeout=120_000)
        text = page.locator("#video-info textarea").input_value()
        page.locator("#video-out video").wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "video_tab.png"), full_page=True)
    (x, y, label), = prompts["points"]
    assert abs(x - 10) <= 3 and abs(y - 16) <= 3 and label == 1
    assert "6 frames (128 x 96) tracked from frame 0" in text
    assert (tmp_path / "video_tab.png").stat().st_size > 10_000
