"""The interactive evaluation's click simulator: hand-computed clicks on tiny masks, then a real random-init SAM2."""

import json

import numpy as np
import pytest
import torch
from skimage import data

from trainer.data.instances import InstanceMasks
from trainer.sam2_ft.evaluate import METRICS, paired_iou, predict
from trainer.sam2_ft.interactive import click_metric_names, next_clicks, simulate, summarise
from trainer.sam2_model.model import Sam2Spec, build_model, inference_mode, make_predictor


def _square() -> np.ndarray:
    truth = np.zeros((1, 20, 20), bool)
    truth[0, 5:12, 3:10] = True  # rows 5-11, columns 3-9: the centre pixel is (x 6, y 8)
    return truth


def test_first_click_is_the_objects_most_interior_point():
    coords, labels = next_clicks(_square(), None)
    assert coords.tolist() == [[[6.0, 8.0]]] and labels.tolist() == [[1]]


def test_a_spill_larger_than_the_miss_gets_a_negative_click_at_its_centre():
    truth = _square()
    pred = truth.copy()
    pred[0, 0:5, :] = True  # a 5-row band over the object: its interior (3 px from every edge) starts at (2, 2)
    pred[0, 11, 3:10] = False  # a 1-row miss: 1 px deep, shallower than the spill
    coords, labels = next_clicks(truth, pred)
    assert coords.tolist() == [[[2.0, 2.0]]] and labels.tolist() == [[0]]


def test_a_miss_gets_a_positive_click_at_its_centre_in_image_coordinates():
    truth = _square()
    pred = truth.copy()
    pred[0, :, 7:10] = False  # columns 7-9 missed: 2 px deep at column 8, first reached at row 6
    coords, labels = next_clicks(truth, pred)
    assert coords.tolist() == [[[8.0, 6.0]]] and labels.tolist() == [[1]]


def test_noc_counts_the_first_click_that_reaches_the_threshold_and_caps_the_rest():
    ious = np.array([[0.50, 0.86, 0.92, 0.92, 0.93, 0.93, 0.93, 0.93, 0.93, 0.93, 0.93, 0.93],
                     [0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95],
                     [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.84, 0.84, 0.84, 0.84]])
    m = summarise(ious)
    assert m["noc_85"] == pytest.approx((2 + 1 + 12) / 3)  # never reached: the cap, 12 clicks here
    assert m["noc_90"] == pytest.approx((3 + 1 + 12) / 3)
    assert m["miou_click_1"] == pytest.approx((0.50 + 0.95 + 0.10) / 3)
    assert m["miou_click_3"] == pytest.approx((0.92 + 0.95 + 0.30) / 3)
    assert m["miou_click_10"] == pytest.approx((0.93 + 0.95 + 0.84) / 3)
    assert set(m) == set(click_metric_names(12))


def test_fewer_clicks_report_fewer_figures_and_none_when_off():
    assert click_metric_names(3) == ("miou_click_1", "miou_click_2", "miou_click_3", "noc_85", "noc_90")
    assert click_metric_names(0) == ()
    assert set(click_metric_names()) <= set(METRICS)


@pytest.fixture(scope="module")
def coins_predictor():
    """A random-init SAM2 at 128 px holding a window of scikit-image's coins photo, and two coin-sized discs."""
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", 128))
    image = np.stack([data.coins()[:96, :128]] * 3, -1)
    yy, xx = np.mgrid[:96, :128]
    truth = np.stack([(yy - 30) ** 2 + (xx - 40) ** 2 < 15 ** 2, (yy - 60) ** 2 + (xx - 95) ** 2 < 12 ** 2])
    with inference_mode(model):
        predictor = make_predictor(model)
        predictor.set_image(image)
        yield predictor, truth


def test_simulated_clicks_start_as_the_one_point_evaluation_and_stay_in_range(coins_predictor):
    predictor, truth = coins_predictor
    with torch.inference_mode():
        ious = simulate(predictor, truth, max_clicks=4)
        one_point, coords, _ = predict(predictor, torch.from_numpy(truth), "1pt")
    assert ious.shape == (2, 4) and ((ious >= 0) & (ious <= 1)).all()
    first, _ = next_clicks(truth, None)
    assert np.array_equal(coords, first)  # the same most interior point, the same multimask choice
    assert ious[:, 0] == pytest.approx(paired_iou(InstanceMasks.of(truth, 96, 128), one_point))


def test_a_later_click_feeds_every_point_and_the_previous_logits_back(coins_predictor, monkeypatch):
    predictor, truth = coins_predictor
    calls = []
    original = predictor.predict

    def recording(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(predictor, "predict", recording)
    with torch.inference_mode():
        simulate(predictor, truth, max_clicks=3)
    assert [c["multimask_output"] for c in calls] == [True, False, False]
    assert [c["point_coords"].shape for c in calls] == [(2, 1, 2), (2, 2, 2), (2, 3, 2)]
    assert calls[0].get("mask_input") is None
    assert all(c["mask_input"].shape == (2, 1, 32, 32) for c in calls[1:])  # the 128-px model's low-res logits


def test_the_quickstart_headline_says_where_noc_is_capped(tmp_path):
    """The quickstart simulates 10 clicks, not 20: its NoC figures are capped at 10 and its headline says so."""
    from trainer.quickstart import RECIPES, headline

    assert RECIPES["sam2"][RECIPES["sam2"].index("--eval-clicks") + 1] == "10"
    figures = {"miou_box": 0.7, "miou_1pt": 0.8, "miou_click_1": 0.8, "miou_click_3": 0.9, "miou_click_5": 0.9,
               "noc_85": 2.5}
    summary = {"kind": "sam2", "metrics": {"before": {k: 0.1 for k in figures}, "after": figures}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "config.yaml").write_text("eval_clicks: 10\n")
    assert "NoC@85, fewer is better) (capped at 10) 0.10 -> 2.50" in headline(tmp_path / "summary.json")
