"""``Frame``: what every source yields. Indices are 1-based, as in MOTChallenge files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``image`` is (H, W, 3) uint8 BGR (None for a camera replayed from detections
    alone, ``streams.timeline``); ``timestamp`` in seconds, ``(index - 1) / fps`` for files and folders.

    ``capture_time``: ``time.monotonic()`` when a reader thread got the frame from its source
    (None for the synchronous sources), for measuring latency through the pipeline.
    """

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray
    capture_time: float | None = None
