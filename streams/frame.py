"""What every source yields (``Frame``, then ``END``) and reports (``SourceState``, ``SourceHealth``).

No OpenCV here, so a source that needs none (``streams.timeline``) imports without it. Indices are
1-based, as in MOTChallenge files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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


class _EndType:
    """Type of ``END``: returned by ``SourceReader.get`` once the source is finished."""

    _instance: _EndType | None = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "END"

    def __reduce__(self):
        return "END"


END = _EndType()


class SourceState(str, Enum):
    """Where a source stands. Compares equal to its string value ('streaming', ...)."""

    CONNECTING = "connecting"  # first open in progress (files: before the thread starts)
    STREAMING = "streaming"  # frames are flowing
    RECONNECTING = "reconnecting"  # the stream was lost or could not be opened; retrying with backoff
    FINISHED = "finished"  # file or folder read to the end, or the reader was closed
    FAILED = "failed"  # gave up: could not open/read and no retries left, or an error in the reader

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SourceHealth:
    """A snapshot of one source's health. Credentials are masked in every field."""

    camera_id: str
    source: str  # the source, URL credentials masked
    state: SourceState
    live: bool
    frames_in: int  # frames read from the source and queued (each got an index)
    frames_dropped: int  # queued frames discarded because newer ones arrived (live sources only)
    frames_skipped: int  # frames never queued: corrupt, and (live) blank, repeated, or stale backlog after connecting
    reconnects: int  # connection attempts after the first one (retries after a loss or failed open)
    connect_failures: int  # attempts that failed to open the source
    last_frame_age: float | None  # seconds since the last frame arrived; None before the first
    last_error: str | None  # the latest problem, one line, masked; stays set after recovery
    frame_size: tuple[int, int] | None  # (width, height) of the latest frame
    frames_corrupt: int = 0  # frames skipped because they could not be decoded or were truncated (files too)
