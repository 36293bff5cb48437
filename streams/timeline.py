"""A camera without pictures: frames 1..N at ``(index - 1) / fps`` seconds with no image.

For replaying a detection file when there is no video (MOTChallenge detections alone, as in
``mctrack track --dets D --fps F``): the pipeline tracks on motion, nothing is drawn or embedded.
Same interface as ``SourceReader`` for the parts the pipeline uses; files-like (never drops, not live).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from streams.errors import SourceError
from streams.frame import END, Frame, SourceHealth, SourceState


class TimelineReader:
    """``frame_count`` image-less frames of camera ``camera_id`` at ``fps`` (timestamps ``(i - 1) / fps``)."""

    live = False
    frame_size = None

    def __init__(self, camera_id: str, fps: float, frame_count: int):
        if not fps or not fps > 0:
            raise SourceError(f"camera {camera_id}: a camera without a source (detections only) needs fps > 0")
        if frame_count < 0:
            raise SourceError(f"camera {camera_id}: frame_count must be >= 0, got {frame_count}")
        self.camera_id = str(camera_id)
        self.source = "(detections only)"
        self.fps = self.nominal_fps = float(fps)
        self.frame_count = int(frame_count)
        self._next = 1
        self._closed = False

    def open(self) -> TimelineReader:
        return self

    def get(self, timeout: float | None = None):
        """The next frame, or ``END`` after the last one (never waits)."""
        if self._closed or self._next > self.frame_count:
            return END
        i, self._next = self._next, self._next + 1
        return Frame(self.camera_id, i, (i - 1) / self.fps, None, time.monotonic())

    def __iter__(self) -> Iterator[Frame]:
        while (item := self.get()) is not END:
            yield item

    def health(self) -> SourceHealth:
        done = self._closed or self._next > self.frame_count
        return SourceHealth(camera_id=self.camera_id, source=self.source,
                            state=SourceState.FINISHED if done else SourceState.STREAMING, live=False,
                            frames_in=self._next - 1, frames_dropped=0, frames_skipped=0, reconnects=0,
                            connect_failures=0, last_frame_age=None, last_error=None, frame_size=None)

    def close(self, timeout: float = 0.0) -> None:
        self._closed = True
