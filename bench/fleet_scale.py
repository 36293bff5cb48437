"""Fleet scale on a synthetic site (like bench/soak.py): C cameras over E edges (threads of this process,
each a real ``FleetEdge`` with its own connection), one identity service (its own process), one
redis-server on loopback. People walk from camera to camera (a visit of ~5 s, a gap of ~2 s); each camera
publishes 10 ticks/s in real time with 512-d embeddings (float32), as a real edge does.

    python bench/fleet_scale.py [--cameras 8 64 256] [--seconds 20] [--out bench/results/fleet_scale.txt]

One line per size: messages/s and bytes/s per camera, the identity service's CPU ms per second of site
time (its own thread's CPU time in the loop), assignment latency p50/p95 (first publish of a confirmed
track at the edge -> its global id back at the edge), and whether the service kept up with real time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402
from tracker.config import FleetConfig  # noqa: E402
from tracker.core.types import TrackOutput  # noqa: E402
from tracker.fleet.edge import FleetEdge  # noqa: E402

FPS = 10.0
DIM = 512
PEOPLE_PER_CAMERA = 3


def run_size(n_cams: int, n_edges: int, seconds: float, tmp: Path) -> dict:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cams = [f"c{i:03d}" for i in range(n_cams)]
    rng = np.random.default_rng(n_cams)
    with RedisServer(tmp / "redis") as redis:
        fleet = {"broker": redis.url, "site": "scale", "lateness": 0.25, "checkpoint_interval": 5.0}
        central = {"fleet": {**fleet, "cameras": cams},
                   "output": {"dir": str(tmp / "central"), "mot": False, "events": False}}
        (tmp / "central.yaml").write_text(yaml.safe_dump(central))
        service = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "identity-service", "--config",
                                    str(tmp / "central.yaml"), "--until-ended"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.0)  # imports
        per_edge = np.array_split(np.arange(n_cams), n_edges)
        edges = [FleetEdge(FleetConfig(**fleet, enabled=True, node=f"e{j:02d}"), [cams[i] for i in idx])
                 for j, idx in enumerate(per_edge)]
        edge_of = {cams[i]: edges[j] for j, idx in enumerate(per_edge) for i in idx}
        n_people = n_cams * PEOPLE_PER_CAMERA * 7 // 5  # in view ~5 s of every ~7 s
        looks = rng.normal(size=(n_people, DIM)).astype(np.float32)
        looks /= np.linalg.norm(looks, axis=1, keepdims=True)
        # each person: current camera, visit end time, next start; a visit is one local track
        where = rng.integers(0, n_cams, n_people)
        start = rng.uniform(0, 7, n_people)
        end = start + rng.uniform(3, 7, n_people)
        lid = np.zeros(n_people, np.int64)
        age = np.zeros(n_people, np.int64)
        next_lid = dict.fromkeys(cams, 1)
        ticks = int(seconds * FPS)
        t0 = time.monotonic()
        late = 0
        for k in range(ticks):
            t = k / FPS
            for p in np.flatnonzero(t >= end):  # leaves: walks to another camera for ~2 s
                where[p] = rng.integers(0, n_cams)
                start[p] = t + rng.uniform(1, 3)
                end[p] = start[p] + rng.uniform(3, 7)
                lid[p] = 0
            visible = np.flatnonzero((t >= start) & (t < end))
            for p in visible:
                if lid[p] == 0:
                    c = cams[where[p]]
                    lid[p] = next_lid[c]
                    next_lid[c] += 1
                    age[p] = 0
                age[p] += 1
            by_cam: dict[int, list[int]] = {}
            for p in visible:
                by_cam.setdefault(int(where[p]), []).append(int(p))
            for ci, cam in enumerate(cams):
                ps = by_cam.get(ci, [])
                n = len(ps)
                tlbr = np.tile(np.array([[100, 100, 160, 280]], np.float32), (n, 1)) + \
                    np.arange(n, dtype=np.float32)[:, None] * 70
                emb = looks[ps] + 0.05 * rng.normal(size=(n, DIM)).astype(np.float32) if n else np.zeros((0, DIM))
                emb = (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)).astype(np.float32)
                out = TrackOutput(lid[ps].astype(np.int64), np.full(n, -1, np.int64), tlbr,
                                  np.full(n, 0.9, np.float32), np.arange(n, dtype=np.int64), age[ps] >= 4, t)
                e = edge_of[cam]
                e.publish({cam: out}, {cam: emb}, {cam: k + 1})
                e.apply({cam: out})
            sleep = t0 + (k + 1) / FPS - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
            else:
                late += 1
        wall = time.monotonic() - t0
        time.sleep(1.0)
        lat = np.concatenate([np.asarray(e.latencies) for e in edges]) * 1000
        msgs = sum(e.published for e in edges)
        nbytes = sum(e.published_bytes for e in edges)
        for e in edges:
            e.close()
        t_close = time.monotonic()
        out, err = service.communicate(timeout=600)
        drain = time.monotonic() - t_close
        if service.returncode:
            raise SystemExit(f"identity service failed: {err[-2000:]}")
        cpu = float(re.search(r"cpu ([0-9.]+) s", out).group(1))
    site_s = ticks / FPS
    return {"cameras": n_cams, "edges": n_edges, "site_s": site_s, "wall_s": wall, "driver_late_ticks": late,
            "msg_s_cam": msgs / site_s / n_cams, "bytes_s_cam": nbytes / site_s / n_cams,
            "service_cpu_ms_per_s": 1000 * cpu / site_s, "p50": float(np.percentile(lat, 50)) if len(lat) else -1,
            "p95": float(np.percentile(lat, 95)) if len(lat) else -1, "assignments": len(lat),
            "drain_s": drain}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[8, 64, 256])
    ap.add_argument("--edges", type=int, default=16, help="edge count (at most one per camera)")
    ap.add_argument("--seconds", type=float, default=20.0, help="site seconds per size")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fleet_scale.txt"))
    args = ap.parse_args(argv)
    lines = [f"# .venv/bin/python bench/fleet_scale.py --cameras {' '.join(map(str, args.cameras))} --edges "
             f"{args.edges} --seconds {args.seconds:g}  (edges as threads of one driver process, the identity "
             "service and redis-server as their own processes, all on this 2-core machine; 10 ticks/s per camera, "
             f"{PEOPLE_PER_CAMERA} people per camera on average, 512-d float32 embeddings)"]
    print(lines[0], flush=True)
    with tempfile.TemporaryDirectory(prefix="fleet_scale_") as d:
        for n in args.cameras:
            r = run_size(n, min(args.edges, n), args.seconds, Path(d) / str(n))
            realtime = r["service_cpu_ms_per_s"] < 1000 and r["drain_s"] < 5
            line = (f"fleet_scale cameras={r['cameras']} edges={r['edges']} site_s={r['site_s']:.0f} "
                    f"msgs_per_s_per_camera={r['msg_s_cam']:.1f} bytes_per_s_per_camera={r['bytes_s_cam']:.0f} "
                    f"service_cpu_ms_per_site_s={r['service_cpu_ms_per_s']:.0f} "
                    f"assign_latency_ms p50={r['p50']:.0f} p95={r['p95']:.0f} (n={r['assignments']}) "
                    f"service_drain_s={r['drain_s']:.1f} driver_late_ticks={r['driver_late_ticks']} "
                    f"{'realtime' if realtime else 'BEHIND'}")
            print(line, flush=True)
            lines.append(line)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
