"""Outputs of the live pipeline, one writer per output behind ``Sinks`` (``writer``): MOT files (``mot``),
events (``events``), annotated video (``video``) and the live view (``live``)."""

from tracker.io.sinks.events import SEEN_RETENTION
from tracker.io.sinks.records import CameraResult, CameraStats, safe_name
from tracker.io.sinks.writer import TEXT_HIGH_WATER, Sinks

__all__ = ["SEEN_RETENTION", "TEXT_HIGH_WATER", "CameraResult", "CameraStats", "Sinks", "safe_name"]
