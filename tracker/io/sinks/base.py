"""The two kinds of output behind ``Sinks``: text outputs (on the text thread) and frame outputs
(on the frame thread). Each output writes one thing; ``Sinks`` owns the queues and threads.

A write that fails raises ``OSError`` with ``filename`` set to what could not be written; ``Sinks``
logs it once and stops the outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracker.io.sinks.records import EventLines, FrameJob, TextItem


class TextOutput:
    """Writes part of every tick's text (MOT rows, events). Never drops anything."""

    def open(self) -> None:
        """Create the files (called once, before the writer thread starts)."""

    def write(self, batch: list[TextItem | EventLines], shutdown: bool = False) -> None:
        """Write one batch of ticks in order; ``shutdown``: the last call, the run is ending."""

    def close(self, sync: bool = True) -> None:
        """Close the files (fsync when ``sync``)."""

    def paths(self) -> dict[str, Path]:
        """What this output writes: key (``mot:<camera>``, ``events``) -> path."""
        return {}


class FrameOutput:
    """Consumes annotated frames (the annotated video, the live view). May drop frames when behind."""

    def start(self) -> None:
        """Open what it needs (sockets, ...) before the frame thread starts."""

    def wants(self, camera_id: str) -> bool:
        """True when this output would use an annotated frame of ``camera_id`` now (annotation costs CPU)."""
        return True

    def write(self, camera_id: str, timestamp: float, annotated: np.ndarray) -> None:
        """Take one annotated frame, (H, W, 3) uint8 BGR."""

    def consume(self, job: FrameJob) -> None:
        """Take one tick's raw frame and rows of one camera, before annotation (the identity console)."""

    def check(self) -> None:
        """Raise ``OSError`` when the output broke behind our back (its file was deleted)."""

    def close(self) -> None:
        """Finish and release everything (called from the frame thread's end, or at close)."""

    def paths(self) -> dict[str, Path]:
        return {}
