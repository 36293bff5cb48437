"""Person detector: YOLOv8 / YOLO11 over ONNX Runtime (default) or Ultralytics.

All frames of a pipeline tick (one per camera, any sizes) go through one batched call:
each frame is letterboxed (ratio kept, grey 114 padding, RGB, /255, NCHW float32) into a
shared input, the model runs once (in chunks for fixed-batch models), and its raw head
output ``[B, 4 + classes, anchors]`` (centre x, centre y, width, height in input pixels,
then one sigmoid score per class, no objectness) is decoded, filtered by class and score,
reduced by non-maximum suppression and mapped back to each frame's own pixels.

The ONNX path imports only numpy, OpenCV and onnxruntime; ``torch`` and ``ultralytics``
are imported lazily by the Ultralytics backend alone.
"""

from __future__ import annotations

import ast
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.core.boxes import iou_matrix
from tracker.core.types import _as_array
from tracker.errors import UserError
from tracker.models.onnx_session import create_session

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "ultralytics")
PAD_VALUE = 114  # letterbox grey, as the YOLO models were trained with
DEFAULT_IMGSZ = 640
# OpenCV threads used for letterboxing (cv2.setNumThreads, process-wide). OpenCV's own thread pool
# competes with ONNX Runtime's spinning intra-op threads for the cores, and the resizes it would
# parallelise take about 1 ms per frame anyway. Measured on the 2-core development machine
# (yolov8n fp32 dynamic ONNX, PETS09 768x576 frames at 640, ORT on all cores, ms/frame end to end):
# quiet machine, batch 1/4: 40.0/41.9 with 1 thread vs 47.9/48.0 with OpenCV's default of 2;
# loaded machine, interleaved in one process, batch 4, median of 8: 0 threads 104, 1 thread 113,
# 2 threads 129. So OpenCV's pool costs 15-20 % of inference here; 1 (sequential) is the default.
OPENCV_THREADS = 1


@dataclass(frozen=True)
class FrameDetections:
    """Detector output for one frame (arrays, read-only).

    Attributes:
        tlbr: (N, 4) float32 boxes as left, top, right, bottom in original-frame pixels,
            clipped to the frame.
        scores: (N,) float32 class confidences in [0, 1], highest first.
        class_ids: (N,) int64 class indices of the model (COCO: 0 = person).
    """

    tlbr: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self) -> None:
        tlbr = _as_array("tlbr", self.tlbr, np.float32, (4,), None)
        n = tlbr.shape[0]
        object.__setattr__(self, "tlbr", tlbr)
        object.__setattr__(self, "scores", _as_array("scores", self.scores, np.float32, (), n))
        object.__setattr__(self, "class_ids", _as_array("class_ids", self.class_ids, np.int64, (), n))

    def __len__(self) -> int:
        return self.tlbr.shape[0]

    @staticmethod
    def empty() -> FrameDetections:
        return FrameDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


class Detector:
    """Detect objects (by default people) in a batch of frames with a YOLOv8/YOLO11 model.

    Args:
        model: path to the model file: ``.onnx`` for the ONNX backend; anything Ultralytics
            loads (``.pt``, ``.onnx``, ``.engine``...) for the Ultralytics backend.
        backend: "auto" (``.onnx`` → "onnx", anything else → "ultralytics"), "onnx" or "ultralytics".
        providers: ONNX Runtime providers in preference order among "tensorrt", "cuda", "cpu";
            unavailable ones are skipped (the one used is logged and kept in ``provider``).
            The Ultralytics backend runs on CUDA device 0 when "cuda" or "tensorrt" is listed
            and torch sees a GPU, else on the CPU.
        cpu_threads: CPU inference threads (0 = the runtime's default, all cores).
        conf: minimum class score kept. The default 0.1 matches the tracker's ``low_score``
            (ByteTrack's second stage uses detections between low_score and high_score), so it
            must not exceed that. Higher: fewer boxes and less decoding/NMS time, but people
            in occlusion or far away are lost; lower: more recall, more clutter boxes.
        iou: NMS threshold; a box overlapping a higher-scored box of the same class by more
            than this IoU is dropped. Higher: keeps people standing close together (and more
            duplicate boxes on one person); lower: fewer duplicates, merges people in groups.
        classes: class indices to keep (COCO 0 = person); None keeps every class.
        imgsz: model input size, int or (height, width). Default: the model's fixed input
            size, else its ``imgsz`` metadata, else 640. For models with a dynamic input size
            each batch is letterboxed to the smallest stride multiple that holds every frame
            at this scale (as Ultralytics does), e.g. 640x480 for 4:3 frames at 640.
            Higher: finds smaller (farther) people, costs about quadratically more time.
        max_det: most boxes kept per frame (highest scores). Higher: safe in crowds, more work
            downstream when the threshold is low.
        max_batch: most frames per inference call for dynamic-batch models (bounds memory);
            fixed-batch models always run in chunks of their batch size.
        opencv_threads: threads OpenCV may use for resizing (process-wide ``cv2.setNumThreads``);
            None leaves OpenCV's setting alone. See OPENCV_THREADS for the measurement.

    Attributes:
        backend: "onnx" or "ultralytics" (resolved from "auto").
        provider: what runs the model, e.g. "CPUExecutionProvider" or "torch:cuda:0".
        names: {class index: class name} from the model, when it has them.
        imgsz: (height, width) used for letterboxing.
        fixed_batch: the model's fixed batch size, or None when dynamic.
        last_timing_ms: {"pre", "infer", "post"} milliseconds of the last ``detect`` call.
    """

    def __init__(self, model: str | os.PathLike, backend: str = "auto",
                 providers: Sequence[str] = ("cuda", "cpu"), cpu_threads: int = 0, conf: float = 0.1,
                 iou: float = 0.7, classes: Sequence[int] | None = (0,), imgsz: int | Sequence[int] | None = None,
                 max_det: int = 300, max_batch: int = 32, opencv_threads: int | None = OPENCV_THREADS):
        path = Path(model)
        if not path.is_file():
            raise UserError(f"detector model not found: {path}")
        if backend not in BACKENDS:
            raise UserError(f"unknown detector backend '{backend}' (allowed: {', '.join(BACKENDS)})")
        if not 0.0 <= conf <= 1.0:
            raise UserError(f"detector conf must be in [0, 1], got {conf}")
        if not 0.0 < iou <= 1.0:
            raise UserError(f"detector iou must be in (0, 1], got {iou}")
        if max_det < 1 or max_batch < 1:
            raise UserError(f"detector max_det and max_batch must be >= 1, got {max_det}, {max_batch}")
        if classes is not None and (len(classes) == 0 or min(classes) < 0):
            raise UserError(f"detector classes must be non-negative class indices (None = all), got {classes}")
        if backend == "auto":
            backend = "onnx" if path.suffix.lower() == ".onnx" else "ultralytics"
        if opencv_threads is not None:
            cv2.setNumThreads(int(opencv_threads))
        self.path = path
        self.backend = backend
        self.conf = float(conf)
        self.iou = float(iou)
        self.classes = None if classes is None else tuple(int(c) for c in classes)
        self.max_det = int(max_det)
        self.max_batch = int(max_batch)
        self.last_timing_ms = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        # Filled in by the backend:
        self.provider = ""
        self.names: dict[int, str] = {}
        self.imgsz = (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
        self.stride = 32
        self.fixed_batch: int | None = None
        self.dynamic_size = False
        user_imgsz = _parse_imgsz(imgsz) if imgsz is not None else None
        if backend == "onnx":
            self._impl = _OnnxBackend(self, path, tuple(providers), cpu_threads, user_imgsz)
        else:
            self._impl = _UltralyticsBackend(self, path, tuple(providers), cpu_threads, user_imgsz)
        if self.classes is not None and self.names and max(self.classes, default=0) >= len(self.names):
            raise UserError(f"{path.name}: class {max(self.classes)} requested, the model has {len(self.names)} "
                            "classes")

    def detect(self, frames_bgr: Sequence[np.ndarray]) -> list[FrameDetections]:
        """Detect in all frames with one batched model call (chunked for fixed-batch models).

        Args:
            frames_bgr: list of (H_i, W_i, 3) uint8 BGR images; sizes may differ.
        Returns:
            one FrameDetections per frame, in order: ``tlbr`` (N, 4) float32 left, top, right,
            bottom in that frame's pixels; ``scores`` (N,) float32; ``class_ids`` (N,) int64.
        """
        frames = list(frames_bgr)
        for i, f in enumerate(frames):
            if not (isinstance(f, np.ndarray) and f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8):
                raise ValueError(f"frame {i}: expected an (H, W, 3) uint8 BGR image, got "
                                 f"{getattr(f, 'shape', type(f))} {getattr(f, 'dtype', '')}")
        if not frames:
            return []
        return self._impl.detect(frames)

    def __repr__(self) -> str:
        return (f"Detector({self.path.name}, backend={self.backend}, provider={self.provider}, "
                f"imgsz={self.imgsz}, batch={self.fixed_batch or 'dynamic'}, conf={self.conf}, iou={self.iou})")


def _parse_imgsz(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        hw = (int(value), int(value))
    else:
        vals = [int(v) for v in value]
        if len(vals) not in (1, 2):
            raise UserError(f"detector imgsz must be one size or (height, width), got {value}")
        hw = (vals[0], vals[-1])
    if min(hw) < 32:
        raise UserError(f"detector imgsz must be at least 32 pixels, got {value}")
    return hw


def _meta_literal(meta: dict[str, str], key: str):
    try:
        return ast.literal_eval(meta[key]) if key in meta else None
    except (ValueError, SyntaxError):
        return None


# --------------------------------------------------------------------------------------------
# Letterbox, decoding and NMS: pure functions over arrays.


def letterbox_batch(frames_bgr: Sequence[np.ndarray], imgsz: tuple[int, int], stride: int, rect: bool,
                    out_dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox frames into one model input.

    Each frame is scaled by ``min(imgsz_h / H, imgsz_w / W)`` (ratio kept), centred and padded
    with grey 114. With ``rect`` the canvas is the smallest multiple of ``stride`` holding every
    scaled frame (for dynamic-size models); otherwise it is ``imgsz``.

    Args:
        frames_bgr: list of (H_i, W_i, 3) uint8 BGR images.
        imgsz: (height, width) target size in pixels.
        stride: the model's largest stride (canvas multiple with ``rect``).
        rect: shrink the canvas to the frames (dynamic input size only).
    Returns:
        x: (B, 3, h, w) ``out_dtype`` RGB in [0, 1].
        geometry: (B, 6) float64 per frame: left pad, top pad, scale x, scale y (input pixels
            per frame pixel), frame width, frame height — what ``undo_letterbox`` needs.
    """
    th, tw = imgsz
    n = len(frames_bgr)
    geometry = np.empty((n, 6), np.float64)
    sizes = []
    for k, f in enumerate(frames_bgr):
        h, w = f.shape[:2]
        r = min(th / h, tw / w)
        nw, nh = max(1, round(w * r)), max(1, round(h * r))
        sizes.append((nw, nh))
        geometry[k, 2:] = nw / w, nh / h, w, h
    if rect:
        ch = max(math.ceil(nh / stride) * stride for _, nh in sizes)
        cw = max(math.ceil(nw / stride) * stride for nw, _ in sizes)
    else:
        ch, cw = th, tw
    buf = np.full((n, ch, cw, 3), PAD_VALUE, np.uint8)
    for k, (f, (nw, nh)) in enumerate(zip(frames_bgr, sizes, strict=True)):
        left = round((cw - nw) / 2 - 0.1)
        top = round((ch - nh) / 2 - 0.1)
        geometry[k, :2] = left, top
        dst = buf[k, top:top + nh, left:left + nw]
        if f.shape[:2] == (nh, nw):
            dst[...] = f
        else:
            cv2.resize(f, (nw, nh), dst=dst, interpolation=cv2.INTER_LINEAR)
    # BGR -> RGB, HWC -> CHW, one contiguous copy, then scale in place.
    x = np.ascontiguousarray(buf[..., ::-1].transpose(0, 3, 1, 2)).astype(out_dtype)
    x *= out_dtype(1.0 / 255.0)
    return x, geometry


def undo_letterbox(tlbr: np.ndarray, geometry_row: np.ndarray) -> np.ndarray:
    """Map (N, 4) tlbr boxes from model-input pixels back to frame pixels, clipped to the frame.

    Args:
        tlbr: (N, 4) float boxes, left, top, right, bottom in input pixels.
        geometry_row: (6,) one row of ``letterbox_batch``'s geometry.
    Returns:
        (N, 4) float32 tlbr in frame pixels.
    """
    left, top, sx, sy, w, h = geometry_row
    out = np.empty((len(tlbr), 4), np.float32)
    out[:, 0] = np.clip((tlbr[:, 0] - left) / sx, 0, w)
    out[:, 1] = np.clip((tlbr[:, 1] - top) / sy, 0, h)
    out[:, 2] = np.clip((tlbr[:, 2] - left) / sx, 0, w)
    out[:, 3] = np.clip((tlbr[:, 3] - top) / sy, 0, h)
    return out


def nms(tlbr: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        tlbr: (N, 4) float boxes, left, top, right, bottom (any consistent unit).
        scores: (N,) float scores.
        iou_threshold: a box whose IoU with an already kept, higher-scored box exceeds this is
            dropped. Higher: keeps more overlapping boxes.
        max_keep: stop after this many kept boxes.
    Returns:
        (K,) int64 indices of the kept boxes, highest score first.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(tlbr, np.float64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    limit = max_keep or n
    while order.size and len(keep) < limit:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        order = rest[iou_matrix(boxes[i:i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, np.int64)


def decode_yolo(pred: np.ndarray, conf: float, iou: float, classes: tuple[int, ...] | None,
                max_det: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one frame of a YOLOv8/YOLO11 head and run per-class NMS.

    Args:
        pred: (4 + C, A) float array: cx, cy, w, h in input pixels, then C class scores in
            [0, 1], for A anchors.
        conf: minimum score kept (see ``Detector``).
        iou: NMS IoU threshold, per class (class-agnostic when only one class is kept).
        classes: class indices to keep, or None for all.
        max_det: most boxes returned.
    Returns:
        tlbr (K, 4) float64 in input pixels, scores (K,) float32, class_ids (K,) int64;
        highest score first.
    """
    if classes is not None and len(classes) == 1:
        c = classes[0]
        s = pred[4 + c]
        idx = np.flatnonzero(s > conf)
        scores = s[idx]
        cls = np.full(len(idx), c, np.int64)
    else:
        cls_rows = pred[4:] if classes is None else pred[[4 + c for c in classes]]
        best = cls_rows.argmax(0)
        s = np.take_along_axis(cls_rows, best[None], 0)[0]
        idx = np.flatnonzero(s > conf)
        scores = s[idx]
        best = best[idx]
        cls = best.astype(np.int64) if classes is None else np.asarray(classes, np.int64)[best]
    if not len(idx):
        return np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64)
    cxcywh = pred[:4, idx].astype(np.float64)
    half_w, half_h = cxcywh[2] / 2, cxcywh[3] / 2
    tlbr = np.stack([cxcywh[0] - half_w, cxcywh[1] - half_h, cxcywh[0] + half_w, cxcywh[1] + half_h], 1)
    if len(np.unique(cls)) > 1:
        # Per-class NMS in one pass: shift each class to its own far-apart region.
        offset = (cls * (tlbr.max() + 1.0 + abs(tlbr.min())))[:, None]
        keep = nms(tlbr + offset, scores, iou, max_det)
    else:
        keep = nms(tlbr, scores, iou, max_det)
    return tlbr[keep], scores[keep].astype(np.float32), cls[keep]


# --------------------------------------------------------------------------------------------
# Backends


class _OnnxBackend:
    def __init__(self, det: Detector, path: Path, providers: tuple[str, ...], cpu_threads: int,
                 user_imgsz: tuple[int, int] | None):
        self.det = det
        self.session = create_session(path, providers, cpu_threads)
        det.provider = self.session.get_providers()[0]
        inp = self.session.get_inputs()[0]
        outs = self.session.get_outputs()
        if len(inp.shape) != 4 or (isinstance(inp.shape[1], int) and inp.shape[1] != 3):
            raise UserError(f"{path.name}: not a YOLO detector (expected an image input [B,3,H,W], got {inp.shape})")
        out_shape = outs[0].shape
        if len(outs) != 1 or len(out_shape) != 3:
            raise UserError(f"{path.name}: not a YOLOv8/YOLO11 detector (expected one output [B, 4+classes, "
                            f"anchors], got {[o.shape for o in outs]}); export it without NMS (nms=False)")
        meta = self.session.get_modelmeta().custom_metadata_map
        if str(meta.get("end2end", "False")).lower() == "true":
            raise UserError(f"{path.name}: exported with built-in NMS (end2end); export it with nms=False")
        names = _meta_literal(meta, "names")
        det.names = {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}
        stride = _meta_literal(meta, "stride")
        det.stride = int(max(stride) if isinstance(stride, (list, tuple)) else stride or 32)
        c1, anchors = out_shape[1], out_shape[2]
        if isinstance(c1, int) and isinstance(anchors, int) and c1 > anchors:
            raise UserError(f"{path.name}: output {out_shape} looks like [B, anchors, outputs] (YOLOv5-style, or "
                            "transposed); only YOLOv8/YOLO11 heads [B, 4+classes, anchors] are supported")
        if isinstance(c1, int) and (c1 < 5 or det.names and c1 != 4 + len(det.names)):
            raise UserError(f"{path.name}: output {out_shape} is not [B, 4+classes, anchors] "
                            f"({len(det.names)} class names in its metadata); only YOLOv8/YOLO11 heads are supported")
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        b, _, h, w = inp.shape
        det.fixed_batch = int(b) if isinstance(b, int) and b > 0 else None
        fixed_hw = (int(h), int(w)) if isinstance(h, int) and isinstance(w, int) else None
        if fixed_hw is not None:
            if user_imgsz is not None and user_imgsz != fixed_hw:
                raise UserError(f"{path.name}: input size is fixed at {fixed_hw[0]}x{fixed_hw[1]}, "
                                f"imgsz {user_imgsz[0]}x{user_imgsz[1]} cannot be used; re-export with "
                                "dynamic=True or that imgsz")
            det.imgsz, det.dynamic_size = fixed_hw, False
        else:
            meta_sz = _meta_literal(meta, "imgsz")
            size = user_imgsz or (_parse_imgsz(meta_sz) if meta_sz else (DEFAULT_IMGSZ, DEFAULT_IMGSZ))
            s = det.stride
            rounded = (math.ceil(size[0] / s) * s, math.ceil(size[1] / s) * s)
            if rounded != size:
                log.info("%s: imgsz %s rounded up to %s (multiple of stride %d)", path.name, size, rounded, s)
            det.imgsz, det.dynamic_size = rounded, True
        log.info("%s: YOLO detector on %s, input %s, batch %s, %d classes", path.name, det.provider,
                 "x".join(map(str, det.imgsz)) + (" (dynamic)" if det.dynamic_size else ""),
                 det.fixed_batch or "dynamic", len(det.names) if det.names else c1 - 4 if isinstance(c1, int) else -1)

    def detect(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        det = self.det
        chunk = det.fixed_batch or det.max_batch
        t_pre = t_inf = t_post = 0.0
        results: list[FrameDetections] = []
        for start in range(0, len(frames), chunk):
            part = frames[start:start + chunk]
            t0 = time.perf_counter()
            x, geometry = letterbox_batch(part, det.imgsz, det.stride, det.dynamic_size, self.input_dtype)
            real = len(x)
            if det.fixed_batch and real < det.fixed_batch:
                x = np.concatenate([x, np.zeros((det.fixed_batch - real,) + x.shape[1:], x.dtype)])
            t1 = time.perf_counter()
            y = self.session.run(None, {self.input_name: x})[0]
            t2 = time.perf_counter()
            if y.ndim != 3 or y.shape[0] < real or y.shape[1] < 5:
                raise UserError(f"{det.path.name}: output shape {y.shape} is not [B, 4+classes, anchors]")
            if det.classes is not None and max(det.classes, default=0) >= y.shape[1] - 4:
                raise UserError(f"{det.path.name}: class {max(det.classes)} requested, the model has "
                                f"{y.shape[1] - 4} classes")
            for k in range(real):
                tlbr, scores, cls = decode_yolo(y[k], det.conf, det.iou, det.classes, det.max_det)
                results.append(FrameDetections(undo_letterbox(tlbr, geometry[k]), scores, cls))
            t3 = time.perf_counter()
            t_pre += t1 - t0
            t_inf += t2 - t1
            t_post += t3 - t2
        det.last_timing_ms = {"pre": 1e3 * t_pre, "infer": 1e3 * t_inf, "post": 1e3 * t_post}
        return results


def safe_ultralytics_load() -> bool:
    """Have Ultralytics load ``.pt`` checkpoints without running code from them.

    A ``.pt`` file is a pickle: a plain load runs any code a crafted file carries, and Ultralytics
    pip-installs modules a checkpoint names. Ultralytics 8.4+ (with torch 2.6+) has a restricted mode
    (``ULTRALYTICS_SAFE_LOAD``: ``torch.load(weights_only=True)`` and an allow-list of its own model
    classes); this turns it on for the process. Returns False, with a warning, where the installed
    versions lack it: then only trusted ``.pt`` files are safe to load.
    """
    try:
        import ultralytics.nn.tasks as tasks
    except ImportError:
        return False
    if not getattr(getattr(tasks, "_SafeLoad", None), "SUPPORTED", False) or not hasattr(tasks, "SAFE_LOAD"):
        log.warning("this Ultralytics/torch version unpickles .pt checkpoints, which runs any code in them: load "
                    "only .pt files you trust, or use an .onnx export (Ultralytics >= 8.4 with torch >= 2.6 loads "
                    "them restricted)")
        return False
    tasks.SAFE_LOAD = True  # read when a checkpoint is loaded and when its model is built
    return True


class _UltralyticsBackend:
    def __init__(self, det: Detector, path: Path, providers: tuple[str, ...], cpu_threads: int,
                 user_imgsz: tuple[int, int] | None):
        try:
            import torch
            from ultralytics import YOLO
        except ImportError as exc:
            raise UserError(f"the ultralytics detector backend needs the 'ultralytics' package ({exc}); "
                            "use an .onnx model with backend 'onnx' or pip install ultralytics") from None
        self.det = det
        if path.suffix.lower() == ".pt":
            safe_ultralytics_load()
        try:
            self.model = YOLO(str(path), task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad or foreign file
            raise UserError(f"cannot load {path} with Ultralytics: {str(exc).strip().splitlines()[0]}") from None
        if getattr(self.model, "task", "detect") != "detect":
            raise UserError(f"{path.name}: an Ultralytics '{self.model.task}' model, not a detector")
        gpu = any(p in ("cuda", "tensorrt") for p in providers) and torch.cuda.is_available()
        self.device = "cuda:0" if gpu else "cpu"
        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)
        det.provider = f"torch:{self.device}"
        names = getattr(self.model, "names", None) or {}
        det.names = {int(k): str(v) for k, v in names.items()}
        inner = getattr(self.model, "model", None)
        stride = getattr(inner, "stride", None)
        try:
            det.stride = int(max(stride)) if stride is not None else 32
        except TypeError:
            det.stride = 32
        det.imgsz = user_imgsz or (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
        det.dynamic_size = path.suffix.lower() == ".pt"
        det.fixed_batch = None
        log.info("%s: YOLO detector via Ultralytics on %s, imgsz %s", path.name, self.device, det.imgsz)

    def detect(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        det = self.det
        t0 = time.perf_counter()
        results: list[FrameDetections] = []
        for start in range(0, len(frames), det.max_batch):
            part = frames[start:start + det.max_batch]
            preds = self.model.predict(part, conf=det.conf, iou=det.iou,
                                       classes=list(det.classes) if det.classes is not None else None,
                                       imgsz=list(det.imgsz), max_det=det.max_det, device=self.device,
                                       verbose=False)
            for r in preds:
                boxes = r.boxes
                results.append(FrameDetections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(),
                                               boxes.cls.cpu().numpy().astype(np.int64)))
        det.last_timing_ms = {"pre": 0.0, "infer": 1e3 * (time.perf_counter() - t0), "post": 0.0}
        return results
