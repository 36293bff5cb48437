"""MOTChallenge text files: detections in, tracking results out."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tracker.core.boxes import tlwh_to_tlbr
from tracker.errors import UserError

log = logging.getLogger(__name__)


def read_mot_detections(path: str | Path, min_score: float = -np.inf) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Read MOTChallenge detection rows ``frame,-1,left,top,w,h,score,...``.

    Rows with non-finite values or non-positive width/height are dropped (counted in the log);
    scores are clipped to [0, 1].

    Returns:
        {frame number: (tlbr (N,4) float32 pixels, scores (N,) float32)}, frames 1-based as in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"detection file not found: {path}")
    if not path.read_text().strip():
        return {}  # an empty file: no detections at all
    try:
        data = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise UserError(f"malformed detection file {path}: {exc}") from None
    if data.size == 0:
        return {}
    if data.shape[1] < 7:
        raise UserError(f"malformed detection file {path}: expected at least 7 columns "
                        f"(frame,id,left,top,w,h,score), got {data.shape[1]}")
    with np.errstate(over="ignore", invalid="ignore"):
        tlbr = tlwh_to_tlbr(data[:, 2:6].astype(np.float32))
        ok = (np.isfinite(data[:, :7]).all(axis=1) & np.isfinite(tlbr).all(axis=1)
              & (tlbr[:, 2] > tlbr[:, 0]) & (tlbr[:, 3] > tlbr[:, 1]))
    if not ok.all():
        log.warning("%s: dropped %d invalid rows (NaN/inf, out of float32 range or non-positive size)",
                    path.name, int((~ok).sum()))
    clipped = ok & ((data[:, 6] < 0) | (data[:, 6] > 1))
    if clipped.any():
        log.warning("%s: clipped %d scores outside 0..1", path.name, int(clipped.sum()))
    keep = ok & (data[:, 6] >= min_score)
    data, tlbr = data[keep], tlbr[keep]
    frames = data[:, 0].astype(np.int64)
    scores = np.clip(data[:, 6], 0.0, 1.0).astype(np.float32)
    order = np.argsort(frames, kind="stable")
    frames, tlbr, scores = frames[order], tlbr[order], scores[order]
    uniq, starts = np.unique(frames, return_index=True)
    ends = np.append(starts[1:], len(frames))
    return {int(f): (tlbr[s:e], scores[s:e]) for f, s, e in zip(uniq, starts, ends, strict=False)}




def mot_result_lines(frame_index: int, ids: np.ndarray, tlwh: np.ndarray, scores: np.ndarray) -> str:
    """MOTChallenge result lines ``frame,id,left,top,width,height,score,-1,-1,-1``, one per row.

    Args:
        frame_index: the frame (1-based, as in the detection and ground-truth files).
        ids: (M,) identities written in the id column.
        tlwh: (M, 4) boxes, left, top, width, height in pixels.
        scores: (M,) detection scores.
    """
    out = []
    for i in range(len(ids)):
        l, t, w, h = (float(v) for v in tlwh[i])
        out.append(f"{int(frame_index)},{int(ids[i])},{l:.2f},{t:.2f},{w:.2f},{h:.2f},{float(scores[i]):.3f},-1,-1,-1\n")
    return "".join(out)


def write_mot_results(path: str | Path, rows: np.ndarray) -> None:
    """Write (M, 7) rows ``frame, id, left, top, width, height, score`` (in frame order) as a MOTChallenge
    result file, whole or not at all; the same line format as the live pipeline's ``<camera>.txt``."""
    from tracker.io.atomic import atomic_path

    rows = np.asarray(rows, np.float64).reshape(-1, 7)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for r in rows:
            f.write(mot_result_lines(int(r[0]), r[1:2], r[None, 2:6], r[6:7]))
