"""``<camera>.mp4``: the annotated frames of each camera, mp4v at the camera's nominal frame rate."""

from __future__ import annotations

import errno
from pathlib import Path

import cv2
import numpy as np

from tracker.io.sinks.base import FrameOutput

DEFAULT_VIDEO_FPS = 10.0


class VideoOutput(FrameOutput):
    """One annotated video per camera; a camera that reconnects at another size is resized to its first size."""

    def __init__(self, out_dir: Path, names: dict[str, str], video_fps: dict[str, float] | None = None):
        self.out_dir = Path(out_dir)
        self.names = names
        self.video_fps = dict(video_fps or {})
        self.writers: dict[str, cv2.VideoWriter] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.video_paths: dict[str, Path] = {}
        self.written = dict.fromkeys(names, 0)

    def write(self, camera_id: str, timestamp: float, annotated: np.ndarray) -> None:
        h, w = annotated.shape[:2]
        writer = self.writers.get(camera_id)
        if writer is None:
            path = self.out_dir / f"{self.names[camera_id]}.mp4"
            fps = float(self.video_fps.get(camera_id) or DEFAULT_VIDEO_FPS)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise OSError(errno.EIO, "cannot open the video writer (mp4v); does the folder exist and is the "
                                         "codec available?", str(path))
            self.writers[camera_id], self.sizes[camera_id] = writer, (w, h)
            self.video_paths[camera_id] = path
        if (w, h) != self.sizes[camera_id]:  # a camera that reconnected at another resolution
            annotated = cv2.resize(annotated, self.sizes[camera_id])
        writer.write(annotated)
        self.written[camera_id] += 1

    def check(self) -> None:
        for cam, p in list(self.video_paths.items()):
            if cam in self.writers and not p.exists():
                raise OSError(errno.ENOENT, "the file was deleted while running (was the output folder removed?)",
                              str(p))

    def close(self) -> None:
        for w in self.writers.values():
            w.release()

    def paths(self) -> dict[str, Path]:
        return {f"video:{cam}": p for cam, p in list(self.video_paths.items())}  # the frame thread may add one
