"""Multi-camera scoring: per-camera MOTChallenge metrics, and cross-camera identity metrics.

Layout (as ``tracker.scoring.mot.evaluate_dirs``): ground truth at ``gt_root/<cam>/gt/gt.txt`` (MOT15 or
MOT16/17/20 style), results at ``results_dir/<cam>.txt`` (``frame,id,left,top,w,h[,score,...]``). Identities are
**global**: the same person carries the same gt id in every camera, and a result's id column is the identity the
tracker shows to users (global when it links cameras).

Three views of the same files:

1. **per camera**: each camera scored on its own (``evaluate_files``), and trackeval's ``combine_sequences`` over
   them (``per_camera_combined``). Identity is only judged inside a camera: a person keeping one id in cam1 and
   another in cam2 loses nothing here.
2. **cross camera**: all cameras concatenated into one long sequence and scored with the same trackeval code, so
   the gt-to-prediction identity matching (IDF1's one-to-one id assignment, HOTA's association) is made jointly
   over every camera. Camera k's frames (gt and results alike) are shifted by the sum of the lengths of the cameras
   before it, so no two cameras share a frame; ids are kept as written on both sides. A camera's length is the
   largest of ``seqLength`` in ``gt_root/<cam>/seqinfo.ini`` (when present), its last gt frame and its last result
   frame. Detection-side numbers (DetA, MOTA's FP/FN) equal the per-camera combination; identity numbers (AssA,
   HOTA, IDF1, IDSW) drop when one person gets different ids in different cameras.
3. **identity counts**: distinct predicted ids over all cameras against distinct true ids (PETS09-MC: 19).
"""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np
from trackeval.metrics import CLEAR, HOTA, Identity

from tracker.errors import UserError
from tracker.scoring.mot import (
    _METRIC_CONFIG,
    COMBINED,
    _Boxes,
    _load_gt,
    _load_results,
    _preprocess,
    _summary,
    evaluate_files,
    format_table,
)

__all__ = ["CROSS_CAMERA", "PER_CAMERA_COMBINED", "evaluate_multicam", "format_multicam"]

PER_CAMERA_COMBINED = "per-camera combined"
CROSS_CAMERA = "cross-camera"


def _gt_path(gt_root: Path, cam: str) -> Path:
    return gt_root / cam / "gt" / "gt.txt"


def _resolve_cameras(gt_root: Path, results_dir: Path, cameras: list[str] | None) -> list[str]:
    if not gt_root.is_dir():
        raise UserError(f"ground-truth folder not found: {gt_root}")
    if not results_dir.is_dir():
        raise UserError(f"results folder not found: {results_dir}")
    if cameras is None:
        cameras = sorted(p.stem for p in results_dir.glob("*.txt") if _gt_path(gt_root, p.stem).is_file())
        if not cameras:
            raise UserError(f"no result file in {results_dir} matches a camera with {gt_root}/<cam>/gt/gt.txt")
    cameras = list(cameras)
    if not cameras:
        raise UserError("no cameras to evaluate")
    dup = sorted({c for c in cameras if cameras.count(c) > 1})
    if dup:
        raise UserError(f"camera(s) given more than once: {', '.join(dup)}")
    reserved = [c for c in cameras if c in (COMBINED, PER_CAMERA_COMBINED, CROSS_CAMERA)]
    if reserved:
        raise UserError(f"camera name {reserved[0]!r} is reserved")
    for cam in cameras:
        if not (results_dir / f"{cam}.txt").is_file():
            raise UserError(f"result file for camera {cam!r} not found: {results_dir / f'{cam}.txt'}")
        if not _gt_path(gt_root, cam).is_file():
            raise UserError(f"ground-truth file for camera {cam!r} not found: {_gt_path(gt_root, cam)}")
    return cameras


def _seqinfo_length(gt_root: Path, cam: str) -> int:
    """``seqLength`` of ``gt_root/<cam>/seqinfo.ini``; 0 when the file or the key is missing or unreadable."""
    path = gt_root / cam / "seqinfo.ini"
    if not path.is_file():
        return 0
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
        return max(int(parser.get("Sequence", "seqLength", fallback="0")), 0)
    except (configparser.Error, ValueError, OSError, UnicodeDecodeError):
        return 0


def _shifted(boxes: _Boxes, offset: int) -> _Boxes:
    return _Boxes(boxes.frames + offset, boxes.ids, boxes.tlwh, boxes.scored, boxes.drops_match)


def _concat(parts: list[_Boxes]) -> _Boxes:
    """Concatenate frame-sorted boxes whose frame ranges are disjoint and increasing (stays frame-sorted)."""
    return _Boxes(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                    ("frames", "ids", "tlwh", "scored", "drops_match")))


def _cross_camera(gt_root: Path, results_dir: Path, cameras: list[str]) -> tuple[dict, dict[str, int]]:
    """Score the frame-offset concatenation of all cameras as one sequence; returns (summary, camera -> offset)."""
    gts, results, offsets = [], [], {}
    offset = 0
    for cam in cameras:
        gt, res = _load_gt(_gt_path(gt_root, cam)), _load_results(results_dir / f"{cam}.txt")
        length = max(_seqinfo_length(gt_root, cam), int(gt.frames.max(initial=0)), int(res.frames.max(initial=0)))
        offsets[cam] = offset
        gts.append(_shifted(gt, offset))
        results.append(_shifted(res, offset))
        offset += length
    data = _preprocess(CROSS_CAMERA, _concat(gts), _concat(results))
    hota = HOTA().eval_sequence(data)
    clear = CLEAR(dict(_METRIC_CONFIG)).eval_sequence(data)
    ident = Identity(dict(_METRIC_CONFIG)).eval_sequence(data)
    return _summary(hota, clear, ident, data["num_gt_ids"], data["num_tracker_ids"]), offsets


def evaluate_multicam(gt_root: str | Path, results_dir: str | Path, cameras: list[str] | None = None) -> dict:
    """Score a multi-camera result folder per camera and across cameras.

    Args:
        gt_root: folder with ``<cam>/gt/gt.txt`` per camera (global ids shared by all cameras).
        results_dir: folder with ``<cam>.txt`` result files.
        cameras: cameras to score, in this order (the concatenation order); default every ``results_dir/*.txt``
            whose camera has a gt file, sorted by name.
    Returns:
        dict with keys

        - ``"cameras"``: list of camera names, in scoring order;
        - ``"per_camera"``: camera -> {``HOTA``, ``DetA``, ``AssA``, ``IDF1``, ``MOTA`` (percent 0..100), ``IDSW``,
          ``GT_IDs``, ``Pred_IDs`` (ints)}, each camera scored alone (``tracker.scoring.mot.evaluate_files``);
        - ``"per_camera_combined"``: the same fields, trackeval's ``combine_sequences`` over the cameras
          (``GT_IDs``/``Pred_IDs`` are sums of per-camera counts, so a person seen in 3 cameras counts 3 times);
        - ``"cross_camera"``: the same fields for the frame-offset concatenation of all cameras scored as one
          sequence, ids matched jointly over all cameras (``GT_IDs``/``Pred_IDs`` are distinct ids overall);
        - ``"identities"``: {``"predicted"``: distinct predicted ids over all cameras, ``"true"``: distinct gt ids
          over all cameras, ``"ratio"``: predicted / true (float; inf when there is no true id and some prediction,
          1.0 when both are 0)} — ids counted after MOTChallenge preprocessing, i.e. the scored ones;
        - ``"frame_offsets"``: camera -> offset added to its frame numbers in the concatenation.
    Raises:
        UserError: a missing folder or file, a malformed file, nothing to score.
    """
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    cams = _resolve_cameras(gt_root, results_dir, cameras)
    per = evaluate_files({c: _gt_path(gt_root, c) for c in cams}, {c: results_dir / f"{c}.txt" for c in cams})
    cross, offsets = _cross_camera(gt_root, results_dir, cams)
    pred, true = cross["Pred_IDs"], cross["GT_IDs"]
    ratio = pred / true if true else (float("inf") if pred else 1.0)
    return {
        "cameras": cams,
        "per_camera": {c: per[c] for c in cams},
        "per_camera_combined": per[COMBINED],
        "cross_camera": cross,
        "identities": {"predicted": pred, "true": true, "ratio": ratio},
        "frame_offsets": offsets,
    }


def format_multicam(result: dict) -> str:
    """Aligned table (per-camera rows, per-camera combined, cross-camera) and the identity-count line."""
    rows = dict(result["per_camera"])
    rows[PER_CAMERA_COMBINED] = result["per_camera_combined"]
    rows[CROSS_CAMERA] = result["cross_camera"]
    ids = result["identities"]
    lines = [format_table(rows), "",
             f"identities: {ids['predicted']} predicted over all cameras vs {ids['true']} true "
             f"(x{ids['ratio']:.2f})",
             f"{PER_CAMERA_COMBINED}: cameras scored one by one, then pooled (identity judged within a camera).",
             f"{CROSS_CAMERA}: cameras concatenated into one sequence (frames offset), ids matched jointly over all "
             f"cameras."]
    return "\n".join(lines)
