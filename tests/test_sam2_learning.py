"""The learning guard: SAM2 fine-tuning must teach a random-init model to follow the prompt it is given, judged on
held-out images, and the guard must fail on known bad training.

Its own fixed recipe (GUARD), not the live defaults, so a change of default is judged by the benchmark
(`python bench/bench_sam2_recipes.py --variants default`, figures in bench/README.md), not by this test:
a real random-init sam2.1 tiny at 256 px, seed 0, on the built-in data (scikit-image's coins photo), trained on
windows of its top half and scored on windows of its bottom half at other positions and scales, coins cut at the
borders — coins the run never saw. Every coin looks alike, so a model that lights up every coin (or a coin-sized
blob) for any prompt scores ~0.15-0.2 here; only one that follows the prompt passes. Known bad training, each shown
to fail `shortfalls` below: 1 corrective click per step (never leaves that "every coin" phase), and a model that
answers every prompt with the same mask. Smaller synthetic scenes at 128 px were tried first: at 8 x 8 image tokens
a random-init model had not left the "every object" phase after 300 steps, so they could not guard this.
"""

import numpy as np
import pytest
import torch

from trainer.data.instances import iou_matrix
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.evaluate import area_correlation, paired_iou
from trainer.sam2_ft.pipeline import run
from trainer.sam2_ft.prompts import center_points
from trainer.sam2_model.model import inference_mode, load_folder, make_predictor

# Every flag that shapes what is learned, pinned: the defaults may move, this may not (it is the quickstart's SAM2
# run of issue 22: 300 steps, 8 objects x 6 corrective clicks; held-out figures, seeds 0-2, in bench/README.md).
# Smaller recipes were measured and cannot guard (seed 0, 1 thread; issue 30 asked for a smaller one): 150 steps is
# mid-escape (2026-12-04: box / 1 point 0.38 / 0.60, box area correlation 0.33, as low as a same-mask answer's, and
# the two-coin click test failed); 200 steps reads 0.56 / 0.72, area correlation 0.58 / 0.59, under the bars; 3
# corrective clicks for 200 steps at lr 2e-3 collapses to empty masks (0.01), for 150 steps at lr 3e-3 stays in the
# "every coin" phase (0.18), as does batch 1 for 300 steps (0.18) (2026-12-05: GUARD with those flags). Backpropagating
# 2 of the 6 clicks (RITM's way, reverted) passed here in 0.73x the time, but the same change left the default
# recipe's seed 0 in that phase (box 0.35): too near the edge to guard with (bench/README.md, issue 30).
# eval_clicks=0: the bars below read no click-simulation figure, and simulating 20 clicks per object before and
# after cost more than the evaluation itself (the prompted figures come from seeds the simulation does not touch).
GUARD = dict(no_pretrained=True, image_size=256, size="tiny", freeze="image_encoder", lora=0, lr=1e-3,
             weight_decay=4e-5, warmup_steps=10, clip_grad=1.0, steps=300, batch_size=2, grad_accum=1, max_objects=8,
             correction_clicks=6, centre_clicks=0.0, prompts="point,points,box", loss="dice_bce_iou",
             augment="default", cache_views=8, val_fraction=0.2, precision="fp32", seed=0, eval_images=8,
             auto_points_per_side=0, eval_clicks=0, overlays=0, progress=False)
EVAL_IMAGES = GUARD["eval_images"]
# Known bad training, 1 corrective click per step: held-out figures of GUARD with --correction-clicks 1 and
# --steps 150, seed 0 (2026-12-04, 1 thread): the "every coin" phase, which 1 click never leaves in 600 steps (README).
ONE_CLICK = {"miou_box": 0.180, "miou_1pt": 0.180, "miou_3pt": 0.180, "area_corr_box": 0.300, "area_corr_1pt": 0.300}


def shortfalls(after: dict) -> list[str]:
    """Why held-out figures do not show a model that follows prompts ([] when they do). GUARD's seeds 0/1/2 read box
    0.72/0.71/0.76, 1 point 0.81/0.82/0.82 (seed 0 re-run 2026-12-05, this code, 1 thread: box / 1 point / 3 points
    0.67 / 0.78 / 0.70, area correlation 0.66 / 0.87); "every coin" reads ~0.15-0.2. The log-area correlations catch
    a blob with a fair IoU (untrained ~0.2, every coin ~0.3, the same blob for every prompt ~0); one run's correlation
    over ~100 objects swings with a few cut coins (seed 0 read box / 1 point 0.75 / 0.68 before issue 17's step and
    0.59 / 0.85 after it, at the same mIoU, on a CPU with AMX), hence each >= 0.5 and their mean >= 0.65."""
    bars = {"miou_box": 0.6, "miou_1pt": 0.65, "miou_3pt": 0.6}
    failed = [f"{k} {after[k]:.2f} < {bar}" for k, bar in bars.items() if after[k] < bar]
    corr = after["area_corr_box"], after["area_corr_1pt"]
    if min(corr) < 0.5 or sum(corr) / 2 < 0.65:
        failed.append(f"area correlation box / 1 point {corr[0]:.2f} / {corr[1]:.2f}: sizes do not follow the objects")
    return failed


@pytest.fixture(scope="module")
def dataset():
    from trainer.data import load_dataset

    return load_dataset("builtin")


@pytest.fixture(scope="module")
def held_out(dataset):
    cfg = Sam2TrainConfig(**GUARD)
    return dataset.split(cfg.val_fraction, cfg.seed)[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset, held_out):
    return run(Sam2TrainConfig(out=str(tmp_path_factory.mktemp("learning") / "run"), **GUARD), dataset), held_out


def test_held_out_prompted_figures_pass_the_guard(trained):
    result, _ = trained
    before, after = result.summary["metrics"]["before"], result.summary["metrics"]["after"]
    assert shortfalls(before), before  # the random init does not pass already
    assert not shortfalls(after), (shortfalls(after), after)
    assert after["miou_box"] > before["miou_box"] + 0.4, (before, after)


def test_one_corrective_click_fails_the_guard():
    assert shortfalls(ONE_CLICK), ONE_CLICK


def same_mask_figures(val, mask_for) -> dict:
    """Held-out figures of a model that answers every prompt on an image with the one mask `mask_for(sample)`,
    scored as evaluate() scores a model (paired IoU per object, log-area correlation), on GUARD's images."""
    ious, areas = [], []
    for index in range(EVAL_IMAGES):
        sample = val[index]
        truth = sample.masks[sample.masks.areas > 0]
        answer = np.repeat(mask_for(sample)[None], len(truth), 0)
        ious.extend(paired_iou(truth, answer))
        areas.extend(zip(truth.areas.tolist(), answer.sum((1, 2)).tolist()))
    miou, corr = float(np.mean(ious)), area_correlation(areas)
    return {"miou_box": miou, "miou_1pt": miou, "miou_3pt": miou, "area_corr_box": corr, "area_corr_1pt": corr}


def every_coin(sample) -> np.ndarray:
    return sample.masks.dense().any(0)


def coin_sized_disc(sample) -> np.ndarray:
    h, w = sample.image.shape[:2]
    radius = np.sqrt(np.median(sample.masks.areas) / np.pi)
    ys, xs = np.ogrid[:h, :w]
    return (ys - h / 2) ** 2 + (xs - w / 2) ** 2 <= radius**2


@pytest.mark.parametrize("mask_for", [every_coin, coin_sized_disc])
def test_the_same_mask_for_every_prompt_fails_the_guard(held_out, mask_for):
    figures = same_mask_figures(held_out, mask_for)
    assert shortfalls(figures), figures


def test_clicks_on_different_objects_give_different_masks(trained):
    """On 4 held-out windows, a click at the centre of each of its two largest coins: each click gets its own coin
    and not the other. Judged over the 8 coins (median IoU), not one: a single coin's IoU moves with the run's
    float summation order (one coin read 0.35 with 2 threads and above 0.5 with 1, same code)."""
    result, val = trained
    model, _ = load_folder(result.path)
    own, other = [], []
    with inference_mode(model):
        predictor = make_predictor(model)
        for index in range(4):
            sample = val[index]
            coins = sample.masks[np.argsort(sample.masks.areas)[-2:]]  # its two largest coins (whole ones)
            predictor.set_image(sample.image)
            masks = []
            for coin in coins:
                ys, xs = np.nonzero(coin)
                inside = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)  # the coin pixel nearest its centre
                click = np.array([[xs[inside], ys[inside]]])
                out, scores, _ = predictor.predict(point_coords=click, point_labels=np.array([1]),
                                                   multimask_output=True)
                masks.append(out[scores.argmax()] > 0)
            ious = iou_matrix(coins, np.stack(masks))
            own.extend(np.diag(ious))
            other.extend(ious[~np.eye(2, dtype=bool)])
    own, other = np.array(own), np.array(other)
    assert np.median(own) > 0.6 and (own > other.reshape(-1, 2)[:, ::-1].ravel()).all(), (own, other)
    assert (other < 0.15).all(), other  # ...and not the other coin (0.00-0.06 measured)


def _largest_whole(masks: np.ndarray, count: int) -> list[int]:
    """Indices of the `count` largest of N x H x W masks that do not touch the border (whole coins), largest first."""
    whole = [n for n, m in enumerate(masks) if m.any() and not (m[0].any() or m[-1].any() or m[:, 0].any()
                                                                 or m[:, -1].any())]
    return sorted(whole, key=lambda n: -masks[n].sum())[:count]


def _interior(mask: np.ndarray) -> list[float]:
    """The mask's most interior pixel (x, y), where the evaluation's first click goes."""
    return center_points(torch.from_numpy(mask)[None, None]).coords[0, 0].tolist()


def _click_pixel(page, selector: str, at: tuple[float, float], shape: tuple[int, int]) -> None:
    """Click the centre of pixel `at` (x, y) of the image `selector` shows, an image of `shape` (H, W)."""
    box = page.locator(selector).bounding_box()
    page.mouse.click(box["x"] + (at[0] + 0.5) * box["width"] / shape[1],
                     box["y"] + (at[1] + 0.5) * box["height"] / shape[0])


def _page_click_mask(page, at: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
    """Click at pixel `at` (x, y) of the Prompt tab's shown image; the mask the page decoded for it (H x W bool)."""
    seq = page.evaluate("() => segkit.seq")
    _click_pixel(page, "#prompt-canvas img", at, shape)
    page.wait_for_function("(seq) => segkit.last && segkit.last.seq > seq && segkit.last.commit && !segkit.busy",
                           arg=seq, timeout=60_000)
    bits = page.evaluate("() => new TextDecoder().decode(segkit.last.mask.map((v) => v + 48))")
    return np.frombuffer(bits.encode(), np.uint8).reshape(shape) == ord("1")


@pytest.mark.browser
def test_the_spaces_prompt_tab_segments_held_out_coins_better_fine_tuned(trained, tmp_path):
    """Issue 29's Space check: the guard's fine-tuned model, in the app's local hub, in the Prompt tab of headless
    Chromium, on the largest held-out window: one click at the most interior point of each of its 3 largest whole
    coins (cleared in between) gives masks that fit the coins far better than the random-init base model's for the
    same clicks. A screenshot of each model's first coin is left in the test's folder (fine_tuned.png, base.png)."""
    import shutil

    from PIL import Image

    sync_api = pytest.importorskip("playwright.sync_api")
    from demo import models
    from demo.testing import running_app

    result, val = trained
    sample = max((val[i] for i in range(len(val))), key=lambda s: s.image.shape[0] * s.image.shape[1])
    dense = sample.masks.dense()
    coins = [dense[n] for n in _largest_whole(dense, 3)]
    clicks = [_interior(coin) for coin in coins]
    photo = tmp_path / "held_out.png"
    Image.fromarray(sample.image).save(photo)
    shape = sample.image.shape[:2]
    ious: dict[str, list[float]] = {}
    with running_app(tmp_path / "app", with_d2=False, with_semantic=False) as app, \
            sync_api.sync_playwright() as p:
        for name in ("model.safetensors", "model_config.yaml"):  # the app's hub model becomes the fine-tuned one
            shutil.copy(result.path / name, app["hub"] / "me" / "sam2-ft" / name)
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app["url"], wait_until="domcontentloaded")
            page.locator("input[type=file]").first.set_input_files(str(photo))
            for label, ref in (("fine_tuned", "me/sam2-ft"), ("base", models.BASE_REF)):
                if page.get_by_label("SAM2 model").input_value() != ref:
                    page.get_by_label("SAM2 model").click()
                    page.get_by_role("option", name=ref).click()
                    page.wait_for_function("() => !segkit.ready", timeout=30_000)
                page.wait_for_function("() => window.segkit && segkit.ready", timeout=180_000)
                ious[label] = []
                for index, (coin, at) in enumerate(zip(coins, clicks)):
                    seq = page.evaluate("() => segkit.seq")
                    page.locator("#prompt-clear").click()  # its server round trip ends in the page's redraw: wait
                    page.wait_for_function(  # for it, else it can land after the click and replace its mask
                        "(seq) => segkit.last && segkit.last.seq > seq && !segkit.last.prompts.points.length && "
                        "!segkit.last.commit && !segkit.busy && !segkit.pending", arg=seq, timeout=60_000)
                    mask = _page_click_mask(page, at, shape)
                    ious[label].append(float((mask & coin).sum() / max((mask | coin).sum(), 1)))
                    if index == 0:
                        page.screenshot(path=str(tmp_path / f"{label}.png"), full_page=True)
        finally:
            browser.close()
    fine_tuned, base = np.mean(ious["fine_tuned"]), np.mean(ious["base"])
    assert len(coins) == 3 and fine_tuned > 0.5 and fine_tuned > base + 0.25, ious
    assert all((tmp_path / f"{label}.png").stat().st_size > 10_000 for label in ious)


def _painted(played: list[np.ndarray], shown: list[np.ndarray]) -> np.ndarray:
    """The masks the Video tab painted (T x H x W bool): its paint() moves a masked pixel 55 % of the way to
    (30, 144, 255), so blue rises and red falls by ~0.55 x (225 + red - blue), ~120 for a grey pixel; the codec's
    noise in that difference is a few levels."""
    out, src = np.stack(played).astype(np.int32), np.stack(shown).astype(np.int32)
    shift = (out[..., 2] - src[..., 2]) - (out[..., 0] - src[..., 0])
    return shift > 50


@pytest.mark.browser
def test_the_spaces_video_tab_tracks_held_out_coins_better_fine_tuned(trained, tmp_path):
    """Issue 29's Space check, Video tab: the quickstart's video recipe (30 steps from the image model) run from the
    guard's fine-tuned model and put in the app's local hub; in headless Chromium's Video tab, a held-out built-in
    clip (a camera moving over the photo's held-out half), one click at the most interior point of each of its 3
    largest whole coins on frame 0 (cleared in between), tracked through the clip by the fine-tuned video model and
    by the random-init base: the fine-tuned masks follow the coins better (IoU per frame, read back from the tab's own
    tracked clip). Measured 2026-12-05 in CI's float order: mean IoU 0.74 fine-tuned (coins 0.52 / 0.89 / 0.80),
    0.09 base; with one clip a step (the recipe before) 0.38 on 2 threads and 0.00 in CI's order, where it
    collapsed. Screenshots of each model's first coin: video_fine_tuned.png, video_base.png."""
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api")
    from demo import models
    from demo.testing import redrawn, running_app
    from trainer.data.clips import load_clips, read_video_frames, write_video
    from trainer.quickstart import RECIPES
    from trainer.video.config import VideoTrainConfig
    from trainer.video.pipeline import run as run_video

    result, _ = trained
    recipe = RECIPES["sam2-video"]
    flags = {recipe[i][2:].replace("-", "_"): recipe[i + 1] for i in range(1, len(recipe) - 1, 2)}
    assert set(flags) == {"weights", "image_size", "frames", "batch_size", "lr", "steps", "correction_points",
                          "eval_clips", "overlays"}, recipe  # the quickstart's video recipe, as this test reads it
    cfg = VideoTrainConfig(weights=str(result.path), image_size=int(flags["image_size"]), frames=int(flags["frames"]),
                           batch_size=int(flags["batch_size"]), lr=float(flags["lr"]), steps=int(flags["steps"]),
                           correction_points=int(flags["correction_points"]), eval=False, overlays=0,
                           progress=False, out=str(tmp_path / "video-run"))
    video_run = run_video(cfg)
    clip = load_clips("builtin").split(cfg.val_fraction, cfg.seed)[1][0]
    first = clip.masks[0]
    coins = _largest_whole(first, 3)
    path = write_video(tmp_path / "held_out_clip.mp4", clip.frames, fps=4)
    shown = read_video_frames(path)  # the frames as the app decodes them (the codec's copy), for _painted
    shape = shown[0].shape[:2]
    ious: dict[str, list[float]] = {"video_fine_tuned": [], "video_base": []}
    with running_app(tmp_path / "app", with_d2=False, with_semantic=False) as app, \
            sync_api.sync_playwright() as p:
        shutil.copytree(video_run.path, app["hub"] / "me" / "sam2-video-ft",
                        ignore=lambda _, names: [n for n in names if n not in ("model.safetensors",
                                                                               "model_config.yaml")])
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app["url"], wait_until="domcontentloaded")
            page.get_by_role("tab", name="Video").click()
            page.locator("#video-upload input[type=file]").set_input_files(str(path))
            info = "() => document.querySelector('#video-info textarea').value"
            link = "() => { const a = document.querySelector('#video-download a'); return a ? a.href : ''; }"
            points = "() => JSON.parse(document.querySelector('#video-prompts textarea').value).points.length"
            page.wait_for_function(f"({info})().includes('click the object')", timeout=60_000)
            src = "() => document.querySelector('#video-canvas img').getAttribute('src')"
            drawn = redrawn("#video-canvas img")  # a click on it waits for its pixels (redrawn's docstring)
            page.wait_for_function(drawn, arg=None, timeout=30_000)
            for index, coin in enumerate(coins):
                if index:  # the frame is drawn again without the point: until then its progress overlay takes clicks
                    before = page.evaluate(src)
                    page.get_by_role("button", name="Clear prompts").click()
                    page.wait_for_function(f"(before) => ({points})() === 0 && ({drawn})(before)", arg=before,
                                           timeout=30_000)
                _click_pixel(page, "#video-canvas img", _interior(first[coin]), shape)
                page.wait_for_function(f"({points})() === 1", timeout=30_000)
                for label, ref in (("video_fine_tuned", "me/sam2-video-ft"), ("video_base", models.BASE_REF)):
                    picker = page.get_by_label("Video model")
                    picker.fill(ref)
                    picker.press("Enter")
                    before, old_link = page.evaluate(info), page.evaluate(link)
                    page.locator("#video-run").click()
                    page.wait_for_function(f"(before) => ({info})() !== before && "
                                           f"({info})().includes('tracked from')", arg=before, timeout=180_000)
                    # each run writes a file of a new name: wait for its link, which can come after the info's text
                    page.wait_for_function(f"(old) => ({link})() && ({link})() !== old", arg=old_link,
                                           timeout=30_000)
                    if index == 0:
                        page.screenshot(path=str(tmp_path / f"{label}.png"), full_page=True)
                    href = page.evaluate(link)
                    played = tmp_path / f"{label}_{index}.mp4"
                    played.write_bytes(page.request.get(href).body())
                    masks = _painted(read_video_frames(played), shown)
                    truth = clip.masks[:, coin]
                    assert len(masks) == len(truth), (len(masks), len(truth))
                    ious[label].append(float(np.mean([(m & t).sum() / max((m | t).sum(), 1)
                                                      for m, t in zip(masks, truth)])))
        finally:
            browser.close()
    fine_tuned, base = np.mean(ious["video_fine_tuned"]), np.mean(ious["video_base"])
    assert len(coins) == 3 and fine_tuned > base + 0.1, ious
    assert all((tmp_path / f"{label}.png").stat().st_size > 10_000 for label in ious)
