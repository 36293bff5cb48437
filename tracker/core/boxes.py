"""Box format conversions and overlap, vectorised over rows.

Formats: ``tlbr`` = left, top, right, bottom; ``tlwh`` = left, top, width, height;
``xywh`` = centre x, centre y, width, height. All in pixels, float arrays of shape (N, 4).
"""

from __future__ import annotations

import numpy as np


def tlwh_to_tlbr(tlwh: np.ndarray) -> np.ndarray:
    """(N,4) tlwh -> (N,4) tlbr, same dtype."""
    out = np.array(tlwh, copy=True)
    out[:, 2:] += out[:, :2]
    return out


def tlbr_to_tlwh(tlbr: np.ndarray) -> np.ndarray:
    """(N,4) tlbr -> (N,4) tlwh, same dtype."""
    out = np.array(tlbr, copy=True)
    out[:, 2:] -= out[:, :2]
    return out


def tlbr_to_xywh(tlbr: np.ndarray) -> np.ndarray:
    """(N,4) tlbr -> (N,4) centre-x, centre-y, width, height."""
    tlbr = np.asarray(tlbr, dtype=np.float64)
    wh = tlbr[:, 2:] - tlbr[:, :2]
    return np.concatenate([tlbr[:, :2] + wh / 2, wh], axis=1)


def xywh_to_tlbr(xywh: np.ndarray) -> np.ndarray:
    """(N,4) centre-x, centre-y, width, height -> (N,4) tlbr."""
    xywh = np.asarray(xywh, dtype=np.float64)
    half = xywh[:, 2:] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def iou_matrix(a_tlbr: np.ndarray, b_tlbr: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Args:
        a_tlbr: (M, 4) boxes, tlbr pixels.
        b_tlbr: (N, 4) boxes, tlbr pixels.
    Returns:
        (M, N) float64 IoU in [0, 1]; 0 for degenerate (zero-area) boxes.
    """
    a = np.asarray(a_tlbr, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_tlbr, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    # Column-wise (M,1) x (N,) broadcasts: much faster than (M,N,2) ones on strided data.
    bt = np.ascontiguousarray(b.T)
    iw = np.minimum(a[:, 2:3], bt[2]) - np.maximum(a[:, 0:1], bt[0])
    ih = np.minimum(a[:, 3:4], bt[3]) - np.maximum(a[:, 1:2], bt[1])
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    inter = np.multiply(iw, ih, out=iw)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0) * np.maximum(a[:, 3] - a[:, 1], 0)
    area_b = np.maximum(bt[2] - bt[0], 0) * np.maximum(bt[3] - bt[1], 0)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou
