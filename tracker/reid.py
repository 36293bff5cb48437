"""Person re-identification encoder over ONNX Runtime.

Crops from any number of frames (all cameras of a tick) are embedded in one batched
run and split back by per-frame offsets. The encoder reads its input name, input size
and batch mode from the model, chunks batches for fixed-batch models and returns
L2-normalised float32 embeddings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .onnx_session import create_session

# torchreid convention: RGB, /255, ImageNet mean/std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ReIDEncoder:
    """Embed person crops with a torchreid-style ONNX model.

    The normalisation convention is read from the model's metadata keys ``mean``/``std``
    (JSON lists) and ``color`` ("rgb"/"bgr") when present, else torchreid's defaults.
    """

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] = ("cuda", "cpu"),
                 cpu_threads: int = 0, max_batch: int = 256):
        path = Path(model_path)
        if not path.is_file():
            raise UserError(f"ReID model not found: {path}")
        self.session = create_session(path, tuple(providers), cpu_threads)
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise UserError(f"{path.name}: expected an image input [B,3,H,W], got {inp.shape}")
        self.input_name = inp.name
        b, c, h, w = inp.shape
        if not (isinstance(h, int) and isinstance(w, int)):
            h, w = 256, 128  # dynamic spatial size: torchreid's default
        self.height, self.width = int(h), int(w)
        self.fixed_batch = int(b) if isinstance(b, int) and b > 0 else None
        self.max_batch = self.fixed_batch or max_batch
        self.dim = int(self.session.get_outputs()[0].shape[-1]) if isinstance(
            self.session.get_outputs()[0].shape[-1], int) else None
        meta = self.session.get_modelmeta().custom_metadata_map
        mean = json.loads(meta["mean"]) if "mean" in meta else IMAGENET_MEAN
        std = json.loads(meta["std"]) if "std" in meta else IMAGENET_STD
        self.rgb = meta.get("color", "rgb").lower() != "bgr"
        # Fold /255, mean and std into one scale and offset per channel (HWC order).
        self._scale = (1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 1, 1, 3)
        self._offset = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(1, 1, 1, 3)

    def crops(self, frame_bgr: np.ndarray, tlbr: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Cut and resize person crops from one frame.

        Args:
            frame_bgr: (H, W, 3) uint8 BGR image.
            tlbr: (N, 4) boxes, tlbr pixels in that image; clipped to the image.
            out: optional (N, h, w, 3) uint8 buffer to fill.
        Returns:
            (N, h, w, 3) uint8 BGR crops of the model's input size.
        """
        n = len(tlbr)
        if out is None:
            out = np.empty((n, self.height, self.width, 3), np.uint8)
        ih, iw = frame_bgr.shape[:2]
        boxes = np.asarray(tlbr, dtype=np.float64)
        x0 = np.clip(np.floor(boxes[:, 0]), 0, iw - 1).astype(int)
        y0 = np.clip(np.floor(boxes[:, 1]), 0, ih - 1).astype(int)
        x1 = np.maximum(np.clip(np.ceil(boxes[:, 2]), 0, iw).astype(int), x0 + 1)
        y1 = np.maximum(np.clip(np.ceil(boxes[:, 3]), 0, ih).astype(int), y0 + 1)
        for i in range(n):
            cv2.resize(frame_bgr[y0[i]:y1[i], x0[i]:x1[i]], (self.width, self.height), dst=out[i],
                       interpolation=cv2.INTER_LINEAR)
        return out

    def embed_crops(self, crops_hwc: np.ndarray) -> np.ndarray:
        """Embed ready crops.

        Args:
            crops_hwc: (N, h, w, 3) uint8 BGR crops of the model's input size.
        Returns:
            (N, D) float32, L2-normalised rows.
        """
        n = len(crops_hwc)
        if n == 0:
            return np.zeros((0, self.dim or 0), np.float32)
        outs = []
        for start in range(0, n, self.max_batch):
            chunk = crops_hwc[start:start + self.max_batch]
            if self.rgb:
                chunk = chunk[..., ::-1]
            x = chunk.astype(np.float32) * self._scale + self._offset
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            real = len(x)
            if self.fixed_batch and real < self.fixed_batch:
                x = np.concatenate([x, np.zeros((self.fixed_batch - real,) + x.shape[1:], np.float32)])
            y = self.session.run(None, {self.input_name: x})[0][:real]
            outs.append(np.asarray(y, np.float32).reshape(real, -1))
        emb = np.concatenate(outs)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    def embed(self, frames_bgr: Sequence[np.ndarray], boxes_tlbr: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Embed the boxes of several frames in one batched run.

        Args:
            frames_bgr: list of (H_i, W_i, 3) uint8 BGR images (any sizes).
            boxes_tlbr: list of (N_i, 4) tlbr pixel boxes, one array per frame.
        Returns:
            list of (N_i, D) float32 unit-norm embeddings, one per frame.
        """
        counts = [len(b) for b in boxes_tlbr]
        total = sum(counts)
        buf = np.empty((total, self.height, self.width, 3), np.uint8)
        offset = 0
        for frame, boxes, k in zip(frames_bgr, boxes_tlbr, counts, strict=False):
            if k:
                self.crops(frame, boxes, out=buf[offset:offset + k])
            offset += k
        emb = self.embed_crops(buf)
        return np.split(emb, np.cumsum(counts)[:-1]) if counts else []
