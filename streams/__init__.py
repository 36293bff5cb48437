"""Video inputs: each source yields Frame objects with a camera id, index and timestamp.

``SourceReader`` / ``open_source`` read any source on its own thread behind a bounded queue:

    reader = open_source("door", "rtsp://user:pw@10.0.0.5/stream1", read_timeout=5)
    while (frame := reader.get(timeout=0.1)) is not END:
        if frame is not None:
            ...                       # frame.camera_id, frame.index, frame.timestamp (s), frame.image (BGR)
    reader.health()                   # state, frames_in / dropped / skipped, reconnects, last_frame_age, last_error
    reader.close()

Files and image folders deliver every frame (``pace=True``: like a live camera); RTSP/HTTP
URLs and webcams keep the newest frames and reconnect by themselves; ``for frame in reader`` reads a
file to its end. ``streams.timeline.TimelineReader`` replays frame numbers without pictures (a detection
file alone). ``mask_url`` hides credentials in stream URLs; everything here logs and reports URLs masked.
"""

import importlib

# Names load on first use (PEP 562), so ``streams.errors`` / ``streams.masking`` import without OpenCV.
_EXPORTS = {
    "END": "frame", "SourceHealth": "frame", "SourceReader": "reader", "SourceState": "frame",
    "open_source": "reader", "Frame": "frame", "mask_text": "masking", "mask_url": "masking", "SourceError": "errors",
}

__all__ = [
    "SourceError", "END", "Frame", "SourceHealth", "SourceReader", "SourceState", "mask_text", "mask_url",
    "open_source",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"streams.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'streams' has no attribute {name!r}")
