"""Build a ReID pairs file (same- and different-person crop pairs) from PETS09-S2L1 ground truth.

Crops are ground-truth boxes that are clean enough to judge appearance by: fully inside the
frame, at least ``--min-height`` px tall, and covered by the other ground-truth boxes of the same
frame by at most ``--max-cover`` of their area (sum of the intersections). For ``--ids``
identities whose clean crops span at least ``--min-gap`` frames, 2 or 3 crops per identity are
drawn at least ``--min-gap`` frames apart (100 frames = 14 s at 7 fps: other pose, place, light);
consecutive crops of one identity make the same-person pairs and randomly drawn crops of two
different identities the different-person pairs. Everything is drawn from one seeded generator,
so a given seed always writes the same file.

Image specs in the file are ``${DATA}/PETS09-S2L1/video/vtest.avi@FRAME`` (frame 1-based, equal
to the ground-truth frame): ``run.py reid-table`` replaces ``${DATA}`` with ``--data-dir``, else
``$MCTRACK_DATA_DIR``, else ``../shared/data`` beside the project, so the file works on any
machine with the data. Boxes are ``left;top;width;height`` pixels.

    .venv/bin/python bench/make_pairs.py [--seed 0] [--out bench/results/pets09_pairs.csv]
    python run.py reid-table --pairs bench/results/pets09_pairs.csv --models osnet_x0_25_msmt17
"""

from __future__ import annotations

import argparse
import configparser
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tracker.io.atomic import atomic_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEQ = "PETS09-S2L1"
VIDEO = "video/vtest.avi"


def load_gt(path: Path) -> np.ndarray:
    """MOT15 ground truth as an (M, 6) float64 array: frame, id, left, top, width, height (px)."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return rows[:, :6]


def image_size(seq_dir: Path) -> tuple[int, int]:
    """(width, height) in pixels from ``seqinfo.ini``."""
    ini = configparser.ConfigParser()
    ini.read(seq_dir / "seqinfo.ini")
    return int(ini["Sequence"]["imWidth"]), int(ini["Sequence"]["imHeight"])


def clean_mask(gt: np.ndarray, width: int, height: int, min_height: float, max_cover: float) -> np.ndarray:
    """Which ground-truth rows are usable crops.

    Args:
        gt: (M, 6) frame, id, left, top, width, height (px).
        width, height: frame size in px.
        min_height: smallest box height in px. Higher: sharper crops, fewer candidates.
        max_cover: largest fraction of a box covered by the other boxes of its frame (sum of the
            intersections). Lower: fewer occluded crops, fewer candidates.
    Returns:
        (M,) bool.
    """
    l, t, w, h = gt[:, 2], gt[:, 3], gt[:, 4], gt[:, 5]
    ok = (l >= 0) & (t >= 0) & (l + w <= width) & (t + h <= height) & (h >= min_height)
    cover = np.zeros(len(gt))
    for f in np.unique(gt[:, 0]):
        idx = np.flatnonzero(gt[:, 0] == f)
        b = gt[idx, 2:6]
        x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
        iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
        ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
        inter = iw * ih
        np.fill_diagonal(inter, 0)
        cover[idx] = inter.sum(axis=1) / (b[:, 2] * b[:, 3])
    return ok & (cover <= max_cover)


def draw_crops(frames: np.ndarray, k: int, gap: int, rng: np.random.Generator, tries: int = 50) -> list[int]:
    """Up to k row indices into ``frames`` whose frames are pairwise at least ``gap`` apart, in time order.

    Args:
        frames: (n,) sorted frame numbers of one identity's clean crops.
    """
    best: list[int] = []
    for _ in range(tries):
        chosen: list[int] = []
        lo = frames[0]
        for j in range(k):
            hi = frames[-1] - (k - 1 - j) * gap  # leave room for the crops still to come
            cand = np.flatnonzero((frames >= lo) & (frames <= hi))
            if len(cand) == 0:
                break
            chosen.append(int(rng.choice(cand)))
            lo = frames[chosen[-1]] + gap
        if len(chosen) > len(best):
            best = chosen
        if len(best) == k:
            break
    return best


def make_pairs(gt: np.ndarray, width: int, height: int, n_ids: int = 8, n_same: int = 12, n_diff: int = 12,
               min_gap: int = 100, min_height: float = 60, max_cover: float = 0.1, seed: int = 0):
    """Pick crops and pairs.

    Returns:
        list of (name, row1, row2) with rows (frame, id, left, top, width, height) of ``gt``.
    Raises:
        SystemExit: not enough identities or crops for the requested pairs.
    """
    rng = np.random.default_rng(seed)
    clean = gt[clean_mask(gt, width, height, min_height, max_cover)]
    by_id = {}
    for pid in np.unique(clean[:, 1]).astype(int):
        rows = clean[clean[:, 1] == pid]
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        if rows[-1, 0] - rows[0, 0] >= min_gap:
            by_id[pid] = rows
    if len(by_id) < max(n_ids, 2):
        sys.exit(f"only {len(by_id)} identities have clean crops {min_gap} frames apart; asked for {n_ids}")
    ids = sorted(int(i) for i in rng.choice(sorted(by_id), size=n_ids, replace=False))
    extra = n_same - n_ids  # identities that give two same-person pairs (three crops)
    three = [i for i in ids if by_id[i][-1, 0] - by_id[i][0, 0] >= 2 * min_gap]
    three = set(int(i) for i in rng.permutation(three)[:max(extra, 0)])
    if n_same < n_ids or len(three) < extra:
        sys.exit(f"cannot make {n_same} same-person pairs from {n_ids} identities with gap {min_gap}")
    crops: dict[int, list[np.ndarray]] = {}
    for pid in ids:
        rows = by_id[pid]
        k = 3 if pid in three else 2
        picked = draw_crops(rows[:, 0], k, min_gap, rng)
        if len(picked) < k:
            sys.exit(f"id {pid}: found only {len(picked)} clean crops {min_gap} frames apart")
        crops[pid] = [rows[j] for j in picked]
    same = [(pid, a, b) for pid in ids for a, b in zip(crops[pid], crops[pid][1:], strict=False)]
    flat = [c for pid in ids for c in crops[pid]]
    cross = [(a, b) for i, a in enumerate(flat) for b in flat[i + 1:] if a[1] != b[1]]
    if len(cross) < n_diff:
        sys.exit(f"only {len(cross)} different-person pairs available; asked for {n_diff}")
    diff = [cross[j] for j in sorted(rng.choice(len(cross), size=n_diff, replace=False))]
    pairs = [(f"same{n:02d}", a, b) for n, (_, a, b) in enumerate(same, 1)]
    pairs += [(f"diff{n:02d}", a, b) for n, (a, b) in enumerate(diff, 1)]
    return pairs


def write_csv(path: Path, pairs, header_lines: list[str]) -> None:
    def spec(row) -> str:
        return f"${{DATA}}/{SEQ}/{VIDEO}@{int(row[0])}"

    def box(row) -> str:
        return ";".join(f"{v:.2f}" for v in row[2:6])

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        for line in header_lines:
            f.write(f"# {line}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "image1", "box1", "image2", "box2", "id1", "id2"])
        for name, a, b in pairs:
            w.writerow([name, spec(a), box(a), spec(b), box(b), int(a[1]), int(b[1])])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("MCTRACK_DATA_DIR") or str(ROOT.parent / "shared" / "data"),
                   help="folder holding PETS09-S2L1/ (default: $MCTRACK_DATA_DIR, else ../shared/data)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "pets09_pairs.csv"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ids", type=int, default=8, help="identities to draw crops from")
    p.add_argument("--same", type=int, default=12, help="same-person pairs (between --ids and 2x --ids)")
    p.add_argument("--diff", type=int, default=12, help="different-person pairs")
    p.add_argument("--min-gap", type=int, default=100, help="frames between two crops of one identity")
    p.add_argument("--min-height", type=float, default=60, help="smallest crop height in px")
    p.add_argument("--max-cover", type=float, default=0.1,
                   help="largest fraction of a crop covered by other ground-truth boxes")
    a = p.parse_args(argv)
    seq_dir = Path(a.data_dir) / SEQ
    gt_path = seq_dir / "gt" / "gt.txt"
    if not gt_path.is_file():
        sys.exit(f"ground truth not found: {gt_path} (set --data-dir or $MCTRACK_DATA_DIR)")
    width, height = image_size(seq_dir)
    pairs = make_pairs(load_gt(gt_path), width, height, a.ids, a.same, a.diff, a.min_gap, a.min_height,
                       a.max_cover, a.seed)
    header = [
        f"ReID pairs from {SEQ} ground truth: bench/make_pairs.py --seed {a.seed} --ids {a.ids} --same {a.same} "
        f"--diff {a.diff} --min-gap {a.min_gap} --min-height {a.min_height:g} --max-cover {a.max_cover:g}",
        "${DATA} = --data-dir of run.py reid-table, else $MCTRACK_DATA_DIR, else ../shared/data beside the project;",
        "image = VIDEO@FRAME (1-based, = gt frame); box = left;top;width;height px; id = gt identity.",
    ]
    out = Path(a.out)
    write_csv(out, pairs, header)
    n_crops = len({(int(r[0]), int(r[1])) for _, x, y in pairs for r in (x, y)})
    n_ids = len({int(r[1]) for _, x, y in pairs for r in (x, y)})
    n_same = sum(name.startswith("same") for name, _, _ in pairs)
    print(f"wrote {len(pairs)} pairs ({n_same} same-person, {len(pairs) - n_same} different-person; "
          f"{n_crops} crops of {n_ids} ids) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
