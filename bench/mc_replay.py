"""Replay the identity registry over recorded per-camera tracks of PETS09-MC, and score it.

The per-camera part of a multi-camera run (detections, OSNet embeddings, one CameraTracker per
camera) does not depend on the registry, so it is recorded once (``Pipeline`` with the registry
off, every tick's outputs and embeddings) into ``bench/.cache/`` and the registry is then
replayed over it in seconds. Scores are ``tracker.scoring.multicam.evaluate_multicam`` on the MOT
files the replay writes (the same rows the pipeline's MOT writer emits: confirmed tracks matched
to a detection this frame, id = global id). A replay with the default config gives the same
files as ``python run.py run --config configs/pets09_mc_public.yaml --set multicam.enabled=true``.

Variants measure what each cue contributes (the issue asks for time, topology and geometry):

    .venv/bin/python bench/mc_replay.py                      # all variants, public detections
    .venv/bin/python bench/mc_replay.py --variants full      # one
    .venv/bin/python bench/mc_replay.py --config configs/pets09_mc.yaml   # YOLO detector (slow first time)

Prints one line per variant: per-camera and cross-camera HOTA/IDF1, identities produced.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import os
import pickle  # our own cache of our own arrays, written by this script; never loaded from elsewhere
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from tracker.config import OutputConfig  # noqa: E402
from tracker.core.types import TrackOutput  # noqa: E402
from tracker.io.sinks.mot import DelayedIdentities, mot_lines  # noqa: E402
from tracker.io.sinks.records import snapshot  # noqa: E402
from tracker.multicam.config import MulticamConfig  # noqa: E402
from tracker.multicam.registry import IdentityRegistry  # noqa: E402
from tracker.pipeline import Pipeline, load_run_config  # noqa: E402
from tracker.scoring.multicam import evaluate_multicam  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"


def _digest(cfg) -> str:
    """Covers the run config except its multicam section, and the per-camera tracking code."""
    h = hashlib.sha256(repr(dataclasses.replace(cfg, multicam=MulticamConfig(), output=None)).encode())
    for name in ("tracker/core/tracker.py", "tracker/core/kalman.py", "tracker/core/association.py",
                 "tracker/core/appearance.py", "tracker/pipeline.py", "tracker/models/reid.py",
                 "tracker/models/detection.py"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:16]


def record(cfg_path: str, overrides: list[str]) -> dict:
    """Per-camera ticks of one run: ``{"ticks": [(now, {cam: (frame_index, TrackOutput)}, {cam: emb})],
    "dets": [{cam: Detections}] (one per tick: what each camera's tracker got, so the trackers can be replayed
    too), "cameras": [cam]}``."""
    CACHE.mkdir(exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="mc_replay_")  # the run's own outputs are not needed
    cfg = load_run_config(cfg_path, [*overrides, "multicam.enabled=false", f"output.dir={tmp.name}",
                                     "output.video=false", "output.http=false"])
    path = CACHE / f"mc_ticks_{_digest(cfg)}.pkl"
    if path.is_file():
        with open(path, "rb") as f:
            return pickle.load(f)
    pipe = Pipeline(cfg)
    ticks = []
    last: list = []
    orig_process = pipe._process
    if pipe.encoder is not None:
        real_embed = pipe.encoder.embed

        def embed(images, boxes):
            out = real_embed(images, boxes)
            last[:] = out
            return out

        pipe.encoder.embed = embed

    def spy(batch):
        last.clear()
        dets.append({})
        results = orig_process(batch)
        now = max(r.frame.timestamp for r in results)
        emb = {r.camera_id: (last[i] if last else None) for i, r in enumerate(results)}
        ticks.append((now, {r.camera_id: (r.frame.index, r.tracks) for r in results}, emb))
        return results

    dets: list = []
    for cid, cam in pipe.cameras.items():
        def update(d, _real=cam.tracker.update, _cid=cid):
            dets[-1][_cid] = d
            return _real(d)

        cam.tracker.update = update

    pipe._process = spy
    t0 = time.time()
    pipe.run(progress=True)
    print(f"# recorded {len(ticks)} ticks in {time.time() - t0:.0f} s -> {path}", file=sys.stderr)
    data = {"ticks": ticks, "dets": dets, "cameras": [c.id for c in cfg.cameras]}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


class MotFiles:
    """``<cam>.txt`` as the pipeline's MOT writer makes them: rows held back ``delay`` seconds (default: the
    pipeline's ``output.mot_delay``), then written with the identity their track holds by then."""

    def __init__(self, cameras: list[str], delay: float | None = None):
        delay = OutputConfig().mot_delay if delay is None else delay
        self.held = {c: DelayedIdentities(delay) for c in cameras}
        self.lines: dict[str, list[str]] = {c: [] for c in cameras}

    def add(self, cam: str, frame_index: int, out: TrackOutput) -> None:
        self.lines[cam].append(self.held[cam].add(frame_index, float(out.timestamp), snapshot(out, "global")))

    def write(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for cam, chunks in self.lines.items():
            (out_dir / f"{cam}.txt").write_text("".join(chunks) + self.held[cam].flush())


def track_votes(data: dict, gt_root: Path) -> dict:
    """(camera, local id) -> Counter of the ground-truth ids its confirmed, matched rows cover (IoU >= 0.5 with the
    best-overlapping ground-truth box; -1: none)."""
    from tracker.core.boxes import iou_matrix

    gt: dict[str, dict[int, np.ndarray]] = {}
    for cam in data["cameras"]:
        rows = np.loadtxt(gt_root / cam / "gt" / "gt.txt", delimiter=",", ndmin=2)
        gt[cam] = {int(f): rows[rows[:, 0] == f] for f in np.unique(rows[:, 0])}
    votes: dict = collections.defaultdict(collections.Counter)
    for _, per_cam, _ in data["ticks"]:
        for cam, (fi, out) in per_cam.items():
            keep = np.flatnonzero(np.asarray(out.confirmed) & (np.asarray(out.det_index) >= 0))
            g = gt[cam].get(fi)
            if g is None:
                for k in keep:
                    votes[(cam, int(out.track_ids[k]))][-1] += 1
                continue
            if not len(keep):
                continue
            gb = np.column_stack([g[:, 2], g[:, 3], g[:, 2] + g[:, 4], g[:, 3] + g[:, 5]])
            iou = iou_matrix(np.asarray(out.tlbr)[keep], gb)
            for r, k in enumerate(keep):
                j = int(np.argmax(iou[r]))
                votes[(cam, int(out.track_ids[k]))][int(g[j, 1]) if iou[r, j] >= 0.5 else -1] += 1
    return votes


def replay(data: dict, mc: MulticamConfig, out_dir: Path, delay: float | None = None) -> dict:
    """Feed the recorded ticks to a registry; write ``out_dir/<cam>.txt``; return timing."""
    reg = IdentityRegistry(mc) if mc.enabled else None
    files = MotFiles(data["cameras"], delay)
    times = []
    for now, per_cam, emb in data["ticks"]:
        outputs = {c: o for c, (_, o) in per_cam.items()}
        if reg is not None:
            t = time.perf_counter()
            outputs = reg.update(now, outputs, emb)
            times.append(time.perf_counter() - t)
        for cam, out in outputs.items():
            files.add(cam, per_cam[cam][0], out)
    files.write(out_dir)
    ms = 1000 * np.asarray(times) if times else np.zeros(1)
    learned = reg.learned_topology() if reg is not None else {"overlaps": [], "links": []}
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "events": len(reg.events) if reg is not None else 0,
            "learned": "overlaps=" + (",".join("+".join(p) for p in learned["overlaps"]) or "-") + " links=" + (
                ",".join(f"{lk.a}+{lk.b}[{lk.min_travel:g},{lk.max_travel:g}s]" for lk in learned["links"]) or "-")}


def oracle(data: dict, gt_root: Path, out_dir: Path) -> None:
    """The ceiling for these per-camera tracks: every track gets the ground-truth id it overlaps most
    (IoU >= 0.5 over its rows), i.e. perfect linking within and across cameras; tracks matching no
    person keep an id of their own (a duplicate in one frame too)."""
    best = {}
    for key, v in track_votes(data, gt_root).items():
        people = [(n, p) for p, n in v.items() if p >= 0]  # the person covered most; first seen wins ties
        if people:
            best[key] = max(people, key=lambda np_: np_[0])[1]
    lines: dict[str, list[str]] = {c: [] for c in data["cameras"]}
    for _, per_cam, _ in data["ticks"]:
        for cam, (fi, out) in per_cam.items():
            used, gids = set(), []
            for t in np.asarray(out.track_ids):
                g = best.get((cam, int(t)), -1)
                if g < 0 or g in used:
                    g = 100000 + 1000 * data["cameras"].index(cam) + int(t)
                used.add(g)
                gids.append(g)
            rows = TrackOutput(out.track_ids, np.asarray(gids, np.int64), out.tlbr, out.scores, out.det_index,
                               out.confirmed, out.timestamp)
            lines[cam].append(mot_lines(fi, snapshot(rows, "global")))
    out_dir.mkdir(parents=True, exist_ok=True)
    for cam, chunks in lines.items():
        (out_dir / f"{cam}.txt").write_text("".join(chunks))


def variants(site: MulticamConfig) -> dict[str, MulticamConfig]:
    """Registry off, the full registry, and the full registry minus one kind of cue at a time.

    - no-geometry: without the homographies (overlapping views compared by appearance and time only);
    - no-topology: without the declared overlaps, links and homographies (a first day: nothing of the site written);
    - no-time: without the time cues (travel-time windows, hand-over time, walking reach, the
      penalty for long absences); identities are still forgotten after ``memory_seconds``;
    - appearance-only: none of the above;
    - full-static, no-topology-static: the registry as it was before site adaptation and learned topology
      (``adapt`` and ``learn_topology`` off), with and without the written topology;
    - no-topology-adapt / no-topology-learn: no written topology, with one of the two new pieces only;
    - full-no-adapt / full-no-learn: the written topology, without one of them;
    - full-reentry / no-topology-reentry: identities may come back into the camera they were last seen in
      after any absence up to ``memory_seconds`` (``reentry_max_gap``), not only within a second.

    The no-topology rows are what a new user gets on a first day: nothing of the site written.
    """
    full = dataclasses.replace(site, enabled=True)
    static = dict(adapt=False, learn_topology=False)
    no_topo = dataclasses.replace(full, overlaps=(), links=(), homographies=())
    untimed = dict(gap_penalty=0.0, overlap_handover=full.memory_seconds, max_speed=100.0)
    no_time = dataclasses.replace(full, **untimed, links=tuple(
        dataclasses.replace(link, min_travel=0.0, max_travel=full.memory_seconds) for link in full.links))
    return {
        "off": dataclasses.replace(site, enabled=False),
        "full": full,
        "no-geometry": dataclasses.replace(full, homographies=()),
        "no-topology": no_topo,
        "full-static": dataclasses.replace(full, **static),
        "full-no-adapt": dataclasses.replace(full, adapt=False),
        "full-no-learn": dataclasses.replace(full, learn_topology=False),
        "full-reentry": dataclasses.replace(full, reentry_max_gap=full.memory_seconds),
        "no-topology-reentry": dataclasses.replace(no_topo, reentry_max_gap=full.memory_seconds),
        "no-topology-static": dataclasses.replace(no_topo, **static),
        "no-topology-adapt": dataclasses.replace(no_topo, learn_topology=False),
        "no-topology-learn": dataclasses.replace(no_topo, adapt=False),
        "no-time": no_time,
        "appearance-only": dataclasses.replace(full, overlaps=(), links=(), homographies=(), **untimed),
        "oracle-links": None,  # ground truth links the tracks: the ceiling (see oracle())
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "pets09_mc_public.yaml"))
    ap.add_argument("--gt-root", default=None, help="default: $MCTRACK_DATA_DIR/PETS09-MC")
    ap.add_argument("--variants", nargs="+", default=None, help="subset of the variants (see variants())")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="multicam.* override for the replayed registry, e.g. --set multicam.memory_seconds=10")
    ap.add_argument("--mot-delay", type=float, default=None,
                    help="output.mot_delay of the replayed MOT writer (default: the pipeline's default)")
    ap.add_argument("--keep", default=None, help="write the MOT files of each variant under this folder")
    args = ap.parse_args(argv)
    data_dir = os.environ.get("MCTRACK_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    os.environ.setdefault("MCTRACK_DATA_DIR", data_dir)
    gt_root = Path(args.gt_root or Path(data_dir) / "PETS09-MC")
    data = record(args.config, [])
    site = load_run_config(args.config).multicam  # read fresh: the cache holds per-camera data only
    if args.overrides:
        for o in args.overrides:
            key, _, value = o.removeprefix("multicam.").partition("=")
            site = dataclasses.replace(site, **{key: yaml.safe_load(value)})
    todo = variants(site)
    names = args.variants or list(todo)
    print(f"# .venv/bin/python bench/mc_replay.py --config {os.path.relpath(args.config, ROOT)}"
          f"{''.join(' --set ' + o for o in args.overrides)}"
          f"{'' if args.mot_delay is None else f' --mot-delay {args.mot_delay:g}'}"
          f"   ({time.strftime('%Y-%m-%d')}, ground truth 19 ids)")
    for name in names:
        if name not in todo:
            print(f"variant={name} unknown")
            continue
        base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mc_replay_"))
        out = base / name
        if todo[name] is None:
            oracle(data, gt_root, out)
            timing = {"median_ms": 0.0, "p95_ms": 0.0, "events": 0, "learned": ""}
        else:
            timing = replay(data, todo[name], out, args.mot_delay)
        res = evaluate_multicam(gt_root, out)
        pc, cc = res["per_camera_combined"], res["cross_camera"]
        print(f"variant={name:16s} per_camera HOTA={pc['HOTA']:.2f} IDF1={pc['IDF1']:.2f}  "
              f"cross_camera HOTA={cc['HOTA']:.2f} IDF1={cc['IDF1']:.2f}  ids={res['identities']['predicted']} "
              f"(true {res['identities']['true']})  "
              f"registry_ms median={timing['median_ms']:.3f} p95={timing['p95_ms']:.3f} "
              f"corrections={timing['events']}" + (f"  learned {timing['learned']}" if timing["learned"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
