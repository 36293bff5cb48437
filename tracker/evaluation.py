"""MOTChallenge scoring (HOTA, CLEAR, Identity) of tracking result files against ground truth.

The metric arithmetic is trackeval's own (``trackeval.metrics.HOTA``, ``CLEAR``, ``Identity``, version 1.3.0);
only the file loading and the MOTChallenge preprocessing are done here, so any pair of files can be scored
without trackeval's folder layout, seqmaps or ``seqinfo.ini``.

File formats (comma separated, one box per line, frames 1-based, boxes ``tlwh`` in pixels):

- Ground truth, MOT15 style (10 columns; 7 accepted): ``frame,id,left,top,w,h,conf,x,y,z``.
  Rows with ``conf == 0`` are removed from the ground truth; nothing is removed from the predictions, so a
  prediction on such a box is a false positive. Every other row is a pedestrian. This is trackeval's
  ``MotChallenge2DBox`` with ``BENCHMARK='MOT15'`` (its distractor preprocessing is "never done for MOT15").
- Ground truth, MOT16/17/20 style (9 columns; 8 accepted): ``frame,id,left,top,w,h,consider,class,visibility``.
  Scored: class 1 (pedestrian) with ``consider != 0``. A prediction matched (Hungarian on IoU, IoU >= 0.5,
  against *all* gt boxes of the frame) to a box of class 2 (person on vehicle), 7 (static person),
  8 (distractor) or 12 (reflection) is dropped; for files whose path contains ``MOT20`` class 6
  (non-MOT vehicle) is a distractor too. Everything else (vehicles, occluders, ``consider == 0``
  pedestrians) is simply not ground truth, so a prediction on it is a false positive. This is
  ``trackeval.datasets.MotChallenge2DBox.get_preprocessed_seq_data``.
- Results: ``frame,id,left,top,w,h[,score,...]``; columns after ``h`` are ignored. An empty file is a
  valid result (the tracker output nothing).

Each sequence runs over ``max(frame)`` of its gt and results timesteps. Ids may be any integers; they are
relabelled to ``0..K-1`` after preprocessing. An id may appear at most once per frame in each file.

Reported values per sequence (and ``"COMBINED"``, trackeval's ``combine_sequences`` over all of them):
``HOTA``, ``DetA``, ``AssA`` (percent, mean over the 19 IoU thresholds 0.05..0.95 as trackeval reports),
``IDF1``, ``MOTA`` (percent, IoU >= 0.5), ``IDSW`` (count), ``GT_IDs`` and ``Pred_IDs`` (distinct ids
scored after preprocessing; summed over sequences for ``COMBINED``).

numpy 2: trackeval 1.3.0 uses none of the removed numpy aliases (``np.float``, ``np.int``, ``np.bool``...),
so it imports and runs unchanged and no compatibility shim is needed. On perturbed results for MOT17-mini and
PETS09 and ETH-Bahnhof (MOT15 mode, conf 0 rows included) this module reproduces trackeval's own
``MotChallenge2DBox`` + ``Evaluator`` numbers (``tests/test_evaluation.py::test_matches_trackeval_folder_evaluation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from trackeval.metrics import CLEAR, HOTA, Identity

from .errors import UserError

__all__ = ["COMBINED", "FIELDS", "evaluate_dirs", "evaluate_files", "format_table"]

COMBINED = "COMBINED"
FIELDS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW", "GT_IDs", "Pred_IDs")

_EPS = np.finfo("float").eps
_MATCH_IOU = 0.5  # IoU a prediction needs with a distractor/ignore box to be dropped (trackeval's value).
_PEDESTRIAN = 1
_VALID_CLASSES = np.arange(1, 14)  # trackeval's MOTChallenge class ids 1..13
_DISTRACTORS = (2, 7, 8, 12)  # person_on_vehicle, static_person, distractor, reflection
_DISTRACTORS_MOT20 = _DISTRACTORS + (6,)  # + non_mot_vehicle
# PRINT_CONFIG False keeps trackeval from printing its config on construction (HOTA takes no config).
_METRIC_CONFIG = {"THRESHOLD": _MATCH_IOU, "PRINT_CONFIG": False}


@dataclass(frozen=True)
class _Boxes:
    """Rows of one file, sorted by frame.

    frames (N,) int64 1-based; ids (N,) int64; tlwh (N,4) float64 pixels;
    scored (N,) bool: row is ground truth to be found (always True for results);
    drops_match (N,) bool: a prediction matched to this row is removed (always False for results).
    """

    frames: np.ndarray
    ids: np.ndarray
    tlwh: np.ndarray
    scored: np.ndarray
    drops_match: np.ndarray


# --------------------------------------------------------------------------------------------------------------------
# Loading


def _read_rows(path: Path, what: str) -> np.ndarray:
    """Parse a comma (or whitespace) separated numeric file to a (N, C) float64 array; (0, 0) when empty."""
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {what} file {path}: {exc}") from None
    if not lines:
        return np.zeros((0, 0))
    delimiter = "," if "," in lines[0] else None
    try:
        rows = np.loadtxt(lines, delimiter=delimiter, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise UserError(f"malformed {what} file {path}: {exc}") from None
    if rows.shape[1] < 6 or not np.isfinite(rows[:, :6]).all():
        raise UserError(f"malformed {what} file {path}: need finite frame,id,left,top,w,h in every row")
    frames, ids = rows[:, 0], rows[:, 1]
    if (frames != np.round(frames)).any() or (frames < 1).any():
        bad = int(np.flatnonzero((frames != np.round(frames)) | (frames < 1))[0])
        raise UserError(f"malformed {what} file {path}: line {bad + 1}: frame must be an integer >= 1")
    if (ids != np.round(ids)).any():
        raise UserError(f"malformed {what} file {path}: ids must be integers")
    return rows


def _check_unique_ids(frames: np.ndarray, ids: np.ndarray, path: Path, what: str) -> None:
    """Each id at most once per frame (trackeval's _check_unique_ids)."""
    pairs = np.stack([frames, ids], axis=1)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    if (counts > 1).any():
        f, i = uniq[np.argmax(counts > 1)]
        raise UserError(f"{what} file {path}: id {int(i)} appears more than once in frame {int(f)}")


def _sorted_boxes(rows: np.ndarray, scored: np.ndarray, drops_match: np.ndarray, path: Path, what: str) -> _Boxes:
    frames = rows[:, 0].astype(np.int64)
    ids = rows[:, 1].astype(np.int64)
    _check_unique_ids(frames, ids, path, what)
    order = np.argsort(frames, kind="stable")
    return _Boxes(frames[order], ids[order], rows[order, 2:6].copy(), scored[order], drops_match[order])


def _load_gt(path: Path) -> _Boxes:
    """Read a gt file, detect MOT15 vs MOT16/17/20 style by column count and flag rows (see module doc)."""
    rows = _read_rows(path, "ground-truth")
    if rows.size == 0:
        empty = np.zeros(0, bool)
        return _Boxes(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), empty, empty)
    ncols = rows.shape[1]
    if ncols not in (7, 8, 9, 10) or not np.isfinite(rows[:, 6]).all():
        raise UserError(f"malformed ground-truth file {path}: expected 10 columns (MOT15: frame,id,left,top,w,h,"
                        f"conf,x,y,z) or 9 (MOT16/17/20: frame,id,left,top,w,h,consider,class,visibility), "
                        f"got {ncols}")
    # trackeval reads the flag column with astype(int): 0.5 truncates to 0 and counts as zero-marked.
    marked = rows[:, 6].astype(np.int64) != 0
    if ncols in (7, 10):  # MOT15: no classes; conf == 0 rows leave the gt, predictions are all kept.
        return _sorted_boxes(rows, marked, np.zeros(len(rows), bool), path, "ground-truth")
    if not np.isfinite(rows[:, 7]).all():
        raise UserError(f"malformed ground-truth file {path}: class column (8th) must be numeric")
    classes = rows[:, 7].astype(np.int64)
    invalid = np.setdiff1d(classes, _VALID_CLASSES)
    if invalid.size:
        raise UserError(f"ground-truth file {path}: invalid MOTChallenge classes {invalid.tolist()} "
                        f"(valid: 1..13; 10-column files are read as MOT15)")
    distractors = _DISTRACTORS_MOT20 if "MOT20" in str(path) else _DISTRACTORS
    scored = marked & (classes == _PEDESTRIAN)
    return _sorted_boxes(rows, scored, np.isin(classes, distractors), path, "ground-truth")


def _load_results(path: Path) -> _Boxes:
    """Read a result file ``frame,id,left,top,w,h[,score,...]``; every row is a prediction."""
    rows = _read_rows(path, "result")
    if rows.size == 0:
        rows = np.zeros((0, 6))
    flags = np.zeros(len(rows), bool)
    return _sorted_boxes(rows, ~flags, flags, path, "result")


# --------------------------------------------------------------------------------------------------------------------
# Preprocessing (MotChallenge2DBox.get_preprocessed_seq_data, vectorised where the per-frame matching allows)


def _iou_tlwh(a_tlwh: np.ndarray, b_tlwh: np.ndarray) -> np.ndarray:
    """IoU of (M,4) and (N,4) float64 ``tlwh`` pixel boxes -> (M,N) float64; trackeval's _calculate_box_ious.

    Zero for boxes of non-positive area and for pairs whose union is non-positive.
    """
    a_lt, a_rb = a_tlwh[:, :2], a_tlwh[:, :2] + a_tlwh[:, 2:]
    b_lt, b_rb = b_tlwh[:, :2], b_tlwh[:, :2] + b_tlwh[:, 2:]
    wh = np.maximum(np.minimum(a_rb[:, None], b_rb[None]) - np.maximum(a_lt[:, None], b_lt[None]), 0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = a_tlwh[:, 2] * a_tlwh[:, 3]
    area_b = b_tlwh[:, 2] * b_tlwh[:, 3]
    union = area_a[:, None] + area_b[None, :] - inter
    inter[area_a <= _EPS, :] = 0
    inter[:, area_b <= _EPS] = 0
    inter[union <= _EPS] = 0
    union[union <= _EPS] = 1
    return inter / union


def _frame_bounds(frames: np.ndarray, num_timesteps: int) -> np.ndarray:
    """(T+1,) row offsets of frames 1..T in a frame-sorted (N,) int array."""
    return np.searchsorted(frames, np.arange(1, num_timesteps + 2))


def _dropped_predictions(gt: _Boxes, res: _Boxes, gb: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """(N_res,) bool: predictions matched (Hungarian, IoU >= 0.5) to a gt box flagged ``drops_match``."""
    dropped = np.zeros(len(res.ids), bool)
    # Only frames holding a drop-flagged gt box and at least one prediction can drop anything.
    frames = np.unique(gt.frames[gt.drops_match])  # 1-based, all <= T as T covers the gt
    for t in frames[rb[frames] > rb[frames - 1]] - 1:
        g, r = slice(gb[t], gb[t + 1]), slice(rb[t], rb[t + 1])
        scores = _iou_tlwh(gt.tlwh[g], res.tlwh[r])
        scores[scores < _MATCH_IOU - _EPS] = 0
        rows, cols = linear_sum_assignment(-scores)
        ok = scores[rows, cols] > _EPS
        rows, cols = rows[ok], cols[ok]
        dropped[rb[t] + cols[gt.drops_match[g][rows]]] = True
    return dropped


def _relabel(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """(N,) int ids -> (N,) contiguous int64 ids 0..K-1 and K."""
    uniq, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1), len(uniq)


def _preprocess(seq: str, gt: _Boxes, res: _Boxes) -> dict:
    """Build trackeval's per-sequence ``data`` dict (lists over timesteps) from gt and result rows."""
    num_timesteps = int(max(gt.frames.max(initial=0), res.frames.max(initial=0)))
    keep_res = ~_dropped_predictions(gt, res, _frame_bounds(gt.frames, num_timesteps),
                                     _frame_bounds(res.frames, num_timesteps))
    g_frames, g_tlwh = gt.frames[gt.scored], gt.tlwh[gt.scored]
    r_frames, r_tlwh = res.frames[keep_res], res.tlwh[keep_res]
    g_ids, num_gt_ids = _relabel(gt.ids[gt.scored])
    r_ids, num_tracker_ids = _relabel(res.ids[keep_res])
    gb, rb = _frame_bounds(g_frames, num_timesteps), _frame_bounds(r_frames, num_timesteps)

    data: dict = {k: [] for k in ("gt_ids", "tracker_ids", "gt_dets", "tracker_dets", "tracker_confidences",
                                  "similarity_scores")}
    for t in range(num_timesteps):
        g, r = slice(gb[t], gb[t + 1]), slice(rb[t], rb[t + 1])
        data["gt_ids"].append(g_ids[g])
        data["tracker_ids"].append(r_ids[r])
        data["gt_dets"].append(g_tlwh[g])
        data["tracker_dets"].append(r_tlwh[r])
        data["tracker_confidences"].append(np.ones(r.stop - r.start))
        data["similarity_scores"].append(_iou_tlwh(g_tlwh[g], r_tlwh[r]))
    data.update(num_timesteps=num_timesteps, num_gt_ids=num_gt_ids, num_tracker_ids=num_tracker_ids,
                num_gt_dets=len(g_ids), num_tracker_dets=len(r_ids), seq=seq)
    return data


# --------------------------------------------------------------------------------------------------------------------
# Public API


def _summary(hota: dict, clear: dict, ident: dict, num_gt_ids: int, num_tracker_ids: int) -> dict[str, float]:
    return {
        "HOTA": 100.0 * float(np.mean(hota["HOTA"])),
        "DetA": 100.0 * float(np.mean(hota["DetA"])),
        "AssA": 100.0 * float(np.mean(hota["AssA"])),
        "IDF1": 100.0 * float(ident["IDF1"]),
        "MOTA": 100.0 * float(clear["MOTA"]),
        "IDSW": int(clear["IDSW"]),
        "GT_IDs": int(num_gt_ids),
        "Pred_IDs": int(num_tracker_ids),
    }


def evaluate_files(gt_files: dict[str, Path], result_files: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Score result files against ground-truth files, sequence by sequence.

    Args:
        gt_files: sequence name -> ground-truth file (MOT15 or MOT16/17/20 style, see module doc).
        result_files: sequence name -> result file ``frame,id,left,top,w,h[,score,...]``; must have the
            same sequence names as ``gt_files``.
    Returns:
        sequence name -> {"HOTA","DetA","AssA","IDF1","MOTA" (percent 0..100), "IDSW","GT_IDs","Pred_IDs"
        (int counts)}, in ``gt_files`` order, plus ``"COMBINED"`` (all sequences pooled as trackeval does).
    Raises:
        UserError: a sequence without gt or results, a missing or malformed file, a duplicate id in a frame.
    """
    if not gt_files:
        raise UserError("no sequences to evaluate")
    if COMBINED in gt_files:
        raise UserError(f"sequence name {COMBINED!r} is reserved for the combined score")
    missing = [s for s in gt_files if s not in result_files]
    if missing:
        raise UserError(f"no result file given for sequence(s): {', '.join(missing)}")
    extra = [s for s in result_files if s not in gt_files]
    if extra:
        raise UserError(f"no ground truth given for sequence(s): {', '.join(extra)}")

    metrics = {"hota": HOTA(), "clear": CLEAR(dict(_METRIC_CONFIG)), "ident": Identity(dict(_METRIC_CONFIG))}
    per_metric: dict[str, dict[str, dict]] = {name: {} for name in metrics}
    ids: dict[str, tuple[int, int]] = {}
    for seq, gt_path in gt_files.items():
        data = _preprocess(seq, _load_gt(Path(gt_path)), _load_results(Path(result_files[seq])))
        for name, metric in metrics.items():
            per_metric[name][seq] = metric.eval_sequence(data)
        ids[seq] = (data["num_gt_ids"], data["num_tracker_ids"])

    out = {seq: _summary(per_metric["hota"][seq], per_metric["clear"][seq], per_metric["ident"][seq], *ids[seq])
           for seq in gt_files}
    combined = {name: metric.combine_sequences(per_metric[name]) for name, metric in metrics.items()}
    out[COMBINED] = _summary(combined["hota"], combined["clear"], combined["ident"],
                             sum(i[0] for i in ids.values()), sum(i[1] for i in ids.values()))
    return out


def evaluate_dirs(gt_root: str | Path, results_dir: str | Path,
                  seqs: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Score ``results_dir/<seq>.txt`` against ``gt_root/<seq>/gt/gt.txt`` (MOTChallenge layout).

    Args:
        gt_root: folder holding one ``<seq>/gt/gt.txt`` per sequence.
        results_dir: folder holding one ``<seq>.txt`` result file per sequence.
        seqs: sequences to score; default every ``results_dir/*.txt`` whose sequence has a gt file
            (result files without gt are skipped).
    Returns:
        as :func:`evaluate_files`.
    Raises:
        UserError: a missing folder, a requested sequence without result or gt file, nothing to score.
    """
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    if not gt_root.is_dir():
        raise UserError(f"ground-truth folder not found: {gt_root}")
    if not results_dir.is_dir():
        raise UserError(f"results folder not found: {results_dir}")

    def gt_path(seq: str) -> Path:
        return gt_root / seq / "gt" / "gt.txt"

    if seqs is None:
        seqs = sorted(p.stem for p in results_dir.glob("*.txt") if gt_path(p.stem).is_file())
        if not seqs:
            raise UserError(f"no result file in {results_dir} matches a sequence with {gt_root}/<seq>/gt/gt.txt")
    for seq in seqs:
        if not (results_dir / f"{seq}.txt").is_file():
            raise UserError(f"result file for sequence {seq!r} not found: {results_dir / f'{seq}.txt'}")
        if not gt_path(seq).is_file():
            raise UserError(f"ground-truth file for sequence {seq!r} not found: {gt_path(seq)}")
    return evaluate_files({s: gt_path(s) for s in seqs}, {s: results_dir / f"{s}.txt" for s in seqs})


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Aligned text table: one row per sequence then ``COMBINED``; percentages with 2 decimals, counts as ints."""
    names = [s for s in results if s != COMBINED] + ([COMBINED] if COMBINED in results else [])
    width = max([len("Sequence")] + [len(s) for s in names])
    header = f"{'Sequence':<{width}}" + "".join(f"{f:>10}" for f in FIELDS)
    lines = [header, "-" * len(header)]
    for seq in names:
        cells = "".join(f"{results[seq][f]:>10d}" if isinstance(results[seq][f], (int, np.integer))
                        else f"{results[seq][f]:>10.2f}" for f in FIELDS)
        lines.append(f"{seq:<{width}}{cells}")
    return "\n".join(lines)
