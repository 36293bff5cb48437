"""What the pipeline hands to the sinks each tick, and the private snapshots the writer threads read."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from streams.frame import Frame
from tracker.core.types import TrackOutput

SHOW_IDS = ("global_or_local", "local", "both")


@dataclass(frozen=True)
class CameraResult:
    """One camera's result for one tick.

    Attributes:
        camera_id: the camera.
        frame: the frame tracked (``image`` (H, W, 3) uint8 BGR; ``None`` skips video/live view for it).
            The image must not be modified after ``submit``; it is read by the frame thread.
        tracks: the tracker's output for that frame (rows with ``det_index >= 0`` were matched in this
            frame; ``det_index == -1`` rows are predicted-only confirmed tracks).
        capture_time: ``time.monotonic()`` when the frame was read from the source.
    """

    camera_id: str
    frame: Frame
    tracks: TrackOutput
    capture_time: float


@dataclass(frozen=True)
class CameraStats:
    """Per-camera pipeline statistics, a snapshot taken each tick (shown by the live view)."""

    camera_id: str
    source: str  # credentials already masked
    fps: float
    frames_in: int
    frames_dropped: int
    reconnects: int
    last_frame_age: float  # seconds
    latency_p50_ms: float
    latency_p95_ms: float
    state: str


@dataclass(frozen=True)
class Rows:
    """A private copy of one camera's track rows (the caller's arrays may be reused after submit).

    ``tlbr`` (M, 4) float32 pixels left, top, right, bottom; ``identity`` the id shown to users.
    """

    track_ids: np.ndarray
    global_ids: np.ndarray
    identity: np.ndarray
    tlbr: np.ndarray
    scores: np.ndarray
    det_index: np.ndarray
    confirmed: np.ndarray


@dataclass(frozen=True)
class TextItem:
    """One camera's tick for the text outputs."""

    camera_id: str
    frame_index: int
    timestamp: float
    rows: Rows


@dataclass(frozen=True)
class EventLines:
    """Events given as they are (the registry's corrections): whole JSON lines, serialised by the caller."""

    text: str


@dataclass(frozen=True)
class FrameJob:
    """One camera's tick for the frame outputs (video, live view)."""

    camera_id: str
    seq: int  # per camera, 1-based; gaps seen by the frame thread are dropped frames
    timestamp: float
    image: np.ndarray
    rows: Rows


def safe_name(camera_id: str) -> str:
    """A file-name-safe form of a camera id (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", camera_id).strip(".") or "camera"


def file_names(camera_ids: list[str]) -> dict[str, str]:
    """Camera id -> a unique, file-name-safe base name (``events`` is reserved for events.jsonl)."""
    names: dict[str, str] = {}
    used: set[str] = {"events"}
    for cam in camera_ids:
        base = name = safe_name(cam)
        k = 2
        while name.lower() in used:
            name = f"{base}_{k}"
            k += 1
        used.add(name.lower())
        names[cam] = name
    return names


def snapshot(tracks: TrackOutput, show_ids: str) -> Rows:
    """Copy a tracker's output; ``identity`` is the global id where resolved (unless ``show_ids == 'local'``)."""
    track_ids = np.array(tracks.track_ids, dtype=np.int64).reshape(-1)
    global_ids = np.array(tracks.global_ids, dtype=np.int64).reshape(-1)
    if show_ids == "local":
        identity = track_ids
    else:
        identity = np.where(global_ids >= 0, global_ids, track_ids)
    return Rows(track_ids, global_ids, identity, np.array(tracks.tlbr, dtype=np.float32).reshape(-1, 4),
                np.array(tracks.scores, dtype=np.float32).reshape(-1),
                np.array(tracks.det_index, dtype=np.int64).reshape(-1),
                np.array(tracks.confirmed, dtype=bool).reshape(-1))


def json_default(obj):
    """``json.dumps`` fallback: numpy scalars and arrays become numbers and lists, anything else its string."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
