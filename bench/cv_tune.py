"""Choose the tracker's motion defaults by leave-one-sequence-out cross-validation on MOT15-dev.

MOT15-dev (``$MCTRACK_DATA_DIR/MOT15-dev``): five MOT15 train sequences with SORT's Faster R-CNN
detections, text only, so every run here is motion only. For each fold one sequence is held out;
parameters are chosen on the other four (coordinate search over round-number grids, objective =
COMBINED HOTA of the four, a change kept only if it gains at least MIN_GAIN) and the held-out
sequence is tracked with them. The held-out result files of the five folds are then scored together
(trackeval's COMBINED), which is the figure to report: no sequence is scored with parameters chosen
on it. The defaults shipped are the ones the same search chooses on all five sequences (in-sample
for MOT15-dev; PETS09-S2L1 and PETS09-MC were not used at all, so they are held out for them).

    .venv/bin/python bench/cv_tune.py                      # default config: per-sequence and COMBINED
    .venv/bin/python bench/cv_tune.py --cv [--passes 2]    # leave-one-out folds, then the all-5 choice
    .venv/bin/python bench/cv_tune.py --set n_init=3 --set kalman.std_velocity=0.3

Each sequence runs at its own frame rate (``seqinfo.ini``), with the same parameters for all.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.core.config import TrackerConfig  # noqa: E402
from tracker.io.motio import read_mot_detections, write_mot_results  # noqa: E402
from tracker.offline import track_sequence  # noqa: E402
from tracker.scoring.mot import COMBINED, evaluate_files, format_table  # noqa: E402

DATA = Path(os.environ.get("MCTRACK_DATA_DIR") or ROOT.parent / "shared" / "data") / "MOT15-dev"
SEQS = ("ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "Venice-2")
# A change must raise the objective by this much (HOTA points) to be kept: smaller gains are
# within the noise of one search and would only fit the training sequences.
MIN_GAIN = 0.2
GRID: dict[str, list] = {
    "high_score": [0.4, 0.5, 0.6],  # on the detector's score range (tracker.score_scale: adaptive)
    "new_track_score": [0.6, 0.7, 0.8],
    "n_init": [3, 4, 6],
    "motion_max_age": [0.5, 1.0, 2.0],
    "iou_threshold": [0.5, 0.7],
    "kalman.std_velocity": [0.3, 1.0, 2.0],
    "kalman.std_measurement": [0.2, 0.3],
    "kalman.score_scaled_noise": [False, True],
}


@dataclasses.dataclass(frozen=True)
class Seq:
    name: str
    fps: float
    n_frames: int
    dets: dict
    gt: Path


def load_seqs(data: Path = DATA, names=SEQS) -> dict[str, Seq]:
    out = {}
    for name in names:
        info = configparser.ConfigParser()
        info.read(data / name / "seqinfo.ini")
        s = info["Sequence"]
        out[name] = Seq(name, float(s["frameRate"]), int(s["seqLength"]),
                        read_mot_detections(data / name / "det" / "det.txt"), data / name / "gt" / "gt.txt")
    return out


def with_param(cfg: TrackerConfig, key: str, value) -> TrackerConfig:
    if key.startswith("kalman."):
        return dataclasses.replace(cfg, kalman=dataclasses.replace(cfg.kalman, **{key.split(".", 1)[1]: value}))
    return dataclasses.replace(cfg, **{key: value})


def get(cfg: TrackerConfig, key: str):
    obj = cfg.kalman if key.startswith("kalman.") else cfg
    return getattr(obj, key.split(".")[-1])


def parse_value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def track_all(cfg: TrackerConfig, seqs: dict[str, Seq], out_dir: Path) -> dict[str, Path]:
    files = {}
    for name, s in seqs.items():
        files[name] = out_dir / f"{name}.txt"
        write_mot_results(files[name], track_sequence(s.dets, s.fps, cfg, None, s.n_frames))
    return files


def score(cfg: TrackerConfig, seqs: dict[str, Seq]) -> dict[str, dict]:
    """Per-sequence and COMBINED scores of ``cfg`` on ``seqs`` (motion only)."""
    with tempfile.TemporaryDirectory() as td:
        files = track_all(cfg, seqs, Path(td))
        return evaluate_files({n: s.gt for n, s in seqs.items()}, files)


def search(cfg: TrackerConfig, seqs: dict[str, Seq], params, passes: int, tag: str) -> TrackerConfig:
    """Coordinate search maximising COMBINED HOTA over ``seqs``; prints one line per trial."""
    best = score(cfg, seqs)[COMBINED]["HOTA"]
    print(f"[{tag}] start HOTA {best:.2f}", flush=True)
    for p in range(passes):
        changed = False
        for key in params:
            for value in GRID[key]:
                if value == get(cfg, key):
                    continue
                trial = with_param(cfg, key, value)
                obj = score(trial, seqs)[COMBINED]["HOTA"]
                if obj > best + MIN_GAIN:
                    best, cfg, changed = obj, trial, True
            print(f"[{tag}] pass {p} {key}={get(cfg, key)} -> {best:.2f}", flush=True)
        if not changed:
            break
    return cfg


def _fold(args) -> tuple[str, TrackerConfig]:
    held, cfg, params, passes = args
    seqs = load_seqs()
    train = {n: s for n, s in seqs.items() if n != held}
    return held, search(cfg, train, params, passes, f"fold {held}")


def changes(cfg: TrackerConfig, base: TrackerConfig, params) -> str:
    diff = [f"{k}={get(cfg, k)}" for k in params if get(cfg, k) != get(base, k)]
    return " ".join(diff) or "(defaults)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv", action="store_true", help="leave-one-sequence-out search (else: score --set config)")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--params", nargs="*", default=list(GRID), choices=list(GRID), metavar="KEY")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="start from these values")
    ap.add_argument("--jobs", type=int, default=2, help="folds searched in parallel (processes)")
    ap.add_argument("--keep", type=Path, help="keep the held-out result files here")
    ap.add_argument("--save", type=Path, help="write the parameters chosen per fold and on all five (JSON; "
                    "tests/test_accuracy_gate.py replays the folds from bench/results/cv_mot15dev_folds.json)")
    args = ap.parse_args()

    base = TrackerConfig()
    for item in args.set:
        key, _, value = item.partition("=")
        base = with_param(base, key, parse_value(value))
    seqs = load_seqs()
    if not args.cv:
        print(format_table(score(base, seqs)))
        return 0

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        chosen = dict(pool.map(_fold, [(h, base, args.params, args.passes) for h in SEQS]))
    keep = args.keep or Path(tempfile.mkdtemp(prefix="cv_heldout_"))
    keep.mkdir(parents=True, exist_ok=True)
    for held, cfg in chosen.items():
        track_all(cfg, {held: seqs[held]}, keep)
        print(f"fold {held}: chosen on the other four: {changes(cfg, base, args.params)}")
    print("\nheld-out scores (each sequence tracked with the parameters chosen on the other four):")
    print(format_table(evaluate_files({n: s.gt for n, s in seqs.items()}, {n: keep / f"{n}.txt" for n in seqs})))
    if args.keep is None:
        shutil.rmtree(keep)
    final = search(base, seqs, args.params, args.passes, "all five")
    print(f"\nchosen on all five (in-sample for MOT15-dev): {changes(final, base, args.params)}")
    print(format_table(score(final, seqs)))
    if args.save:
        def as_dict(cfg):
            return {k: get(cfg, k) for k in args.params}  # every searched key, so a replay needs no defaults
        args.save.write_text(json.dumps({"start": [*args.set], "folds": {h: as_dict(c) for h, c in chosen.items()},
                                         "all_five": as_dict(final)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
