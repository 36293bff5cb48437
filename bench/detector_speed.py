"""Detector throughput on real PETS09-S2L1 frames (768x576), end to end.

One line per (backend, model, batch size, input size): frames per second and milliseconds
per frame for ``Detector.detect`` (letterbox + inference + decoding + NMS), with the split
into pre-processing, inference and post-processing for the ONNX backend. Each configuration
is warmed up with one call, then timed over ``--frames`` distinct frames in batches, ``--repeats``
times; the fastest pass is printed (other work on a shared machine only ever slows a pass down).

    .venv/bin/python bench/detector_speed.py [--models dynamic int8 pt] [--batches 1 2 4 8]
        [--sizes 320 480 640] [--frames 16] [--repeats 2] [--providers cpu] [--threads 0] [--opencv-threads 1]

Models (from $MCTRACK_MODEL_DIR, default ../shared/models): "dynamic" = the fp32 dynamic
batch/size ONNX export, "int8" = the fixed 1x3x640x640 int8 ONNX (run in chunks, 640 only),
"pt" = the Ultralytics checkpoint through the Ultralytics backend (torch).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.models.detection import Detector  # noqa: E402

MODELS = {
    "dynamic": ("onnx", "detector/yolov8n_from_int8_dynamic.onnx"),
    "int8": ("onnx", "detector/yolov8n_int8.onnx"),
    "pt": ("ultralytics", "detector/yolov8n_from_int8.pt"),
}


def load_frames(video: Path, n: int, step: int = 25) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames, i = [], 0
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(img)
        i += 1
    cap.release()
    if not frames:
        sys.exit(f"cannot read frames from {video}")
    return frames


def time_pass(det: Detector, frames: list[np.ndarray], batch: int) -> dict[str, float]:
    total = 0.0
    stages = {"pre": 0.0, "infer": 0.0, "post": 0.0}
    n_frames = n_dets = 0
    for start in range(0, len(frames) - batch + 1, batch):
        part = frames[start:start + batch]
        t0 = time.perf_counter()
        out = det.detect(part)
        total += time.perf_counter() - t0
        for k in stages:
            stages[k] += det.last_timing_ms[k]
        n_frames += len(part)
        n_dets += sum(len(o) for o in out)
    return {"fps": n_frames / total, "ms": 1e3 * total / n_frames, "dets": n_dets / n_frames,
            **{k: v / n_frames for k, v in stages.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["dynamic", "int8", "pt"], choices=sorted(MODELS))
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8])
    p.add_argument("--sizes", nargs="+", type=int, default=[320, 480, 640])
    p.add_argument("--frames", type=int, default=16, help="frames timed per configuration (at least the batch)")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per configuration; the fastest is shown")
    p.add_argument("--providers", default="cpu", help="ONNX Runtime providers, e.g. cuda,cpu")
    p.add_argument("--threads", type=int, default=0, help="inference CPU threads (0 = all cores)")
    p.add_argument("--opencv-threads", type=int, default=1, help="cv2.setNumThreads for letterboxing")
    p.add_argument("--conf", type=float, default=0.1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    model_dir = Path(os.environ.get("MCTRACK_MODEL_DIR") or ROOT.parent / "shared" / "models")
    data_dir = Path(os.environ.get("MCTRACK_DATA_DIR") or ROOT.parent / "shared" / "data")
    frames = load_frames(data_dir / "PETS09-S2L1" / "video" / "vtest.avi", max(args.frames, max(args.batches)))
    print(f"# {len(frames)} PETS09-S2L1 frames {frames[0].shape[1]}x{frames[0].shape[0]}, best of {args.repeats} "
          f"passes, conf {args.conf}, "
          f"{os.cpu_count()} CPUs, opencv threads {args.opencv_threads}, inference threads {args.threads or 'all'}")
    providers = tuple(args.providers.split(","))
    for key in args.models:
        backend, rel = MODELS[key]
        path = model_dir / rel
        if not path.is_file():
            print(f"# skipped {key}: {path} not found")
            continue
        for size in [640] if key == "int8" else args.sizes:
            # One live model at a time: idle ONNX Runtime / torch sessions keep their threads spinning
            # and would slow the one being timed.
            det = Detector(path, backend=backend, providers=providers, cpu_threads=args.threads, conf=args.conf,
                           imgsz=size, opencv_threads=args.opencv_threads)
            for batch in args.batches:
                part = frames[:max(args.frames, batch)]
                det.detect(part[:batch])  # warm-up (session arenas, first-call allocations)
                r = min((time_pass(det, part, batch) for _ in range(args.repeats)), key=lambda x: x["ms"])
                split = f" pre={r['pre']:.1f} infer={r['infer']:.1f} post={r['post']:.1f}" if backend == "onnx" else ""
                print(f"backend={backend:<11} provider={det.provider:<22} model={path.name:<31} batch={batch} "
                      f"imgsz={size} fps={r['fps']:6.2f} ms/frame={r['ms']:7.1f}{split} dets/frame={r['dets']:.1f}",
                      flush=True)
            del det


if __name__ == "__main__":
    main()
