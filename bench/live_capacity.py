"""How many PETS-sized cameras the live pipeline tracks in real time on this machine.

Each camera is a PETS09-MC video played at its native rate as if it were live (``pace: true``:
the newest frame wins and late frames are dropped and counted), through the whole pipeline:
batched YOLOv8n detection, batched OSNet ReID, per-camera tracking, MOT/event outputs.
Cameras beyond the three of PETS09-MC reuse its videos (cam1, cam2, cam3, cam1, ...).

Prints one line per camera count: frames in, dropped, and per-camera latency from capture to
result (p50 / p95, the worst camera). A count "holds" when no frame was dropped.

    .venv/bin/python bench/live_capacity.py [--cameras 3 4 5] [--seconds 30] [--detector yolov8n_from_int8_dynamic]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.config import RunConfig  # noqa: E402
from tracker.core.config import from_dict  # noqa: E402
from tracker.pipeline import Pipeline  # noqa: E402

DATA = Path(os.environ.get("MCTRACK_DATA_DIR") or ROOT.parent / "shared" / "data")
PETS_MC = [("cam1", 7.0), ("cam2", 7.0), ("cam3", 3.5)]


def run(n: int, seconds: float, detector: str, imgsz: int, out: Path) -> dict:
    cams = []
    for i in range(n):
        name, fps = PETS_MC[i % 3]
        cams.append({"id": f"{name}_{i}", "source": str(DATA / "PETS09-MC" / name / f"{name}.mp4"), "fps": fps,
                     "pace": True, "queue_size": 2})
    cfg = from_dict(RunConfig, {
        "cameras": cams, "detector": {"model": detector, "providers": ["cuda", "cpu"], "imgsz": imgsz},
        "reid": {"providers": ["cuda", "cpu"]}, "output": {"dir": str(out / f"n{n}"), "events": True},
        "pipeline": {"status_interval": 0}})
    pipe = Pipeline(cfg)
    # Stop after `seconds` of wall time (the files play at their native rate).
    import threading

    timer = threading.Timer(seconds, pipe.stop)
    timer.start()
    try:
        return pipe.run(progress=False)
    finally:
        timer.cancel()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, nargs="*", default=[3, 4, 5, 6])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--detector", default="yolov8n_from_int8_dynamic")
    ap.add_argument("--imgsz", type=int, default=0, help="detector input size (0 = the model's)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as td:
        for n in args.cameras:
            s = run(n, args.seconds, args.detector, args.imgsz, Path(td))
            cams = s["cameras"].values()
            frames = sum(c["frames"] for c in cams)
            dropped = sum(c["dropped"] for c in cams)
            p50 = max(c["latency_p50_ms"] for c in cams)
            p95 = max(c["latency_p95_ms"] for c in cams)
            verdict = "holds" if dropped == 0 else "drops"
            stages = " ".join(f"{k}={v:.0f}" for k, v in s["stage_ms_per_tick"].items())
            print(f"live cameras={n} seconds={s['seconds']:.0f} frames={frames} dropped={dropped} "
                  f"latency_p50_ms={p50:.0f} latency_p95_ms={p95:.0f} (worst camera) ms_per_tick: {stages} "
                  f"frames_per_tick={frames / max(s['ticks'], 1):.1f} {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
