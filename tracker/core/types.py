"""Data passed between pipeline stages: arrays, not lists of objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_array(name: str, value, dtype, shape_tail: tuple[int, ...], n: int | None) -> np.ndarray:
    arr = np.ascontiguousarray(value, dtype=dtype)
    if arr.ndim != 1 + len(shape_tail) or (shape_tail and arr.shape[1:] != shape_tail):
        raise ValueError(f"{name}: expected shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows, got {arr.shape[0]}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Detections:
    """Detections of one frame of one camera.

    Attributes:
        tlbr: (N, 4) float32, boxes as left, top, right, bottom in original-frame pixels.
        scores: (N,) float32 detector confidences in [0, 1].
        timestamp: seconds since the start of the stream (from the source, not the loop).
        embeddings: (N, D) float32 unit-norm appearance vectors, or None (motion only).
        frame_index: index of the frame in its stream (informational).
    """

    tlbr: np.ndarray
    scores: np.ndarray
    timestamp: float
    embeddings: np.ndarray | None = None
    frame_index: int = -1

    def __post_init__(self) -> None:
        tlbr = _as_array("tlbr", self.tlbr, np.float32, (4,), None)
        n = tlbr.shape[0]
        scores = _as_array("scores", self.scores, np.float32, (), n)
        object.__setattr__(self, "tlbr", tlbr)
        object.__setattr__(self, "scores", scores)
        if self.embeddings is not None:
            emb = np.ascontiguousarray(self.embeddings, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise ValueError(f"embeddings: expected shape ({n}, D), got {emb.shape}")
            emb.setflags(write=False)
            object.__setattr__(self, "embeddings", emb)
        if not np.isfinite(self.timestamp):
            raise ValueError(f"timestamp must be finite, got {self.timestamp}")

    def __len__(self) -> int:
        return self.tlbr.shape[0]

    @staticmethod
    def empty(timestamp: float, dim: int | None = None, frame_index: int = -1) -> Detections:
        emb = None if dim is None else np.zeros((0, dim), np.float32)
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), timestamp, emb, frame_index)


@dataclass(frozen=True)
class TrackOutput:
    """Tracks reported for one frame of one camera (one row per track).

    Attributes:
        track_ids: (M,) int64 local ids, unique within the camera's id allocator.
        global_ids: (M,) int64 global identities, -1 until the identity registry resolves them.
        tlbr: (M, 4) float32 boxes, left, top, right, bottom in pixels. For rows with
            ``det_index >= 0`` this is the detection box; otherwise the Kalman prediction.
        scores: (M,) float32 score of the matched detection (0 when only predicted).
        det_index: (M,) int64 index into the frame's Detections, -1 when only predicted.
        confirmed: (M,) bool, True once a track has been confirmed.
        timestamp: seconds, the frame's timestamp.
    """

    track_ids: np.ndarray
    global_ids: np.ndarray
    tlbr: np.ndarray
    scores: np.ndarray
    det_index: np.ndarray
    confirmed: np.ndarray
    timestamp: float

    def __len__(self) -> int:
        return self.track_ids.shape[0]
