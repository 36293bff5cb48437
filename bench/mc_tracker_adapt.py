"""Should the per-camera tracker use the site-adapted ReID features too? Replays PETS09-MC both ways.

The per-camera trackers are replayed over the detections and embeddings ``bench/mc_replay.py`` recorded (same
cache), followed by the identity registry and the pipeline's delayed MOT writer, three ways:

- ``raw``: the trackers get the raw OSNet features (what the product does; equals ``mc_replay.py``'s ``full``);
- ``online``: each detection's feature goes through the registry's site adaptation as learned so far, in its
  calibrated form (``r T(x)`` plus a constant ``sqrt(1 - r^2)`` column: unit norm, and one minus the dot product
  of two features of one camera is the calibrated distance ``r^2 (1 - cos)``, so the tracker's thresholds
  keep their raw scale);
- ``final``: the same with the adaptation learned over the whole run, from the first frame (in-sample, an
  upper bound for what the online version could reach).

    .venv/bin/python bench/mc_tracker_adapt.py [--config configs/pets09_mc.yaml]

Prints one line per way: per-camera and cross-camera HOTA/IDF1 and identities.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import mc_replay  # noqa: E402

from tracker.core.ids import IdAllocator  # noqa: E402
from tracker.core.tracker import CameraTracker  # noqa: E402
from tracker.core.types import Detections  # noqa: E402
from tracker.multicam.registry import IdentityRegistry  # noqa: E402
from tracker.pipeline import load_run_config  # noqa: E402
from tracker.scoring.multicam import evaluate_multicam  # noqa: E402


def calibrated(adapt, cam: str, e: np.ndarray | None) -> np.ndarray | None:
    """(N, D + 1) unit rows whose dot products within one camera give the calibrated distance."""
    if e is None or not len(e):
        return e
    r = adapt.radius(cam)
    extra = np.full((len(e), 1), np.sqrt(max(1.0 - r * r, 0.0)), np.float32)
    return np.hstack([r * adapt.transform(cam, e), extra]).astype(np.float32)


def run(cfg, data: dict, way: str, final, gt_root: Path) -> str:
    trackers = {c: CameraTracker(cfg.tracker, IdAllocator()) for c in data["cameras"]}
    reg = IdentityRegistry(dataclasses.replace(cfg.multicam, enabled=True))
    files = mc_replay.MotFiles(data["cameras"])
    for (now, per_cam, emb), dets in zip(data["ticks"], data["dets"], strict=True):
        outs = {}
        for cam, d in dets.items():
            e = d.embeddings
            adapt = final if way == "final" else reg.adapt if way == "online" else None
            if adapt is not None:
                e = calibrated(adapt, cam, e)
            outs[cam] = trackers[cam].update(Detections(d.tlbr, d.scores, d.timestamp, e, d.frame_index))
        for cam, out in reg.update(now, outs, {c: emb.get(c) for c in outs}).items():
            files.add(cam, per_cam[cam][0], out)
    out_dir = Path(tempfile.mkdtemp(prefix="mc_tracker_adapt_"))
    files.write(out_dir)
    res = evaluate_multicam(gt_root, out_dir)
    pc, cc = res["per_camera_combined"], res["cross_camera"]
    return (f"tracker_features={way:7s} per_camera HOTA={pc['HOTA']:.2f} IDF1={pc['IDF1']:.2f}  cross_camera "
            f"HOTA={cc['HOTA']:.2f} IDF1={cc['IDF1']:.2f}  ids={res['identities']['predicted']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "pets09_mc_public.yaml"))
    args = ap.parse_args(argv)
    os.environ.setdefault("MCTRACK_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    gt_root = Path(os.environ["MCTRACK_DATA_DIR"]) / "PETS09-MC"
    cfg = load_run_config(args.config)
    data = mc_replay.record(args.config, [])
    learned = IdentityRegistry(dataclasses.replace(cfg.multicam, enabled=True))
    for now, per_cam, emb in data["ticks"]:
        learned.update(now, {c: o for c, (_, o) in per_cam.items()}, emb)
    learned.adapt.refresh()
    print(f"# .venv/bin/python bench/mc_tracker_adapt.py --config {os.path.relpath(args.config, ROOT)}   "
          f"({time.strftime('%Y-%m-%d')})")
    for way in ("raw", "online", "final"):
        print(run(cfg, data, way, learned.adapt, gt_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
