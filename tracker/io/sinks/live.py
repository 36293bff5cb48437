"""The live view as a frame output: annotated MJPEG per camera, stats, /metrics (``tracker.io.liveview``)."""

from __future__ import annotations

import numpy as np

from tracker.config import OutputConfig
from tracker.io.liveview import LiveView
from tracker.io.sinks.base import FrameOutput


class LiveOutput(FrameOutput):
    """Serves ``output.http_host:http_port``; frames are annotated only while a viewer watches that camera."""

    def __init__(self, output: OutputConfig, camera_ids: list[str], console=None):
        self.view = LiveView(camera_ids, output.http_host, output.http_port, output.http_token,
                             output.http_user, output.http_password, console=console)

    def start(self) -> None:
        self.view.start()

    def wants(self, camera_id: str) -> bool:
        return self.view.wants_frames(camera_id)

    def write(self, camera_id: str, timestamp: float, annotated: np.ndarray) -> None:
        self.view.publish_frame(camera_id, annotated)

    def close(self) -> None:
        self.view.close()
