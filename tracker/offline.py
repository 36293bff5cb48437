"""In-process replay of a MOTChallenge detection file, for benchmarks that run thousands of sequences.

``mctrack track`` runs the live pipeline (``tracker.pipeline``) on the file instead; both step the same
``CameraTracker`` with the same timestamps (frame ``f`` at ``(f - 1) / fps``), and
``tests/test_cli.py`` checks that they write the same rows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import numpy as np

from tracker.core.config import TrackerConfig
from tracker.core.ids import IdAllocator
from tracker.core.tracker import CameraTracker
from tracker.core.types import Detections

DetsByFrame = dict[int, tuple[np.ndarray, np.ndarray]]


def progress(iterable: Iterable, total: int | None, desc: str, enabled: bool = True):
    """tqdm progress bar on stderr when enabled (and installed); otherwise the plain iterable."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a declared dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="frame", file=sys.stderr, leave=False,
                disable=None)


def track_sequence(dets: DetsByFrame, fps: float, config: TrackerConfig | None = None,
                   embeddings: dict[int, np.ndarray] | None = None, n_frames: int | None = None,
                   show_progress: bool = False) -> np.ndarray:
    """Track one sequence; frame ``f`` has timestamp ``(f - 1) / fps`` seconds.

    Returns:
        (M, 7) float64 rows ``frame, id, left, top, width, height, score`` for confirmed tracks
        matched to a detection in that frame.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    tracker = CameraTracker(config or TrackerConfig(), IdAllocator())
    last = n_frames or (max(dets) if dets else 0)
    rows = []
    empty_box = np.zeros((0, 4), np.float32)
    empty_score = np.zeros(0, np.float32)
    for f in progress(range(1, last + 1), last, "tracking", show_progress):
        tlbr, scores = dets.get(f, (empty_box, empty_score))
        emb = embeddings.get(f) if embeddings is not None else None
        out = tracker.update(Detections(tlbr, scores, (f - 1) / fps, emb, f))
        keep = out.confirmed & (out.det_index >= 0)
        if keep.any():
            b = out.tlbr[keep].astype(np.float64)
            rows.append(np.column_stack([np.full(keep.sum(), f), out.track_ids[keep], b[:, 0], b[:, 1],
                                         b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], out.scores[keep]]))
    return np.concatenate(rows) if rows else np.zeros((0, 7))

