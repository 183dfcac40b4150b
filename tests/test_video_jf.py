"""J&F (DAVIS) against values computed by hand on tiny masks."""

import numpy as np
import pytest

from trainer.video.jf import boundary, boundary_f, clip_jf, region_j


def square(cols: slice, size: int = 20) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[5:15, cols] = True
    return mask


def test_boundary_is_davis_seg2bmap():
    gt = square(slice(5, 15))
    b = boundary(gt)
    # the outline shifted half a pixel towards the origin: row 4 cols 4-14, col 4 rows 5-14, col 14 rows 5-14,
    # row 14 cols 5-13
    assert b.sum() == 11 + 10 + 10 + 9
    assert b[4, 4:15].all() and b[5:15, 4].all() and b[5:15, 14].all() and b[14, 5:14].all()


def test_square_shifted_by_three_pixels():
    gt, pred = square(slice(5, 15)), square(slice(8, 18))
    assert region_j(pred, gt) == pytest.approx(70 / 130)  # 10 x 7 overlap, 200 - 70 union
    # disk radius ceil(0.008 * 20 * sqrt 2) = 1 (a cross). Of pred's 40 boundary pixels the top row matches 9 of 11,
    # the left column 3 of 10 (its ends touch gt's top and bottom rows), the right column 0 of 10, the bottom row
    # 8 of 9: precision 20/40; recall likewise by symmetry -> F = 0.5
    assert boundary_f(pred, gt) == pytest.approx(0.5)


def test_one_pixel_shift_keeps_the_boundary_and_loses_region():
    gt, pred = square(slice(5, 15)), square(slice(6, 16))
    assert region_j(pred, gt) == pytest.approx(90 / 110)
    assert boundary_f(pred, gt) == pytest.approx(1.0)


def test_empty_cases_follow_davis():
    empty, gt = np.zeros((20, 20), bool), square(slice(5, 15))
    assert region_j(empty, empty) == 1.0 and boundary_f(empty, empty) == 1.0  # object out of view, none predicted
    assert region_j(empty, gt) == 0.0 and boundary_f(empty, gt) == 0.0
    assert region_j(gt, empty) == 0.0 and boundary_f(gt, empty) == 0.0


def test_clip_jf_skips_first_and_last_frame_and_averages_per_object():
    gt = np.stack([np.stack([square(slice(5, 15)), square(slice(0, 4))])] * 4)  # T=4, N=2
    pred = gt.copy()
    pred[0] = False  # the first frame is the given one: not scored
    pred[3] = False  # the last frame is not scored either
    pred[1, 0] = square(slice(8, 18))  # object 0, frame 1: J 70/130, F 0.5
    j, f = clip_jf(pred, gt)
    assert j == pytest.approx([(70 / 130 + 1) / 2, 1.0]) and f == pytest.approx([0.75, 1.0])
