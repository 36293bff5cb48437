import numpy as np
import pytest

from tracker.core.association import GATED, fuse_costs, iou_cost, linear_assignment

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


def test_matches_brute_force_optimum_on_random_gated_matrices():
    """Same total cost as scipy's optimal assignment restricted to pairs under the threshold."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(3)
    for _ in range(200):
        r, c = rng.integers(1, 7, size=2)
        cost = rng.uniform(0, 1, (r, c))
        cost[rng.uniform(size=(r, c)) < 0.4] = GATED
        thr = 0.6
        m, _, _ = linear_assignment(cost, thr)
        got = cost[m[:, 0], m[:, 1]].sum() + thr * (r + c - 2 * len(m)) / 2
        # Reference: pad with "stay unmatched" options costing thr/2 each side.
        big = np.full((r + c, c + r), 0.0)
        big[:r, :c] = np.where(cost <= thr, cost, 1e9)
        big[:r, c:] = np.where(np.eye(r) > 0, thr / 2, 1e9)
        big[r:, :c] = np.where(np.eye(c) > 0, thr / 2, 1e9)
        i, j = linear_sum_assignment(big)
        assert got == pytest.approx(big[i, j].sum())
        assert (cost[m[:, 0], m[:, 1]] <= thr).all()
