"""Our point decoder, click prediction and automatic mask generator against sam2's own (random-init sam2.1 tiny, 256 px)."""

import numpy as np
import pytest
import torch
from skimage import data

from trainer.data.instances import iou_matrix
from trainer.sam2_model.automatic import FastMaskGenerator
from trainer.sam2_model.model import Sam2Spec, build_model, make_mask_generator, make_predictor
from trainer.sam2_model.point_decoder import PointDecoder, predict

SIZE = 256


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(Sam2Spec("tiny", SIZE)).eval()


@pytest.fixture(scope="module")
def image():
    return np.stack([data.coins()[:150, :200]] * 3, axis=-1)  # not square: the crop / resize paths see W != H


@pytest.mark.parametrize("multimask", [True, False])
def test_point_decoder_matches_sam2s_mask_decoder(model, image, multimask):
    predictor = make_predictor(model)
    decoder = model.sam_mask_decoder
    assert decoder.dynamic_multimask_via_stability  # an inference build: one mask may fall back to the best of 3
    torch.manual_seed(1)
    coords, labels = torch.rand(12, 2, 2) * SIZE, torch.tensor([[1, 0]] * 12, dtype=torch.int)
    with torch.inference_mode():
        predictor.set_image(image)
        features = predictor._features
        sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        want, want_iou, _, _ = decoder(image_embeddings=features["image_embed"],
                                       image_pe=model.sam_prompt_encoder.get_dense_pe(),
                                       sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                       multimask_output=multimask, repeat_image=True,
                                       high_res_features=features["high_res_feats"])
        ours = PointDecoder(model, features["image_embed"], features["high_res_feats"])
        got, got_iou, rows = ours(coords, labels, multimask)
        threshold = float(want_iou.max(1).values.median())
        some, _, some_rows = ours(coords, labels, multimask, min_iou=threshold) if multimask else (None, None, None)
    assert got.shape == want.shape == (12, 3 if multimask else 1, SIZE // 4, SIZE // 4)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got_iou, want_iou, atol=1e-6, rtol=1e-5)
    assert rows.tolist() == list(range(12))
    if multimask:  # the mask head ran only for prompts with a mask above the IoU threshold
        assert some_rows.tolist() == torch.nonzero((want_iou > threshold).any(1))[:, 0].tolist()
        assert 0 < len(some_rows) < 12
        torch.testing.assert_close(some, want[some_rows], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("prompt", [dict(point_coords=np.array([[90, 60]]), point_labels=np.array([1])),
                                    dict(point_coords=np.array([[90, 60], [20, 100]]), point_labels=np.array([1, 0])),
                                    dict(box=np.array([30, 20, 150, 120]), point_coords=np.array([[90, 60]]),
                                         point_labels=np.array([1]))])
def test_click_prediction_matches_sam2s_predictor(model, image, prompt):
    predictor = make_predictor(model)
    multimask = len(prompt["point_labels"]) == 1
    with torch.inference_mode():
        predictor.set_image(image)
        want, want_scores, _ = predictor.predict(**prompt, multimask_output=multimask)
        features = predictor._features
        decoder = PointDecoder(model, features["image_embed"], features["high_res_feats"])
        got, scores = predict(predictor, decoder, prompt["point_coords"], prompt["point_labels"], prompt.get("box"),
                              multimask)
        best, best_score = predict(predictor, decoder, prompt["point_coords"], prompt["point_labels"],
                                   prompt.get("box"), multimask, top=1)
    order = np.argsort(-want_scores)
    np.testing.assert_allclose(scores, want_scores[order], atol=1e-5)
    assert got.shape == want.shape == (len(order), *image.shape[:2])
    assert ((want[order] > 0) != got).mean() < 1e-4
    assert best.shape == (1, *image.shape[:2]) and np.array_equal(best[0], got[0]) and best_score[0] == scores[0]


def _masks(model, image, stock: bool, **kwargs) -> list[dict]:
    with torch.inference_mode():
        return make_mask_generator(model, stock=stock, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                   **kwargs).generate(image)


# NMS off: every grid mask reaches the output, so all of them are compared, not only the survivors
@pytest.mark.parametrize("kwargs", [dict(box_nms_thresh=1.0, points_per_side=6), dict(crop_n_layers=1,
                                                                                       points_per_side=3)])
def test_same_masks_and_records_as_sam2s_generator(model, image, kwargs):
    calls = []
    stock = _masks(model, image, True, **kwargs)
    ours = _masks(model, image, False, progress=lambda done, total: calls.append((done, total)), **kwargs)
    assert len(ours) == len(stock) > 0
    assert ours[0].keys() == stock[0].keys()
    a, b = np.stack([m["segmentation"] for m in stock]), np.stack([m["segmentation"] for m in ours])
    assert a.shape == b.shape and a.shape[1:] == image.shape[:2]
    assert iou_matrix(a, b).max(1).min() > 0.98  # every stock mask has its twin
    by_point = {tuple(m["point_coords"][0]) + (round(m["predicted_iou"], 4),): m for m in ours}
    for m in stock:  # same candidates: point, predicted IoU, area, box
        twin = by_point[tuple(m["point_coords"][0]) + (round(m["predicted_iou"], 4),)]
        assert abs(twin["area"] - m["area"]) <= 0.01 * image.shape[0] * image.shape[1]
        assert np.allclose(twin["bbox"], m["bbox"], atol=4) and twin["crop_box"] == m["crop_box"]
    assert calls and calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_no_mask_passing_the_filters_gives_no_records(model, image):
    with torch.inference_mode():
        assert make_mask_generator(model, points_per_side=3, pred_iou_thresh=0.999).generate(image) == []


def test_mask_to_mask_refinement_falls_back_to_sam2(model, image):
    generator = make_mask_generator(model, points_per_side=2, use_m2m=True, pred_iou_thresh=0.0,
                                    stability_score_thresh=0.0)
    assert isinstance(generator, FastMaskGenerator)
    with torch.inference_mode():
        assert len(generator.generate(image)) >= 1


def test_app_automatic_tab_reports_progress(monkeypatch, tmp_path, image):
    from PIL import Image

    from demo import auto_tab, models
    from demo.testing import offline_env

    for name, value in offline_env(tmp_path / "hub", SIZE).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "coins.png"
    Image.fromarray(image).save(path)
    seen = []
    models.clear_caches()
    try:
        overlay, info = auto_tab.generate(str(path), models.BASE_REF, "fp32", 4, 0.0, 0.0, 0,
                                          progress=lambda value, desc=None, unit=None: seen.append(value))
    finally:
        models.clear_caches()
    assert overlay.shape == image.shape and "masks" in info
    done, total = seen[-1]  # embedding, then the 4² grid points, then the survivors of NMS once more
    assert seen[0] == 0.0 and done == total > 16


def test_survivors_upsampled_a_few_at_a_time_give_the_same_records(model, image, monkeypatch):
    from trainer.sam2_model import automatic

    kwargs = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0,
                  output_mode="coco_rle")  # (no NMS: a random-init model's masks overlap)
    whole = make_mask_generator(model, **kwargs).generate(image)
    monkeypatch.setattr(automatic, "UPSAMPLED_PIXELS", 150 * 200 * 3)  # three survivors per chunk
    chunked = make_mask_generator(model, **kwargs).generate(image)
    assert len(whole) == len(chunked) > 3
    assert [m["segmentation"] for m in whole] == [m["segmentation"] for m in chunked]
    assert [m["bbox"] for m in whole] == [m["bbox"] for m in chunked]
