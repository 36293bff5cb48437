"""Offline frame sources: a video file or a folder of images (MOTChallenge ``img1/``).

Both are iterables of ``Frame`` with an explicit lifecycle (``open`` / iterate /
``close``, also usable as a context manager). Frames are never dropped. Indices are
1-based, as in MOTChallenge files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streams.errors import SourceError

_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``image`` is (H, W, 3) uint8 BGR; ``timestamp`` in seconds.

    ``capture_time``: ``time.monotonic()`` when a reader thread got the frame from its source
    (None for the synchronous sources), for measuring latency through the pipeline.
    """

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray
    capture_time: float | None = None


class VideoFileSource:
    """Decode a video file frame by frame. Timestamps come from ``fps`` when given, else the file."""

    def __init__(self, path: str | Path, camera_id: str = "cam", fps: float | None = None):
        self.path = Path(path)
        self.camera_id = camera_id
        self.fps = fps
        self._cap = None

    def open(self) -> VideoFileSource:
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot open video file {self.path} (unsupported or corrupt)")
        if not self.fps:
            self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        self._cap = cap
        return self

    def __len__(self) -> int:
        if self._cap is None:
            self.open()
        return int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def __iter__(self) -> Iterator[Frame]:
        if self._cap is None:
            self.open()
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok:
                break
            index += 1
            if self.fps:
                ts = (index - 1) / self.fps
            else:
                ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield Frame(self.camera_id, index, ts, image)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


class FrameDirSource:
    """Read images from a folder in name order; frame n is the n-th file (1-based). Needs ``fps``."""

    def __init__(self, path: str | Path, camera_id: str = "cam", fps: float = 30.0):
        self.path = Path(path)
        self.camera_id = camera_id
        self.fps = fps
        self._files: list[Path] | None = None

    def open(self) -> FrameDirSource:
        if not self.path.is_dir():
            raise SourceError(f"frame folder not found: {self.path}")
        self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in _IMAGE_EXT)
        if not self._files:
            raise SourceError(f"no images ({', '.join(sorted(_IMAGE_EXT))}) in {self.path}")
        return self

    def __len__(self) -> int:
        if self._files is None:
            self.open()
        return len(self._files)

    def __iter__(self) -> Iterator[Frame]:
        if self._files is None:
            self.open()
        for i, f in enumerate(self._files, start=1):
            image = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"cannot decode image {f}")
            yield Frame(self.camera_id, i, (i - 1) / self.fps, image)

    def close(self) -> None:
        self._files = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


def open_frames(video: str | None = None, frames: str | None = None, fps: float | None = None,
                camera_id: str = "cam"):
    """Build the source for ``--video`` or ``--frames``; returns None when neither is given."""
    if video:
        return VideoFileSource(video, camera_id, fps)
    if frames:
        return FrameDirSource(frames, camera_id, fps or 30.0)
    return None
