import numpy as np
import pytest

from tracker.association import GATED, fuse_costs, iou_cost, linear_assignment

CASES = [
    # cost, threshold, expected matches (row, col)
    ([[0.1, 0.9], [0.8, 0.2]], 0.5, {(0, 0), (1, 1)}),
    ([[0.1, 0.2], [0.2, 0.9]], 0.5, {(0, 1), (1, 0)}),  # global optimum, not greedy (0.4 < 1.0)
    ([[0.6, 0.9], [0.8, 0.7]], 0.5, set()),  # everything above threshold
    ([[0.1, GATED], [GATED, GATED]], 0.5, {(0, 0)}),  # gated pairs never match
    ([[0.3], [0.1], [0.2]], 0.5, {(1, 0)}),  # more rows than columns
    ([[0.3, 0.1, 0.2]], 0.5, {(0, 1)}),  # more columns than rows
    ([[0.5]], 0.5, {(0, 0)}),  # threshold inclusive
]


@pytest.mark.parametrize("cost,threshold,expected", CASES)
def test_linear_assignment_table(cost, threshold, expected):
    matches, un_r, un_c = linear_assignment(np.array(cost, float), threshold)
    got = {tuple(m) for m in matches.tolist()}
    assert got == expected
    r, c = np.array(cost).shape
    assert set(un_r.tolist()) == set(range(r)) - {m[0] for m in got}
    assert set(un_c.tolist()) == set(range(c)) - {m[1] for m in got}


def test_empty():
    m, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert m.shape == (0, 2) and ur.size == 0 and uc.tolist() == [0, 1, 2]


def test_iou_cost():
    c = iou_cost(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [20, 20, 30, 30]]))
    assert c.tolist() == [[0.0, 1.0]]


def test_fuse_costs_weights_and_motion_only_rows():
    app = np.array([[0.2, 0.4], [0.1, 0.1]])
    mot = np.array([[0.0, 1.0], [0.5, 0.5]])
    fused = fuse_costs(app, mot, 0.75, has_appearance=np.array([True, False]))
    assert fused[0].tolist() == pytest.approx([0.15, 0.55])
    assert fused[1].tolist() == pytest.approx([0.5, 0.5])  # no appearance: motion only
    assert np.array_equal(fuse_costs(None, mot, 0.75), mot)
