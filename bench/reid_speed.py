"""ReID throughput on real PETS09-S2L1 frames: our batched path against the per-crop path and the bare model.

For each batch size B the same B ground-truth person boxes of full 768x576 frames are embedded by
  batched  ReIDEncoder.embed: crops resized into one uint8 buffer, whole-batch normalisation, one run
  percrop  the common per-crop path (as BoxMOT/Ultralytics ReID wrappers do it): for each box crop,
           resize, BGR->RGB, /255, mean/std, HWC->CHW in turn, then stack the crops and run
  bare     the model alone on a ready float32 tensor (no crops, no preprocessing)
and, at batch 64, the preprocessing steps of the batched path alone (step:crop, step:normalise).
The three paths are timed round-robin, one call each in turn, so that load from other processes
hits them alike; every line gives the median over the calls (crops/s = B / median seconds per call)
and the fastest call (the least disturbed by other processes).

    .venv/bin/python bench/reid_speed.py                      # CPU, about 1-2 min on 2 cores
    .venv/bin/python bench/reid_speed.py --providers cuda     # on a GPU machine: fp32 and fp16 rows
    .venv/bin/python bench/reid_speed.py --batches 64 --crops 2000
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.models.reid import IMAGENET_MEAN, IMAGENET_STD, ReIDEncoder  # noqa: E402

SHARED = ROOT.parent / "shared"
DATA = Path(os.environ.get("MCTRACK_DATA_DIR") or SHARED / "data")
MODELS = Path(os.environ.get("MCTRACK_MODEL_DIR") or SHARED / "models")


def load_pets(n_crops: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Full frames of PETS09-S2L1 with their ground-truth boxes until ``n_crops`` boxes are collected.

    Returns:
        frames: (576, 768, 3) uint8 BGR images; boxes: (N_i, 4) float32 tlbr pixels per frame.
    """
    seq = DATA / "PETS09-S2L1"
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    cap = cv2.VideoCapture(str(seq / "video" / "vtest.avi"))
    if not cap.isOpened():
        sys.exit(f"cannot open {seq / 'video' / 'vtest.avi'}")
    frames, boxes, n, index = [], [], 0, 0
    try:
        while n < n_crops:
            ok, img = cap.read()
            if not ok:
                break
            index += 1
            rows = gt[gt[:, 0] == index]
            if len(rows) == 0:
                continue
            tlbr = rows[:, 2:6].astype(np.float32)
            tlbr[:, 2:] += tlbr[:, :2]
            frames.append(img)
            boxes.append(tlbr)
            n += len(tlbr)
    finally:
        cap.release()
    return frames, boxes


def first_crops(frames, boxes, b: int):
    """The first ``b`` boxes (in frame order) as (frames, boxes) lists for ReIDEncoder.embed."""
    fs, bs, n = [], [], 0
    for f, bx in zip(frames, boxes, strict=True):
        if n >= b:
            break
        bx = bx[: b - n]
        fs.append(f)
        bs.append(bx)
        n += len(bx)
    if n < b:
        sys.exit(f"only {n} boxes loaded, need {b}")
    return fs, bs


def percrop_embed(enc: ReIDEncoder, frames, boxes) -> np.ndarray:
    """Embed crop by crop as the usual tracker ReID wrappers do: each crop is cut, resized and
    normalised on its own (float32 temporaries per crop), the crops are stacked, then one run."""
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    tensors = []
    for frame, bx in zip(frames, boxes, strict=True):
        h, w = frame.shape[:2]
        for x0, y0, x1, y1 in bx:
            x0, y0 = max(int(x0), 0), max(int(y0), 0)
            x1, y1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
            crop = cv2.resize(frame[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)], (enc.width, enc.height),
                              interpolation=cv2.INTER_LINEAR)
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            tensors.append(((crop - mean) / std).transpose(2, 0, 1))
    x = np.stack(tensors)
    y = enc.session.run(None, {enc.input_name: x})[0]
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def round_robin(fns: dict, reps: int, warmup: int = 1) -> dict[str, tuple[float, float]]:
    """(median, fastest) seconds per call of each function, calling them in turn ``reps`` times."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: (float(np.median(v)), float(np.min(v))) for k, v in times.items()}


def measure(enc: ReIDEncoder, frames, boxes, b: int, crops: int) -> tuple[dict[str, tuple[float, float]], int]:
    """(median, fastest) seconds per call of each path at batch size ``b``, and the number of calls."""
    fs, bs = first_crops(frames, boxes, b)
    x_ready = np.random.default_rng(0).standard_normal((b, 3, enc.height, enc.width)).astype(np.float32)
    reps = max(5, -(-crops // b))
    fns = {
        "batched": lambda: enc.embed(fs, bs),
        "percrop": lambda: percrop_embed(enc, fs, bs),
        "bare": lambda: enc.session.run(None, {enc.input_name: x_ready}),
    }
    if b == 64:  # the batched path's preprocessing steps alone
        u8 = np.empty((b, enc.height, enc.width, 3), np.uint8)
        _, planes, buf = enc._buffers(b)

        def crop_step():
            k = 0
            for f, bx in zip(fs, bs, strict=True):
                enc.crops(f, bx, out=u8[k:k + len(bx)])
                k += len(bx)

        fns["step:crop"] = crop_step
        fns["step:normalise"] = lambda: enc._normalise(u8, planes, buf[:b])
    return round_robin(fns, reps), reps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(MODELS / "reid" / "osnet_x0_25_msmt17.onnx"))
    p.add_argument("--providers", default="cpu", help="cpu, or cuda (then rows for fp32 and fp16)")
    p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0 = one per core)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64, 128, 256])
    p.add_argument("--crops", type=int, default=1536,
                   help="crops timed per path and batch size (at least 5 calls); more: steadier, slower")
    p.add_argument("--precisions", nargs="+", choices=["fp32", "fp16"],
                   help="default: fp32 on CPU, fp32 and fp16 with --providers cuda")
    args = p.parse_args(argv)

    import onnxruntime

    print("# command: " + shlex.join([".venv/bin/python", "bench/reid_speed.py",
                                      *(sys.argv[1:] if argv is None else argv)]))
    print(f"# onnxruntime {onnxruntime.__version__}, opencv {cv2.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs; model {Path(args.model).name}; median per call, paths interleaved")
    providers = tuple(s.strip() for s in args.providers.split(",") if s.strip())
    precisions = args.precisions or (["fp32", "fp16"] if "cuda" in providers else ["fp32"])
    frames, boxes = load_pets(max(args.batches))
    for prec in precisions:
        enc = ReIDEncoder(args.model, providers=providers, cpu_threads=args.threads,
                          max_batch=max(args.batches), fp16=prec == "fp16")
        device = enc.provider.replace("ExecutionProvider", "").lower()
        fs, bs = first_crops(frames, boxes, min(64, max(args.batches)))
        cos = np.sum(np.concatenate(enc.embed(fs, bs)) * percrop_embed(enc, fs, bs), axis=1)
        print(f"# {prec} on {device}: batched vs percrop embeddings, min cosine {cos.min():.4f} "
              f"(crop rounding differs slightly)")
        for b in args.batches:
            med, reps = measure(enc, frames, boxes, b, args.crops)
            for path, (sec, best) in med.items():
                print(f"reid_speed device={device:4s} precision={prec} batch={b:4d} path={path:15s} "
                      f"crops_per_s={b / sec:7.0f} (best {b / best:7.0f})  us_per_crop={1e6 * sec / b:8.1f}  "
                      f"calls={reps}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
