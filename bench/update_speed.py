"""Time of one CameraTracker.update against the number of people (tracks = detections).

Synthetic scene: N people walking in a 1920x1080 frame at 30 fps with 512-d unit-norm
embeddings (per-person vector + noise); timed after a warm-up so that all N tracks are
confirmed. Prints one line per (N, mode): median and p95 milliseconds per update.

    .venv/bin/python bench/update_speed.py [--sizes 8 10 50 100 200 500] [--frames 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.core.config import TrackerConfig  # noqa: E402
from tracker.core.ids import IdAllocator  # noqa: E402
from tracker.core.tracker import CameraTracker  # noqa: E402
from tracker.core.types import Detections  # noqa: E402


def scene(n: int, frames: int, dim: int = 512, fps: float = 30.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(n * 16 / 9)))
    grid = np.stack(np.meshgrid(np.arange(cols), np.arange(int(np.ceil(n / cols)))), -1).reshape(-1, 2)[:n]
    size = np.array([1920 / cols, 1080 / np.ceil(n / cols)])
    start = (grid + 0.5) * size
    vel = rng.normal(0, 0.3, (n, 2)) * size  # px/s, small relative to spacing
    wh = np.column_stack([size[0] * 0.4, size[1] * 0.8])
    ident = rng.normal(size=(n, dim)).astype(np.float32)
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    for k in range(frames):
        t = k / fps
        c = start + vel * np.sin(t)[None]  # oscillate so people stay in their cell
        c = c + rng.normal(0, 1.0, c.shape)
        tlbr = np.column_stack([c - wh / 2, c + wh / 2]).astype(np.float32)
        emb = ident + rng.normal(0, 0.02, ident.shape).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        perm = rng.permutation(n)
        yield Detections(tlbr[perm], np.full(n, 0.9, np.float32), t, emb[perm])


def measure(n: int, frames: int, with_embeddings: bool) -> tuple[float, float, int]:
    trk = CameraTracker(TrackerConfig(), IdAllocator())
    times = []
    warm = 10
    for i, d in enumerate(scene(n, frames + warm)):
        if not with_embeddings:
            d = Detections(d.tlbr, d.scores, d.timestamp, None)
        t0 = time.perf_counter()
        trk.update(d)
        if i >= warm:
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 95)), len(trk)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[8, 10, 50, 100, 200, 500])
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    for n in args.sizes:
        for emb in (True, False):
            med, p95, tracks = measure(n, args.frames, emb)
            mode = "embeddings" if emb else "motion-only"
            print(f"update_ms people={n:4d} tracks={tracks:4d} {mode:11s} median={med:.3f} p95={p95:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
