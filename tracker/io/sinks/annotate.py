"""Annotated frames: boxes, identity labels and a short trail of each track's feet (OpenCV)."""

from __future__ import annotations

import collections

import cv2
import numpy as np

from tracker.io.sinks.records import Rows

TRAIL_SECONDS = 2.0
"""Length of the drawn trail, in stream seconds. Longer: shows more of the path, more clutter."""


def _palette(n: int = 64) -> np.ndarray:
    hues = (np.arange(n) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 200, np.uint8), np.full(n, 255, np.uint8)], axis=1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0].astype(int)


_PALETTE = _palette()


def _color(identity: int) -> tuple[int, int, int]:
    c = _PALETTE[int(identity) % len(_PALETTE)]
    return int(c[0]), int(c[1]), int(c[2])


def _label(rows: Rows, i: int, show_ids: str) -> str:
    t, g = int(rows.track_ids[i]), int(rows.global_ids[i])
    if show_ids == "local":
        return str(t)
    if show_ids == "both":
        return f"{g} ({t})" if g >= 0 else f"? ({t})"
    # The same number as the MOT file's id column (OpenCV's Hershey font cannot draw "~" or "#" reliably).
    return str(g) if g >= 0 else str(t)


def annotate_frame(image: np.ndarray, rows: Rows, trails: dict[int, collections.deque], show_ids: str,
                   caption: str = "") -> np.ndarray:
    """Draw confirmed tracks on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 BGR; not modified.
        rows: the tick's tracks; boxes ``tlbr`` in pixels. Matched tracks get a thick box,
            predicted-only ones a thin box.
        trails: local track id -> deque of (timestamp s, x px, y px) box bottoms, oldest first.
        show_ids: how labels read (see ``Sinks``).
        caption: text drawn in the top-left corner (camera id and time).
    Returns:
        (H, W, 3) uint8 BGR annotated copy.
    """
    out = image.copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in np.flatnonzero(rows.confirmed):
        color = _color(int(rows.identity[i]))
        trail = trails.get(int(rows.track_ids[i]))
        if trail is not None and len(trail) > 1:
            pts = np.array([(x, y) for _, x, y in trail], np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], False, color, 2, cv2.LINE_AA)
        l, t, r, b = (int(round(float(v))) for v in rows.tlbr[i])
        matched = rows.det_index[i] >= 0
        cv2.rectangle(out, (l, t), (r, b), color, 2 if matched else 1)
        text = _label(rows, i, show_ids)
        (tw, th), base = cv2.getTextSize(text, font, 0.5, 1)
        y0 = max(t, th + base + 2)
        cv2.rectangle(out, (l, y0 - th - base - 2), (l + tw + 4, y0), color, -1)
        cv2.putText(out, text, (l + 2, y0 - base - 1), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if caption:
        cv2.putText(out, caption, (8, 22), font, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, caption, (8, 22), font, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def update_trails(trails: dict[int, collections.deque], rows: Rows, timestamp: float) -> None:
    """Append each confirmed track's box bottom-centre; forget points older than TRAIL_SECONDS and gone tracks."""
    present = set()
    for i in np.flatnonzero(rows.confirmed):
        tid = int(rows.track_ids[i])
        present.add(tid)
        l, _, r, b = (float(v) for v in rows.tlbr[i])
        trails.setdefault(tid, collections.deque()).append((timestamp, (l + r) / 2.0, b))
    for tid in list(trails):
        if tid not in present:
            del trails[tid]
            continue
        d = trails[tid]
        while d and d[0][0] < timestamp - TRAIL_SECONDS:
            d.popleft()
