import numpy as np
import pytest

from tracker.core.boxes import iou_matrix, tlbr_to_tlwh, tlbr_to_xywh, tlwh_to_tlbr, xywh_to_tlbr


def test_round_trips():
    tlbr = np.array([[10, 20, 30, 60], [0, 0, 1, 1]], np.float64)
    assert np.allclose(tlwh_to_tlbr(tlbr_to_tlwh(tlbr)), tlbr)
    assert np.allclose(xywh_to_tlbr(tlbr_to_xywh(tlbr)), tlbr)
    assert np.allclose(tlbr_to_xywh(tlbr)[0], [20, 40, 20, 40])


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),  # touching corners
        ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),  # contained
        ([0, 0, 0, 10], [0, 0, 10, 10], 0.0),  # degenerate box
    ],
)
def test_iou_table(a, b, expected):
    assert iou_matrix(np.array([a]), np.array([b]))[0, 0] == pytest.approx(expected)


def test_iou_shapes_and_empty():
    a = np.random.default_rng(0).uniform(0, 100, (5, 4))
    a[:, 2:] += a[:, :2]
    assert iou_matrix(a, a[:3]).shape == (5, 3)
    assert np.allclose(np.diag(iou_matrix(a, a)), 1.0)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (5, 0)
