"""Person re-identification encoder over ONNX Runtime.

Crops from any number of frames (all cameras of a tick) are embedded in one batched
run and split back by per-frame offsets. The encoder reads its input name, input size,
input precision and batch mode from the model, chunks batches for fixed-batch models and
returns L2-normalised float32 embeddings.

Preprocessing is vectorised over the batch: each crop is cut and resized straight into a
reusable uint8 buffer (the only per-crop work), then the whole chunk is split into channel
planes and scaled to normalised float32 NCHW by OpenCV in whole-batch passes (no per-crop
Python, no temporaries). On 2 CPU cores at batch 64 (bench/reid_speed.py) that is about
50 us/crop for crop+resize and 35 us/crop for normalising, against about 1,400 us/crop for
OSNet-x0.25 itself: end to end runs at 0.93-0.97 of the bare model's rate (0.65 before,
when normalising took about 700 us/crop in numpy).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import UserError
from tracker.models.onnx_session import create_session

log = logging.getLogger(__name__)

# torchreid convention: RGB, /255, ImageNet mean/std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_GPU_PROVIDERS = ("CUDAExecutionProvider",)


class ReIDEncoder:
    """Embed person crops with a torchreid-style ONNX model.

    The normalisation convention is read from the model's metadata keys ``mean``/``std``
    (JSON lists) and ``color`` ("rgb"/"bgr") when present, else torchreid's defaults.

    One encoder may be shared by threads: calls are serialised, because the preprocessing
    buffers are reused between calls (ONNX Runtime uses all cores for one call anyway).

    Args:
        model_path: the .onnx file.
        providers: execution providers in preference order ("tensorrt", "cuda", "cpu").
        cpu_threads: intra-op threads for the CPU provider; 0 = one per core.
        max_batch: largest number of crops per inference call (for dynamic-batch models).
            Higher: fewer calls, more buffer memory (about 0.6 MB per crop of 256x128).
        fp16: run a float16 copy of the model (inputs and outputs stay float32; cosine to
            the float32 model about 0.9999). None = only when the CUDA provider is active.
            Needs the ``onnx`` package; without it the float32 model runs.
    """

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] = ("cuda", "cpu"),
                 cpu_threads: int = 0, max_batch: int = 256, fp16: bool | None = None):
        path = Path(model_path)
        if not path.is_file():
            raise UserError(f"ReID model not found: {path}")
        self.session = create_session(path, tuple(providers), cpu_threads)
        self.provider = self.session.get_providers()[0]
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
        out = self.session.get_outputs()[0]
        self.dim = int(out.shape[-1]) if isinstance(out.shape[-1], int) else None
        meta = self.session.get_modelmeta().custom_metadata_map
        mean = np.asarray(json.loads(meta["mean"]) if "mean" in meta else IMAGENET_MEAN, np.float64)
        std = np.asarray(json.loads(meta["std"]) if "std" in meta else IMAGENET_STD, np.float64)
        self.rgb = meta.get("color", "rgb").lower() != "bgr"
        # Model channel c reads BGR channel _src_channel[c], scaled as x * alpha[c] + beta[c]
        # (/255, mean and std folded into one scale and offset per channel).
        self._src_channel = (2, 1, 0) if self.rgb else (0, 1, 2)
        self._alpha = [float(v) for v in 1.0 / (255.0 * std)]
        self._beta = [float(v) for v in -mean / std]
        self.fp16 = False
        if fp16 or (fp16 is None and self.provider in _GPU_PROVIDERS):
            self._use_fp16(path, tuple(providers), cpu_threads, explicit=bool(fp16))
        # float16 models (exported so) take float16 input; everything else float32.
        self.input_dtype = np.float16 if self.session.get_inputs()[0].type == "tensor(float16)" else np.float32
        self._output_name = self.session.get_outputs()[0].name
        self._lock = threading.Lock()
        self._cap = 0  # crops the buffers below hold
        self._u8 = self._planes = self._float = None

    # ------------------------------------------------------------------------------- setup

    def _use_fp16(self, path: Path, providers: tuple[str, ...], cpu_threads: int, explicit: bool) -> None:
        """Swap the session for a float16 copy of the model (float32 inputs and outputs kept).

        The GPU use of this is untested on GPU hardware here; the conversion itself is tested on CPU.
        """
        if self.session.get_inputs()[0].type != "tensor(float)":
            return  # already float16 (or something else): run the model as it is
        try:
            import onnx
            from onnxruntime.transformers.float16 import convert_float_to_float16
        except ImportError as exc:
            if explicit:
                raise UserError(f"fp16 needs the 'onnx' package ({exc}); pip install onnx") from None
            log.info("onnx not installed: running %s in float32", path.name)
            return
        try:
            model16 = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
            with tempfile.TemporaryDirectory() as tmp:
                tmp_path = Path(tmp) / f"{path.stem}.fp16.onnx"
                onnx.save(model16, str(tmp_path))
                session = create_session(tmp_path, providers, cpu_threads)
        except Exception as exc:  # a model the converter cannot handle: keep float32
            if explicit:
                raise UserError(f"{path.name}: float16 conversion failed: {str(exc).splitlines()[0]}") from None
            log.warning("%s: float16 conversion failed, running float32: %s", path.name, exc)
            return
        self.session, self.fp16 = session, True
        log.info("%s: running a float16 copy on %s", path.name, self.session.get_providers()[0])

    def _buffers(self, n: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Reusable buffers for at least ``n`` crops (grown, never shrunk; the lock is held).

        Reusing them matters: freshly mapped memory costs a page fault per 4 KiB on first touch.
        """
        n = max(n, self.fixed_batch or 0)
        if n > self._cap:
            h, w = self.height, self.width
            self._u8 = np.empty((n, h, w, 3), np.uint8)
            self._planes = [np.empty((n * h, w), np.uint8) for _ in range(3)]
            self._float = np.empty((n, 3, h, w), np.float32)
            self._cap = n
        return self._u8, self._planes, self._float

    # ------------------------------------------------------------------------- preprocessing

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
        boxes = np.asarray(tlbr, dtype=np.float64).reshape(n, 4)
        x0 = np.clip(np.floor(boxes[:, 0]), 0, iw - 1).astype(int)
        y0 = np.clip(np.floor(boxes[:, 1]), 0, ih - 1).astype(int)
        x1 = np.maximum(np.clip(np.ceil(boxes[:, 2]), 0, iw).astype(int), x0 + 1)
        y1 = np.maximum(np.clip(np.ceil(boxes[:, 3]), 0, ih).astype(int), y0 + 1)
        size = (self.width, self.height)
        for i, (a, b, c, d) in enumerate(zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), strict=True)):
            # A compact copy first: OpenCV resizes it faster than the strided view into the frame
            # (about 36 vs 44 us per PETS09 crop, copy included).
            cv2.resize(np.ascontiguousarray(frame_bgr[b:d, a:c]), size, dst=out[i], interpolation=cv2.INTER_LINEAR)
        return out

    def _normalise(self, crops_hwc: np.ndarray, planes: list[np.ndarray], out: np.ndarray) -> None:
        """Normalise a chunk of crops into model input layout, whole-batch operations only.

        Args:
            crops_hwc: (n, h, w, 3) uint8 BGR crops.
            planes: three (>= n*h, w) uint8 scratch planes.
            out: (n, 3, h, w) float32, filled with (pixel/255 - mean) / std in the model's channel order.
        """
        n, h, w = len(crops_hwc), self.height, self.width
        src = np.ascontiguousarray(crops_hwc).reshape(n * h, w, 3)
        split = cv2.split(src, [p[:n * h] for p in planes])  # de-interleave: one pass
        flat = out.reshape(n, 3, h * w)
        for c in range(3):
            plane = split[self._src_channel[c]].reshape(n, h * w)
            dst = flat[:, c]  # (n, h*w) rows 3*h*w apart: OpenCV writes strided rows in place
            res = cv2.addWeighted(plane, self._alpha[c], plane, 0.0, self._beta[c], dst=dst, dtype=cv2.CV_32F)
            if res is not dst:  # OpenCV allocated instead of writing in place
                dst[...] = res

    # ----------------------------------------------------------------------------- inference

    def _infer(self, crops_hwc: np.ndarray, planes: list[np.ndarray], buf: np.ndarray) -> np.ndarray:
        """Embed one chunk (n <= max_batch crops); returns (n, D) float32, not yet L2-normalised."""
        n = len(crops_hwc)
        m = self.fixed_batch or n
        x = buf[:m]
        self._normalise(crops_hwc, planes, x[:n])
        if m > n:
            x[n:] = 0.0  # pad a fixed-batch model's unused rows
        if self.input_dtype != np.float32:
            x = x.astype(self.input_dtype)
        if self.provider in _GPU_PROVIDERS:
            y = self._run_bound(x, "cuda")
        else:
            y = self.session.run([self._output_name], {self.input_name: x})[0]
        return np.asarray(y[:n], np.float32).reshape(n, -1)

    def _run_bound(self, x: np.ndarray, device: str) -> np.ndarray:
        """Run with IOBinding: one host-to-device copy of the batch; the output is allocated on
        ``device`` by ONNX Runtime and copied back once.

        UNTESTED ON GPU HARDWARE (no GPU on the development machines): the CPU path never comes
        here; tests run this function with device "cpu" only to check the binding calls.
        """
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, x)
        binding.bind_output(self._output_name, device)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def _step(self) -> int:
        """Crops per inference call: max_batch, never more than a fixed-batch model takes."""
        return max(1, min(self.max_batch, self.fixed_batch or self.max_batch))

    @staticmethod
    def _l2(emb: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

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
        step = self._step()
        with self._lock:
            _, planes, buf = self._buffers(min(step, n))
            outs = [self._infer(crops_hwc[s:s + step], planes, buf) for s in range(0, n, step)]
        return self._l2(np.concatenate(outs))

    def embed(self, frames_bgr: Sequence[np.ndarray], boxes_tlbr: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Embed the boxes of several frames in one batched run.

        Crops are cut straight into the chunk buffer; a chunk (max_batch crops) is normalised
        and run as soon as it is full, so a frame's boxes may span two chunks.

        Args:
            frames_bgr: list of (H_i, W_i, 3) uint8 BGR images (any sizes).
            boxes_tlbr: list of (N_i, 4) tlbr pixel boxes, one array per frame.
        Returns:
            list of (N_i, D) float32 unit-norm embeddings, one per frame.
        """
        counts = [len(b) for b in boxes_tlbr]
        total = sum(counts)
        if total == 0:
            return [np.zeros((0, self.dim or 0), np.float32) for _ in counts]
        step = self._step()
        outs = []
        with self._lock:
            u8, planes, buf = self._buffers(min(step, total))
            fill = 0
            for frame, boxes, k in zip(frames_bgr, boxes_tlbr, counts, strict=False):
                start = 0
                while start < k:
                    take = min(k - start, step - fill)
                    self.crops(frame, boxes[start:start + take], out=u8[fill:fill + take])
                    fill += take
                    start += take
                    if fill == step:
                        outs.append(self._infer(u8[:fill], planes, buf))
                        fill = 0
            if fill:
                outs.append(self._infer(u8[:fill], planes, buf))
        emb = self._l2(np.concatenate(outs))
        return np.split(emb, np.cumsum(counts)[:-1])
