"""PETS09-MC over a fleet: three edge processes (one camera each) + one identity service + one redis-server
on loopback, against the single-process run of the same config (public detections, the shared OSNet).

    python bench/fleet_pets09.py --out DIR [--embedding-dtype float32|float16] [--keep-single DIR]

Leaves ``DIR/<camera>.txt`` (global ids, written by the identity service) and ``DIR/single/<camera>.txt``,
scores both with ``eval-mc`` and prints as its last line
``fleet cross_idf1=X single cross_idf1=Y ids fleet=A single=B``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer, redis_available  # noqa: E402
from tracker.scoring.multicam import evaluate_multicam  # noqa: E402

CONFIG = ROOT / "tracker" / "configs" / "pets09_mc_public.yaml"


def run_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), *args]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (fleet files here, single-process under single/)")
    ap.add_argument("--embedding-dtype", default="float32", choices=("float32", "float16"))
    ap.add_argument("--keep-single", help="reuse this folder's single-process result instead of running it")
    args = ap.parse_args(argv)
    if not redis_available():
        print("redis-server not installed: run .ci/install-deps.sh", file=sys.stderr)
        return 2
    data = Path(os.environ.get("MCTRACK_DATA_DIR") or ROOT.parent / "shared" / "data")
    models = Path(os.environ.get("MCTRACK_MODEL_DIR") or ROOT.parent / "shared" / "models")
    env = {**os.environ, "MCTRACK_DATA_DIR": str(data), "MCTRACK_MODEL_DIR": str(models)}
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    common = ["--set", "output.video=false", "--set", "reid.providers=[cpu]", "--set", f"pipeline.model_dir={models}"]

    single = Path(args.keep_single).resolve() if args.keep_single else out / "single"
    t0 = time.monotonic()
    if not args.keep_single:
        subprocess.run(run_py("run", "--config", str(CONFIG), "--set", f"output.dir={single}", "-q", *common),
                       check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    t_single = time.monotonic() - t0

    raw = yaml.safe_load(CONFIG.read_text())
    cams = [c["id"] for c in raw["cameras"]]
    cfg_dir = out / "configs"
    cfg_dir.mkdir(exist_ok=True)
    shutil.rmtree(out / "redis", ignore_errors=True)  # a fresh broker: no streams of an earlier run
    with RedisServer(out / "redis") as redis:
        fleet = {"broker": redis.url, "site": "pets09", "embedding_dtype": args.embedding_dtype}
        central = {"multicam": raw["multicam"], "output": {"dir": str(out), "video": False},
                   # files replay faster than real time: wait for the slowest edge so ticks keep one box's order
                   "fleet": {**fleet, "cameras": cams, "lateness": 120.0}}
        (cfg_dir / "central.yaml").write_text(yaml.safe_dump(central))
        t0 = time.monotonic()
        service = subprocess.Popen(run_py("identity-service", "--config", str(cfg_dir / "central.yaml"),
                                          "--until-ended"), env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        edges = []
        for i, cam in enumerate(raw["cameras"]):
            edge = {**{k: v for k, v in raw.items() if k not in ("cameras", "multicam", "output")},
                    "cameras": [cam], "output": {"dir": str(out / f"edge{i + 1}"), "video": False},
                    "fleet": {**fleet, "enabled": True, "node": f"edge{i + 1}"}}
            path = cfg_dir / f"edge{i + 1}.yaml"
            path.write_text(yaml.safe_dump(edge))
            edges.append(subprocess.Popen(run_py("run", "--config", str(path), "-q", *common), env=env, cwd=ROOT,
                                          stdout=subprocess.PIPE, text=True))
        edge_lines = []
        for e in edges:
            o, _ = e.communicate(timeout=1800)
            if e.returncode:
                raise SystemExit(f"an edge failed with exit code {e.returncode}")
            edge_lines += [ln for ln in o.splitlines() if ln.startswith("fleet:")]
        so, _ = service.communicate(timeout=600)
        if service.returncode:
            raise SystemExit(f"the identity service failed with exit code {service.returncode}")
        t_fleet = time.monotonic() - t0
    for ln in edge_lines:
        print(ln)
    print(so.strip().splitlines()[-1])
    gt = data / "PETS09-MC"
    f = evaluate_multicam(gt, out, cams)
    s = evaluate_multicam(gt, single, cams)
    for name, r, secs in (("fleet", f, t_fleet), ("single", s, t_single)):
        pc, cc = r["per_camera_combined"], r["cross_camera"]
        print(f"{name}: per-camera HOTA {pc['HOTA']:.2f} IDF1 {pc['IDF1']:.2f}; cross-camera HOTA {cc['HOTA']:.2f} "
              f"IDF1 {cc['IDF1']:.2f}; identities {r['identities']['predicted']}; wall {secs:.0f} s")
    same = all((out / f"{c}.txt").read_bytes() == (single / f"{c}.txt").read_bytes() for c in cams)
    print(f"result files identical to the single-process run: {same}")
    print(f"fleet cross_idf1={f['cross_camera']['IDF1']:.2f} single cross_idf1={s['cross_camera']['IDF1']:.2f} "
          f"ids fleet={f['identities']['predicted']} single={s['identities']['predicted']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
