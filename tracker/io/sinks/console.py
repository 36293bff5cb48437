"""The identity console as a frame output: sightings and thumbnails per global identity (``tracker.io.console``).

Fed on the sinks' frame thread with each tick's raw frame and rows (``consume``), never on the
pipeline's loop. Per frame the cost is bounded: a vectorised crop-quality score over the rows, then
at most ``output.console_thumbs_per_frame`` crops resized and JPEG-encoded (the best candidates
first; the others get their chance in later frames).
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.io.sinks.base import FrameOutput
from tracker.io.sinks.records import FrameJob

THUMB_HEIGHT = 160  # pixels; crops are scaled down to this height at most
THUMB_QUALITY = 80  # JPEG quality of thumbnails
BORDER_PX = 2.0  # a box within this many pixels of the frame's edge is cut off: its crop is penalised
BORDER_PENALTY = 0.4  # quality factor for a box touching the border


def crop_quality(tlbr: np.ndarray, scores: np.ndarray, width: int, height: int) -> np.ndarray:
    """How good a thumbnail each box would make: area x detection score, penalised for being cut or hidden.

    Args:
        tlbr: (N, 4) float32 boxes, pixels left, top, right, bottom.
        scores: (N,) float32 detection scores in [0, 1].
        width, height: the frame's size in pixels.
    Returns:
        (N,) float64 quality >= 0: area (pixels) x score, x ``BORDER_PENALTY`` when the box touches the
        frame's edge, x (1 - the largest fraction of its area covered by another box in the frame).
    """
    b = np.asarray(tlbr, np.float64).reshape(-1, 4)
    w = np.clip(b[:, 2] - b[:, 0], 0, None)
    h = np.clip(b[:, 3] - b[:, 1], 0, None)
    area = w * h
    q = area * np.clip(np.asarray(scores, np.float64), 0, 1)
    edge = (b[:, 0] <= BORDER_PX) | (b[:, 1] <= BORDER_PX) | (b[:, 2] >= width - BORDER_PX) | (
        b[:, 3] >= height - BORDER_PX)
    q = np.where(edge, q * BORDER_PENALTY, q)
    if len(b) > 1:
        iw = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
        ih = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
        inter = iw * ih
        np.fill_diagonal(inter, 0.0)
        covered = (inter / np.maximum(area, 1e-9)[:, None]).max(axis=1)
        q = q * np.clip(1.0 - covered, 0.0, 1.0)
    return q


def encode_thumbnail(image: np.ndarray, box_tlbr: np.ndarray) -> bytes | None:
    """A small JPEG of one box of a (H, W, 3) uint8 BGR frame (pixels tlbr), at most ``THUMB_HEIGHT`` high."""
    hgt, wid = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box_tlbr)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(wid, x1), min(hgt, y1)
    if x1 - x0 < 4 or y1 - y0 < 8:
        return None
    crop = image[y0:y1, x0:x1]
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    if crop.shape[0] > THUMB_HEIGHT:
        scale = THUMB_HEIGHT / crop.shape[0]
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [int(cv2.IMWRITE_JPEG_QUALITY), THUMB_QUALITY])
    return buf.tobytes() if ok else None


class ConsoleOutput(FrameOutput):
    """Feeds an ``IdentityConsole``: each frame's matched, confirmed tracks with a global id."""

    def __init__(self, console, thumbs_per_frame: int = 2):
        self.console = console
        self.thumbs_per_frame = int(thumbs_per_frame)

    def start(self) -> None:
        self.console.start()

    def wants(self, camera_id: str) -> bool:
        return False  # raw frames only (consume); never asks for annotation

    def consume(self, job: FrameJob) -> None:
        rows = job.rows
        keep = rows.confirmed & (rows.det_index >= 0) & (rows.global_ids >= 0)
        image = job.image
        hgt, wid = image.shape[:2]
        if not keep.any():
            self.console.observe(job.camera_id, job.timestamp, np.zeros(0, np.int64), np.zeros(0),
                                 frame_size=(wid, hgt))
            return
        tlbr = rows.tlbr[keep]
        gids = rows.global_ids[keep]
        quality = crop_quality(tlbr, rows.scores[keep], wid, hgt)
        feet = np.c_[(tlbr[:, 0] + tlbr[:, 2]) / 2, tlbr[:, 3]]
        want = self.console.observe(job.camera_id, job.timestamp, gids, quality, feet, (wid, hgt))
        for i in want[:self.thumbs_per_frame]:
            if quality[i] <= 0:
                continue
            jpeg = encode_thumbnail(image, tlbr[i])
            if jpeg is not None:
                self.console.set_thumbnail(job.camera_id, int(gids[i]), jpeg, float(quality[i]))

    def close(self) -> None:
        self.console.close()
