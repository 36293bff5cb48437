"""Association on cost matrices: gating by a large constant, then a linear assignment (lap).

Pure functions over arrays; the metric is computed by the caller and passed in.
"""

from __future__ import annotations

import lap
import numpy as np

from tracker.core.boxes import iou_matrix

#: cost given to forbidden pairs; anything above a threshold is never matched.
GATED = 1e5


def linear_assignment(cost: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching, accepting only pairs with cost <= ``threshold``.

    Args:
        cost: (R, C) float cost matrix (rows: tracks, columns: detections). Use ``GATED``
            (or any value above ``threshold``) for forbidden pairs.
        threshold: largest cost accepted for a pair.
    Returns:
        matches (K, 2) int64 of (row, col); unmatched rows (int64); unmatched cols (int64).
    """
    cost = np.asarray(cost, dtype=np.float64)
    r, c = cost.shape
    if r == 0 or c == 0:
        return np.zeros((0, 2), np.int64), np.arange(r, dtype=np.int64), np.arange(c, dtype=np.int64)
    # A pair costing more than the threshold is never chosen (leaving both unmatched costs exactly
    # the threshold), so clip huge gate values: lapjv is 10x slower with 1e5-sized entries.
    clipped = np.minimum(cost, threshold + 1.0)
    _, x, _ = lap.lapjv(clipped, extend_cost=True, cost_limit=threshold)
    rows = np.nonzero(x >= 0)[0]
    cols = x[rows]
    keep = cost[rows, cols] <= threshold
    rows, cols = rows[keep], cols[keep]
    matches = np.stack([rows, cols], axis=1).astype(np.int64)
    row_free = np.ones(r, bool)
    row_free[rows] = False
    col_free = np.ones(c, bool)
    col_free[cols] = False
    return matches, np.nonzero(row_free)[0], np.nonzero(col_free)[0]


def iou_cost(tracks_tlbr: np.ndarray, dets_tlbr: np.ndarray) -> np.ndarray:
    """(T, N) IoU distance ``1 - IoU`` between track and detection boxes (tlbr pixels)."""
    return 1.0 - iou_matrix(tracks_tlbr, dets_tlbr)


def fuse_costs(appearance: np.ndarray | None, motion: np.ndarray, weight: float,
               has_appearance: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum ``weight * appearance + (1 - weight) * motion``.

    Args:
        appearance: (T, N) cosine distances in [0, 2], or None (motion only).
        motion: (T, N) motion cost in [0, 1] (e.g. IoU distance).
        weight: in [0, 1]; raising it trusts appearance more than motion.
        has_appearance: (T,) bool, rows whose track has an appearance memory; other rows use
            motion only.
    Returns:
        (T, N) float64 fused cost.
    """
    if appearance is None or weight == 0.0:
        return np.asarray(motion, np.float64).copy()
    fused = weight * appearance + (1.0 - weight) * motion
    if has_appearance is not None and not has_appearance.all():
        fused[~has_appearance] = motion[~has_appearance]
    return fused
