"""Precompute OSNet embeddings for every detection of a MOT det file, once, and cache them.

The benchmark (bench/peers.py) feeds the same detections and the same embeddings to
every tracker, so ReID inference is done here once per (detections, video, model) and
stored in ``bench/.cache/<hash>.npz``. The hash covers the bytes of the detection file
and of the model file, and the video's name and size, so editing any of them recomputes.

Detections come from ``tracker.io.motio.read_mot_detections`` (which drops invalid rows);
the cached arrays keep its order, and every tracker is fed those arrays, so row ``i`` of
a frame means the same detection for all of them.

Usage (also imported by bench/peers.py):
    python bench/embed_cache.py --dets ../shared/data/PETS09-S2L1/det/det.txt \
        --video ../shared/data/PETS09-S2L1/video/vtest.avi
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
CACHE_VERSION = 1
REID_REL = Path("reid") / "osnet_x0_25_msmt17.onnx"


def default_model_dir() -> Path:
    """``$MCTRACK_MODEL_DIR`` when set, else ``../shared/models`` next to the repository."""
    env = os.environ.get("MCTRACK_MODEL_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "models"


def default_reid_model() -> Path:
    return default_model_dir() / REID_REL


@dataclass(frozen=True)
class FrameDets:
    """Detections of one frame with their embeddings.

    tlbr: (N, 4) float32 left, top, right, bottom pixels; scores: (N,) float32 in [0, 1];
    embeddings: (N, 512) float32 unit-norm OSNet vectors (row i belongs to box i).
    """

    tlbr: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray


def _sha1_file(path: Path, h=None):
    h = h or hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h


def cache_key(det_path: Path, video_path: Path, model_path: Path) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}".encode())
    _sha1_file(det_path, h)
    _sha1_file(model_path, h)
    h.update(f"{video_path.name}:{video_path.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _log(msg: str) -> None:
    print(f"[embed_cache] {msg}", file=sys.stderr, flush=True)


def compute(det_path: Path, video_path: Path, model_path: Path, batch_frames: int = 8,
            cpu_threads: int = 0) -> dict[int, FrameDets]:
    """Embed every detection of ``det_path`` on the frames of ``video_path`` (frame n = det frame n)."""
    from streams import SourceReader
    from tracker.io.motio import read_mot_detections
    from tracker.models.reid import ReIDEncoder

    dets = read_mot_detections(det_path)
    enc = ReIDEncoder(model_path, providers=("cpu",), cpu_threads=cpu_threads)
    out: dict[int, FrameDets] = {}
    pending: list[tuple[int, np.ndarray]] = []
    t0 = time.perf_counter()
    n_boxes = 0

    def flush():
        nonlocal n_boxes
        if not pending:
            return
        frames = [img for _, img in pending]
        boxes = [dets[i][0] for i, _ in pending]
        embs = enc.embed(frames, boxes)
        for (i, _), e in zip(pending, embs, strict=False):
            out[i] = FrameDets(dets[i][0], dets[i][1], np.asarray(e, np.float32))
            n_boxes += len(e)
        pending.clear()

    with SourceReader("video", str(video_path)) as src:
        for frame in src:
            if frame.index in dets and len(dets[frame.index][0]):
                pending.append((frame.index, frame.image))
            if len(pending) >= batch_frames:
                flush()
            if frame.index % 100 == 0:
                _log(f"{det_path.name}: frame {frame.index}, {n_boxes} boxes embedded, "
                     f"{time.perf_counter() - t0:.0f} s")
        flush()
    missing = sorted(set(i for i, (b, _) in dets.items() if len(b)) - set(out))
    if missing:
        raise RuntimeError(f"{det_path}: detections on frames {missing[:5]}... beyond the video's last frame")
    _log(f"{det_path.name}: {n_boxes} boxes on {len(out)} frames embedded in {time.perf_counter() - t0:.1f} s")
    return out


def save(path: Path, data: dict[int, FrameDets]) -> None:
    frames = np.array(sorted(data), dtype=np.int64)
    counts = np.array([len(data[f].scores) for f in frames], dtype=np.int64)
    def cat(name, shape):
        return (np.concatenate([getattr(data[f], name) for f in frames])
               if len(frames) else np.zeros(shape, np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, frames=frames, counts=counts, tlbr=cat("tlbr", (0, 4)), scores=cat("scores", (0,)),
             embeddings=cat("embeddings", (0, 512)))
    tmp.replace(path)


def load(path: Path) -> dict[int, FrameDets]:
    z = np.load(path)
    frames, counts = z["frames"], z["counts"]
    splits = np.cumsum(counts)[:-1]
    tlbr = np.split(z["tlbr"].astype(np.float32), splits)
    scores = np.split(z["scores"].astype(np.float32), splits)
    embs = np.split(z["embeddings"].astype(np.float32), splits)
    return {int(f): FrameDets(t, s, e) for f, t, s, e in zip(frames, tlbr, scores, embs, strict=False)}


def get_embeddings(det_path: str | Path, video_path: str | Path, model_path: str | Path | None = None,
                   refresh: bool = False) -> dict[int, FrameDets]:
    """Cached detections + embeddings: {frame (1-based): FrameDets}; frames without detections are absent."""
    det_path, video_path = Path(det_path), Path(video_path)
    model_path = Path(model_path) if model_path else default_reid_model()
    for p, what in ((det_path, "detection file"), (video_path, "video"), (model_path, "ReID model")):
        if not p.is_file():
            raise FileNotFoundError(f"{what} not found: {p}")
    cache = CACHE_DIR / f"{cache_key(det_path, video_path, model_path)}.npz"
    if cache.is_file() and not refresh:
        _log(f"{det_path.name}: cached embeddings {cache.relative_to(ROOT)}")
        return load(cache)
    _log(f"{det_path.name}: computing embeddings with {model_path.name} (once; cached in {cache.relative_to(ROOT)})")
    data = compute(det_path, video_path, model_path)
    save(cache, data)
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dets", required=True, nargs="+", help="MOT det files")
    ap.add_argument("--video", required=True, help="video whose frame n matches det frame n")
    ap.add_argument("--reid", default=None, help=f"ReID ONNX model (default: $MCTRACK_MODEL_DIR or "
                                                 f"../shared/models, + {REID_REL})")
    ap.add_argument("--refresh", action="store_true", help="recompute even when cached")
    args = ap.parse_args(argv)
    for d in args.dets:
        data = get_embeddings(d, args.video, args.reid, refresh=args.refresh)
        n = sum(len(v.scores) for v in data.values())
        print(f"{d}: {n} detections on {len(data)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
