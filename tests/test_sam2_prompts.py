"""Prompt sampling and losses (no model needed)."""

import pytest
import torch

from trainer.sam2_ft import losses, prompts


def _masks() -> torch.Tensor:
    m = torch.zeros(3, 1, 64, 64, dtype=torch.bool)
    m[0, 0, 10:30, 5:25] = True
    m[1, 0, 40:60, 30:62] = True
    m[2, 0, 0:64, 0:60] = True  # almost the whole image: few negatives available
    return m


def _at(masks: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Mask value under each point: N x P."""
    x, y = coords[..., 0].long(), coords[..., 1].long()
    rows = torch.arange(len(masks))[:, None].expand_as(x)
    return masks[rows, 0, y, x]


def test_points_fall_inside_and_outside_the_mask():
    m = _masks()
    p = prompts.sample_points(m, 3, 2, torch.Generator().manual_seed(0))
    assert p.coords.shape == (3, 5, 2) and p.labels.shape == (3, 5) and p.coords.dtype == torch.float32
    assert (p.labels[:, :3] == 1).all() and (p.labels[:, 3:] == 0).all()
    inside = _at(m, p.coords)
    assert inside[:, :3].all() and not inside[:, 3:].any()
    assert not p.multimask
    single = prompts.sample_points(m, 1, 0, torch.Generator().manual_seed(0))
    assert single.multimask and single.coords.shape == (3, 1, 2)


def test_points_are_padding_where_a_region_is_empty():
    m = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    p = prompts.sample_points(m, 1, 2, torch.Generator().manual_seed(0))
    assert p.labels.tolist() == [[1, -1, -1]]


def test_points_are_uniform_over_the_region():
    """Every pixel of the region equally likely (as sam2's argmax-of-noise sampler), none outside it."""
    m = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    m[0, 0, 3, [4, 9, 20, 31]] = True  # four scattered pixels
    m[1, 0, 10:12, 0:2] = True  # a 2x2 block at the left edge
    p = prompts.sample_points(m, 4000, 0, torch.Generator().manual_seed(1))
    assert _at(m, p.coords).all()
    for row in range(2):
        _, counts = torch.unique(p.coords[row], dim=0, return_counts=True)
        assert len(counts) == 4 and counts.min() > 850 and counts.max() < 1150  # 1000 each, +-5 sigma


def test_same_generator_seed_same_prompts():
    m = _masks()
    a = prompts.sample_prompts("points", m, torch.Generator().manual_seed(5))
    b = prompts.sample_prompts("points", m, torch.Generator().manual_seed(5))
    c = prompts.sample_prompts("points", m, torch.Generator().manual_seed(6))
    assert torch.equal(a.coords, b.coords) and not torch.equal(a.coords, c.coords)


def test_box_surrounds_the_mask_within_the_jitter():
    m = _masks()
    tight = prompts.boxes(m)
    assert tight[0].tolist() == [5, 10, 24, 29]
    p = prompts.sample_box(m, torch.Generator().manual_seed(0), jitter=0.1, max_px=20)
    assert p.coords.shape == (3, 2, 2) and p.labels.tolist() == [[2, 3]] * 3
    size = (tight[:, 2:] - tight[:, :2]).repeat(1, 2)
    moved = (p.coords.view(3, 4) - tight).abs()
    assert (moved <= size * 0.1 + 1e-4).all() and (moved > 0).any()


def test_mask_prompt_is_the_models_own_prediction_never_the_ground_truth(monkeypatch):
    """A mask prompt made from the target lets the model learn to copy it; SAM feeds back its own logits."""
    from trainer.augment import policy
    from trainer.data.synthetic import make_dataset
    from trainer.engine.images import TrainingImages, make_items
    from trainer.sam2_ft import objective
    from trainer.sam2_model.model import Sam2Spec, build_model

    m = _masks()
    first = prompts.sample_prompts("mask", m, torch.Generator().manual_seed(0))
    assert first.mask_input is None and first.labels.tolist() == [[1]] * 3 and _at(m, first.coords).all()

    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", 64), train=True)
    data = TrainingImages(make_dataset(1, 64, seed=2), 64, policy("none"), seed=0, progress=False)
    items = make_items(data, [0], step=0, seed=0, max_objects=4)
    calls = []
    real = objective.decode

    def recording(model, feats, coords, labels, mask_input, multimask):
        out = real(model, feats, coords, labels, mask_input, multimask)
        calls.append((mask_input, multimask, out))
        return out

    monkeypatch.setattr(objective, "decode", recording)
    loss = objective.Sam2Objective(model, "dice_bce_iou")(items, "mask")
    assert torch.isfinite(loss)
    (no_mask, multi, (low_res, iou)), (fed_back, single, _) = calls
    assert no_mask is None and multi and not single
    torch.testing.assert_close(fed_back, objective.best_mask(low_res, iou))


def test_corrective_click_lands_in_the_error_region():
    gt = _masks()
    pred = torch.zeros_like(gt)
    pred[0, 0, 10:30, 5:15] = True  # missing the right half: false negatives only -> positive click
    pred[1, 0, 30:64, 20:64] = True  # too big: false positives only -> negative click
    pred[2] = gt[2]  # perfect: sam2 clicks negative in the background
    coords, labels = prompts.corrective_click(gt, pred, torch.Generator().manual_seed(0))
    assert coords.shape == (3, 1, 2) and labels.tolist() == [[1], [0], [0]]
    fn, fp = gt & ~pred, ~gt & pred
    assert _at(fn, coords)[0].all() and _at(fp, coords)[1].all() and not _at(gt, coords)[2].any()


def test_unknown_prompt_type_is_an_error():
    with pytest.raises(ValueError, match="unknown prompt type"):
        prompts.sample_prompts("scribble", _masks(), torch.Generator())


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_losses_prefer_the_right_mask_and_pick_the_best_of_several(name):
    gt = _masks()[:2].float()
    good = (gt * 2 - 1) * 8  # confident and right
    bad = -good
    iou = torch.ones(2, 1)
    low_good = losses.LOSSES[name](good, iou, gt)
    low_bad = losses.LOSSES[name](bad, iou, gt)
    assert low_good.shape == (2,) and (low_good < low_bad).all()
    three = losses.LOSSES[name](torch.cat([bad, good, bad], 1), torch.ones(2, 3), gt)
    if name in ("focal_dice_iou", "dice_bce_iou"):  # IoU head is supervised on all three candidates
        assert (three > low_good).all()
    else:
        assert torch.allclose(three, low_good, atol=1e-5)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_mask_loss_is_taken_at_the_decoders_resolution_and_backpropagates(name):
    gt = _masks()  # 64 x 64
    logits = torch.zeros(3, 1, 16, 16, requires_grad=True)
    loss = losses.mask_loss(name, logits, torch.zeros(3, 1, requires_grad=True), gt)
    loss.sum().backward()
    assert loss.shape == (3,) and torch.isfinite(loss).all() and logits.grad.abs().sum() > 0
    target = losses.downsample_targets(gt, (16, 16))
    assert target.shape == (3, 1, 16, 16) and target.min() >= 0 and target.max() <= 1
    torch.testing.assert_close(target.mean((1, 2, 3)), gt.float().mean((1, 2, 3)))  # area kept: soft edges
    # the right mask at low resolution scores better than the wrong one
    right = (target > 0.5).float() * 16 - 8
    assert (losses.mask_loss(name, right, torch.ones(3, 1), gt) < losses.mask_loss(name, -right, torch.ones(3, 1), gt)).all()


def test_centre_clicks_go_to_the_larger_errors_interior_as_the_evaluation_clicks():
    from trainer.sam2_ft.interactive import next_clicks

    gt = _masks()
    pred = torch.zeros_like(gt)
    pred[0, 0, 10:30, 5:15] = True
    pred[1, 0, 30:64, 20:64] = True
    pred[2] = gt[2]
    uniform = prompts.corrective_click(gt, pred, torch.Generator().manual_seed(0))
    coords, labels = prompts.corrective_click(gt, pred, torch.Generator().manual_seed(0), centre=1.0)
    assert labels.tolist() == [[1], [0], [0]]
    # the errors' centres are where the evaluation's simulator clicks; the perfect mask keeps its background click
    want, want_labels = next_clicks(gt[:2, 0].numpy(), pred[:2, 0].numpy())
    torch.testing.assert_close(coords[:2], torch.from_numpy(want))
    assert labels[:2].numpy().tolist() == want_labels.tolist()
    assert not _at(gt, coords)[2].any()
    # centre 0 draws nothing more from the generator: a run without it samples exactly as before
    again = prompts.corrective_click(gt, pred, torch.Generator().manual_seed(0), centre=0.0)
    assert all(torch.equal(a, b) for a, b in zip(uniform, again))
    assert not torch.equal(coords, uniform[0])
