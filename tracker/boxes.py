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
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def clip_tlbr(tlbr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip (N,4) tlbr boxes to the image ``[0, width] x [0, height]`` (pixels)."""
    out = np.array(tlbr, dtype=np.float32, copy=True)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out
