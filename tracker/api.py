"""Library API for people with their own detector loop: ``Tracker`` (one camera), ``MultiCameraTracker``.

    from tracker import Tracker
    tracker = Tracker(fps=30)                                  # or pass timestamp= to every update
    for image in frames:
        tracks = tracker.update(boxes_xyxy, scores, frame=image)
        for tid, box, row in zip(tracks.ids, tracks.xyxy, tracks.det_index):
            ...                                                # row: the input detection this track took

Detections may be given as plain numpy arrays (``(N, 4)`` boxes with ``scores``, or ``(N, 5)`` /
``(N, 6)`` rows ``x1, y1, x2, y2, score[, class]``), or as objects shaped like supervision's
``Detections`` (``xyxy``, ``confidence``, ``class_id``) or an Ultralytics ``Results``
(``boxes.xyxy``, ``boxes.conf``, ``boxes.cls``; torch tensors are moved to numpy). Neither package
is imported here. The class id of each input row is carried through to the output.

With an ``encoder`` (``tracker.ReIDEncoder`` or anything with ``embed(frames, boxes)``) person crops
are embedded inside ``update`` and appearance joins motion; ``MultiCameraTracker`` embeds the crops
of all cameras in one call and gives each person one global identity (``IdentityRegistry``).

Only numpy is needed here; the encoder brings its own dependencies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tracker.core.config import TrackerConfig
from tracker.core.ids import IdAllocator
from tracker.core.tracker import CameraTracker
from tracker.core.types import Detections, TrackOutput
from tracker.multicam.config import MulticamConfig


@dataclass(frozen=True)
class Tracks:
    """The tracks of one frame of one camera, one row per track.

    Attributes:
        ids: (M,) int64 track ids, unique within the tracker (never reused).
        global_ids: (M,) int64 identities across cameras and re-entries (``MultiCameraTracker``), else -1.
        xyxy: (M, 4) float32 boxes, left, top, right, bottom in pixels (the Kalman estimate after the update,
            or the detection box with ``tracker.output_box: detection``; the prediction when unmatched).
        scores: (M,) float32 score of the detection matched this frame (0 when only predicted).
        class_ids: (M,) int64 class of the detection the track last took (-1 when the input had none).
        det_index: (M,) int64 row of this frame's input that updated the track, -1 when only predicted.
        timestamp: seconds, the frame's time.
    """

    ids: np.ndarray
    global_ids: np.ndarray
    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    det_index: np.ndarray
    timestamp: float

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def _numpy(x) -> np.ndarray | None:
    """An array from numpy, lists or a torch tensor (``.cpu().numpy()``), without importing torch."""
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def parse_detections(detections, scores=None, class_ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores and class ids from any supported input.

    Args:
        detections: (N, 4) xyxy boxes (then ``scores`` is required), (N, 5) ``x1,y1,x2,y2,score`` or (N, 6)
            ``x1,y1,x2,y2,score,class`` rows; or an object with ``xyxy``/``confidence``/``class_id``
            (supervision) or ``boxes.xyxy``/``boxes.conf``/``boxes.cls`` (Ultralytics ``Results``, or a
            one-element list of them); or None (no detections).
        scores: (N,) scores in [0, 1] when ``detections`` holds only boxes; overrides the object's.
        class_ids: (N,) class ids; overrides the object's. -1 where unknown.
    Returns:
        ``xyxy`` (N, 4) float32 pixels, ``scores`` (N,) float32, ``class_ids`` (N,) int64.
    Raises:
        ValueError: shapes that do not fit, or boxes without scores.
    """
    cls = None
    if isinstance(detections, (list, tuple)) and len(detections) == 1 and hasattr(detections[0], "boxes"):
        detections = detections[0]  # model(image) returns a list of Results, one per image
    if detections is None:
        xyxy = np.zeros((0, 4), np.float32)
    elif hasattr(detections, "boxes") and hasattr(detections.boxes, "xyxy"):  # Ultralytics Results
        b = detections.boxes
        xyxy, found, cls = _numpy(b.xyxy), _numpy(b.conf), _numpy(getattr(b, "cls", None))
        scores = found if scores is None else scores
    elif hasattr(detections, "xyxy"):  # supervision Detections (or anything shaped like it)
        xyxy, found, cls = _numpy(detections.xyxy), _numpy(getattr(detections, "confidence", None)), \
            _numpy(getattr(detections, "class_id", None))
        scores = found if scores is None else scores
    else:
        arr = _numpy(detections).astype(np.float32, copy=False)
        if arr.size == 0:
            arr = arr.reshape(0, 4)
        if arr.ndim != 2 or arr.shape[1] not in (4, 5, 6):
            raise ValueError(f"detections: expected (N, 4), (N, 5) or (N, 6) rows, got shape {arr.shape}")
        xyxy = arr[:, :4]
        if arr.shape[1] >= 5 and scores is None:
            scores = arr[:, 4]
        if arr.shape[1] == 6:
            cls = arr[:, 5]
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    n = xyxy.shape[0]
    if scores is None:
        if n:
            raise ValueError("detections: boxes without scores; pass scores=(N,) or (N, 5) rows")
        scores = np.zeros(0, np.float32)
    scores = np.asarray(_numpy(scores), np.float32).reshape(-1)
    if class_ids is not None:
        cls = _numpy(class_ids)
    cls = np.full(n, -1, np.int64) if cls is None else np.asarray(cls).reshape(-1).astype(np.int64)
    if scores.shape[0] != n or cls.shape[0] != n:
        raise ValueError(f"detections: {n} boxes but {scores.shape[0]} scores and {cls.shape[0]} class ids")
    return xyxy, scores, cls


class _Clock:
    """Timestamps for callers that give none: the frame count over ``fps``, else the wall clock."""

    def __init__(self, fps: float | None):
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.frames = 0
        self.origin: float | None = None

    def __call__(self, timestamp: float | None) -> float:
        self.frames += 1
        if timestamp is not None:
            return float(timestamp)
        if self.fps is not None:
            return (self.frames - 1) / self.fps
        now = time.monotonic()
        if self.origin is None:
            self.origin = now
        return now - self.origin


class _ClassMemory:
    """The class id each track last took, so predicted-only rows keep theirs (bounded by the live tracks)."""

    def __init__(self):
        self.by_track: dict[int, int] = {}

    def apply(self, out: TrackOutput, class_ids: np.ndarray) -> np.ndarray:
        result = np.full(len(out), -1, np.int64)
        live = {}
        for i, (tid, row) in enumerate(zip(out.track_ids.tolist(), out.det_index.tolist(), strict=True)):
            c = int(class_ids[row]) if row >= 0 else self.by_track.get(tid, -1)
            result[i] = live[tid] = c
        self.by_track = live
        return result


def _tracks(out: TrackOutput, classes: np.ndarray, include_predicted: bool) -> Tracks:
    keep = out.confirmed if include_predicted else out.confirmed & (out.det_index >= 0)
    return Tracks(out.track_ids[keep], out.global_ids[keep], out.tlbr[keep], out.scores[keep], classes[keep],
                  out.det_index[keep], out.timestamp)


class Tracker:
    """One camera, driven by your own detector loop.

    Args:
        config: the tracker's settings (``TrackerConfig``; defaults as ``mctrack config`` lists them).
        encoder: optional ReID encoder (``ReIDEncoder(path)`` or any object with ``embed(frames, boxes)``);
            with it, ``update`` needs the frame and appearance joins motion.
        fps: frame rate, used for timestamps when ``update`` gets none (frame n at (n - 1) / fps). Without
            both, the wall clock at each call is the timestamp (right for live cameras).
        include_predicted: also return confirmed tracks not matched this frame (``det_index == -1``, box
            predicted by the motion model). Off: only tracks that took a detection (as MOT result files do).
    """

    def __init__(self, config: TrackerConfig | None = None, encoder=None, fps: float | None = None,
                 include_predicted: bool = False):
        self.camera = CameraTracker(config or TrackerConfig(), IdAllocator())
        self.encoder = encoder
        self.include_predicted = include_predicted
        self._clock = _Clock(fps)
        self._classes = _ClassMemory()

    def update(self, detections, scores=None, frame: np.ndarray | None = None, timestamp: float | None = None,
               class_ids=None) -> Tracks:
        """Track one frame.

        Args:
            detections: this frame's detections in any form ``parse_detections`` accepts (None: none).
            scores: (N,) when ``detections`` holds only boxes.
            frame: (H, W, 3) uint8 BGR image; needed when an encoder is set (crops are cut from it).
            timestamp: seconds since the start of the stream; default from ``fps`` or the wall clock.
            class_ids: (N,) class ids, carried to the output.
        Returns:
            ``Tracks`` of confirmed tracks; ``det_index`` points back to the input rows.
        """
        xyxy, conf, cls = parse_detections(detections, scores, class_ids)
        if self.encoder is not None and frame is None:
            raise ValueError("this Tracker has a ReID encoder: pass frame= (the BGR image) to update")
        ts = self._clock(timestamp)
        emb = None if self.encoder is None else self.encoder.embed([frame], [xyxy])[0]
        out = self.camera.update(Detections(xyxy, conf, ts, emb, self._clock.frames))
        return _tracks(out, self._classes.apply(out, cls), self.include_predicted)


class MultiCameraTracker:
    """Several cameras: ReID batched over all of them in one call, one global identity per person.

    Args:
        camera_ids: the cameras, in a fixed order.
        config: per-camera tracker settings (each camera gets its own tracker and id counter).
        multicam: identity registry settings (site topology, thresholds); ``enabled`` is implied.
        encoder: ReID encoder; without one the registry has no appearance and links little.
        identities: run the identity registry (off: ``global_ids`` stay -1, ids are per camera).
        fps: camera -> frame rate (or one rate for all) for timestamps when ``update`` gets none.
        include_predicted: as for ``Tracker``.
    """

    def __init__(self, camera_ids, config: TrackerConfig | None = None, multicam: MulticamConfig | None = None,
                 encoder=None, fps: float | Mapping[str, float] | None = None, include_predicted: bool = False,
                 identities: bool = True):
        from tracker.multicam.registry import IdentityRegistry

        self.camera_ids = list(camera_ids)
        if not self.camera_ids or len(set(self.camera_ids)) != len(self.camera_ids):
            raise ValueError(f"camera_ids must be unique and not empty, got {self.camera_ids}")
        cfg = config or TrackerConfig()
        self.trackers = {c: CameraTracker(cfg, IdAllocator()) for c in self.camera_ids}
        self.registry = IdentityRegistry(multicam or MulticamConfig(enabled=True)) if identities else None
        self.encoder = encoder
        self.include_predicted = include_predicted
        rates = fps if isinstance(fps, Mapping) else dict.fromkeys(self.camera_ids, fps)
        self._clocks = {c: _Clock(rates.get(c)) for c in self.camera_ids}
        self._classes = {c: _ClassMemory() for c in self.camera_ids}
        self.reid_seconds = 0.0  # time spent in the encoder so far (the pipeline reports it per stage)

    def step(self, detections: Mapping[str, Detections], images: Mapping[str, np.ndarray] | None = None,
             now: float | None = None) -> tuple[dict[str, TrackOutput], dict[str, np.ndarray | None]]:
        """One tick on ready ``Detections`` (the live pipeline's path): embed, track, resolve identities.

        Args:
            detections: camera -> that camera's ``Detections`` (embeddings None: they are computed here when
                an encoder and the camera's image are given).
            images: camera -> (H, W, 3) uint8 BGR frame for ReID crops.
            now: the registry's clock (default: the latest timestamp of the tick).
        Returns:
            camera -> ``TrackOutput`` with global ids, and camera -> the embeddings used (or None).
        """
        cams = [c for c in self.camera_ids if c in detections]
        unknown = set(detections) - set(self.camera_ids)
        if unknown:
            raise ValueError(f"unknown camera(s) {sorted(unknown)} (known: {self.camera_ids})")
        emb: dict[str, np.ndarray | None] = {c: detections[c].embeddings for c in cams}
        todo = [c for c in cams if emb[c] is None and images is not None and images.get(c) is not None]
        t0 = time.perf_counter()
        if self.encoder is not None and todo:
            found = self.encoder.embed([images[c] for c in todo], [detections[c].tlbr for c in todo])
            emb.update(zip(todo, found, strict=True))
        self.reid_seconds += time.perf_counter() - t0
        outputs = {}
        for c in cams:
            d = detections[c]
            if emb[c] is not None and d.embeddings is None:
                d = Detections(d.tlbr, d.scores, d.timestamp, emb[c], d.frame_index)
            outputs[c] = self.trackers[c].update(d)
        if self.registry is None:
            return outputs, emb
        if now is None:
            now = max((detections[c].timestamp for c in cams), default=0.0)
        return self.registry.update(now, outputs, emb), emb

    def update(self, detections: Mapping[str, object], frames: Mapping[str, np.ndarray] | None = None,
               timestamps: float | Mapping[str, float] | None = None) -> dict[str, Tracks]:
        """Track one tick of several cameras (any subset of them).

        Args:
            detections: camera -> detections in any form ``parse_detections`` accepts, or a
                ``(detections, scores)`` / ``(detections, scores, class_ids)`` tuple.
            frames: camera -> (H, W, 3) uint8 BGR image (needed for ReID).
            timestamps: seconds, one for all cameras or per camera; default from ``fps`` or the wall clock.
        Returns:
            camera -> ``Tracks`` with ``global_ids`` filled for every row.
        """
        dets, classes = {}, {}
        for cam, value in detections.items():
            if cam not in self._clocks:
                raise ValueError(f"unknown camera {cam!r} (known: {self.camera_ids})")
            args = value if isinstance(value, tuple) else (value,)
            xyxy, conf, cls = parse_detections(*args)
            ts = timestamps.get(cam) if isinstance(timestamps, Mapping) else timestamps
            clock = self._clocks[cam]
            dets[cam] = Detections(xyxy, conf, clock(ts), None, clock.frames)
            classes[cam] = cls
        if self.encoder is not None and not frames and any(len(d) for d in dets.values()):
            raise ValueError("this MultiCameraTracker has a ReID encoder: pass frames={camera: image}")
        outputs, _ = self.step(dets, frames)
        return {c: _tracks(out, self._classes[c].apply(out, classes[c]), self.include_predicted)
                for c, out in outputs.items()}
