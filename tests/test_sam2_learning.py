"""The default recipe must teach SAM2 to follow the prompt it is given, judged on held-out images.

Exactly the quickstart's SAM2 run: a real random-init sam2.1 tiny at 256 px, every flag at its default except the
learning rate, seed 0, on the built-in data (scikit-image's coins photo): trained on windows of its top half and
scored on windows of its bottom half at other positions and scales, coins cut at the borders — coins the run never
saw. Every coin looks alike, so a model that lights up every coin (or a coin-sized blob) for any prompt scores
~0.15-0.2 here — only one that follows the prompt passes. Smaller synthetic scenes at 128 px were tried first: at
8 x 8 image tokens a random-init model had not left the "every object" phase after 300 steps, so they could not
guard this in a short test.
"""

import numpy as np
import pytest

from trainer.data.instances import iou_matrix
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.pipeline import run
from trainer.sam2_model.model import inference_mode, load_folder, make_predictor



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from trainer.data import load_dataset

    out = tmp_path_factory.mktemp("learning") / "run"
    dataset = load_dataset("builtin")
    cfg = Sam2TrainConfig(no_pretrained=True, image_size=256, lr=1e-3, out=str(out), progress=False, overlays=0,
                          auto_points_per_side=0)
    result = run(cfg, dataset)
    _, val = dataset.split(cfg.val_fraction, cfg.seed)
    return result, val


def test_held_out_prompted_miou_reaches_the_bar(trained):
    result, _ = trained
    before, after = result.summary["metrics"]["before"], result.summary["metrics"]["after"]
    # measured on all 16 held-out windows, seeds 0/1/2: box 0.72/0.71/0.76, 1 point 0.81/0.82/0.82 (README)
    assert after["miou_box"] >= 0.6 and after["miou_box"] > before["miou_box"] + 0.4, (before, after)
    assert after["miou_1pt"] >= 0.65 and after["miou_3pt"] >= 0.6, after
    # sizes follow the objects (untrained ~0.28, a blob for every prompt ~0). One run's correlation over ~100 objects
    # swings with a few cut coins: seed 0 read box / 1 point 0.75 / 0.68 before issue 17's step (b8a8ab4) and
    # 0.59 / 0.85 after it, at the same mIoU (box 0.69 both), on a CPU with AMX; hence each >= 0.5, their mean >= 0.65
    corr = after["area_corr_box"], after["area_corr_1pt"]
    assert min(corr) >= 0.5 and sum(corr) / 2 >= 0.65, after


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
