"""Per-camera multi-person tracker: Kalman motion + cosine appearance, DeepSORT/ByteTrack style.

Tracks are stored as a structure of arrays, so prediction, gating and distances are
vectorised over all tracks. One ``update`` per frame:

1. predict every track to the frame's timestamp (seconds, not frames);
2. stage 1: confirmed tracks vs confident detections, cost = appearance-weighted cosine
   distance + IoU distance, gated by the Kalman Mahalanobis distance and a cosine gate;
3. stage 2: recently seen confirmed tracks vs the leftover confident detections and the
   low-score detections, by IoU (ByteTrack's second association);
4. stage 3: tentative tracks vs leftover confident detections, by IoU;
5. lifecycle: tentative tracks that miss are dropped, confirmed ones become lost and are
   removed ``max_age`` seconds after their last match (``motion_max_age`` for tracks with no
   appearance memory); unmatched confident detections start tentative tracks, confirmed after
   ``n_init`` consecutive matches.

Nothing is counted in frames except ``n_init`` (a number of detections: evidence, not time), and
"confident" is read on the detector's own score range, learnt while running (``ScoreRange``), so
one configuration serves cameras at 7 or 30 fps and detectors whose scores span 0.1..0.9 or 0.5..1.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from tracker.core import kalman
from tracker.core.appearance import EmaMemory, GalleryMemory
from tracker.core.association import GATED, fuse_costs, iou_cost, linear_assignment
from tracker.core.boxes import tlbr_to_xywh, xywh_to_tlbr
from tracker.core.config import TrackerConfig, validate
from tracker.core.ids import IdAllocator
from tracker.core.types import Detections, TrackOutput

log = logging.getLogger(__name__)

TENTATIVE, CONFIRMED = 0, 1


class ScoreRange:
    """Running estimate of the score range a detector uses: its ``lo`` and ``hi`` percentile so far.

    A histogram of every score seen (``bins`` bins over [0, 1]). The range starts at [0, 1] (scores read as
    absolute) and moves to the detector's own percentiles as detections arrive: the estimate is blended
    with [0, 1] by weight ``prior / (prior + n)`` after ``n`` scores (after 100 detections the learnt
    range has 5/6 of the weight). ``normalise`` maps a score to [0, 1] on that range, ``threshold`` maps back.
    """

    def __init__(self, bins: int = 100, prior: float = 20.0, lo: float = 0.01, hi: float = 0.99):
        self.bins, self.prior, self.lo_q, self.hi_q = bins, prior, lo, hi
        self.hist = np.zeros(bins)
        self.floor, self.top = 0.0, 1.0

    def observe(self, scores: np.ndarray) -> None:
        """Add (N,) scores in [0, 1] and refresh ``floor`` / ``top``."""
        if len(scores) == 0:
            return
        idx = np.minimum((np.clip(scores, 0.0, 1.0) * self.bins).astype(np.int64), self.bins - 1)
        self.hist += np.bincount(idx, minlength=self.bins)
        cdf = np.cumsum(self.hist)
        n = cdf[-1]
        i_lo, i_hi = np.searchsorted(cdf, [self.lo_q * n, self.hi_q * n])
        w = self.prior / (self.prior + n)
        self.floor = (1.0 - w) * i_lo / self.bins
        top = (min(i_hi, self.bins - 1) + 1) / self.bins
        self.top = max(w + (1.0 - w) * top, self.floor + 1.0 / self.bins)

    def threshold(self, t: float) -> float:
        """A threshold given on the [0, 1] scale, in raw scores: ``floor + t * (top - floor)``."""
        return self.floor + t * (self.top - self.floor)

    def normalise(self, scores: np.ndarray) -> np.ndarray:
        """(N,) raw scores -> (N,) float64 on the detector's range, clipped to [0, 1]."""
        return np.clip((np.asarray(scores, np.float64) - self.floor) / (self.top - self.floor), 0.0, 1.0)


class CameraTracker:
    """Tracks people in one camera. Give it its own ``IdAllocator`` (or share one on purpose)."""

    def __init__(self, config: TrackerConfig | None = None, id_allocator: IdAllocator | None = None):
        self.cfg = config or TrackerConfig()
        validate(self.cfg, "tracker")
        self.ids_alloc = id_allocator or IdAllocator()
        self.time: float | None = None
        self.frames = 0
        self._memory = None  # created on the first embeddings (dimension known then)
        n = 0
        self.track_ids = np.zeros(n, np.int64)
        self.mean = np.zeros((n, 8))
        self.cov = np.zeros((n, 8, 8))
        self.state = np.zeros(n, np.int8)
        self.hits = np.zeros(n, np.int64)
        self.last_seen = np.zeros(n)
        self.score = np.zeros(n, np.float32)
        # With embeddings, the with-appearance settings apply (see appearance_score_scale / _std_velocity).
        self._cfg_appearance = dataclasses.replace(
            self.cfg, score_scale=self.cfg.appearance_score_scale,
            kalman=dataclasses.replace(self.cfg.kalman, std_velocity=self.cfg.appearance_std_velocity))
        self.score_range = ScoreRange()  # observed always; read when the settings in use say score_scale: adaptive

    # ------------------------------------------------------------------ state helpers
    def __len__(self) -> int:
        return len(self.track_ids)

    def _keep(self, mask: np.ndarray) -> None:
        for name in ("track_ids", "mean", "cov", "state", "hits", "last_seen", "score"):
            setattr(self, name, getattr(self, name)[mask])
        if self._memory is not None:
            self._memory.keep(mask)

    def _ensure_memory(self, dim: int):
        if self._memory is None:
            if self.cfg.memory == "gallery":
                self._memory = GalleryMemory(dim, self.cfg.gallery_size)
            else:
                self._memory = EmaMemory(dim, self.cfg.ema_alpha)
            self._memory.append(None, len(self))
        elif self._memory.dim != dim:
            raise ValueError(f"embedding dimension changed from {self._memory.dim} to {dim}")
        return self._memory

    def _birth(self, tlbr: np.ndarray, scores: np.ndarray, emb: np.ndarray | None, now: float) -> None:
        n = len(tlbr)
        if n == 0:
            return
        mean, cov = kalman.initiate(tlbr_to_xywh(tlbr), self.cfg.kalman)
        # The very first frame has no history to confirm against: start confirmed (as ByteTrack).
        state = CONFIRMED if (self.frames == 1 or self.cfg.n_init == 1) else TENTATIVE
        self.track_ids = np.concatenate([self.track_ids, [self.ids_alloc.next() for _ in range(n)]]).astype(np.int64)
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.state = np.concatenate([self.state, np.full(n, state, np.int8)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, now)])
        self.score = np.concatenate([self.score, scores.astype(np.float32)])
        if self._memory is not None:
            self._memory.append(emb, n)

    def predicted_tlbr(self) -> np.ndarray:
        """(T, 4) current box of every track, tlbr pixels."""
        return xywh_to_tlbr(self.mean[:, :4])

    # ------------------------------------------------------------------ main step
    def update(self, dets: Detections) -> TrackOutput:
        """Advance to ``dets.timestamp`` and associate; returns the tracks of this frame.

        Args:
            dets: the frame's detections (tlbr pixels, scores, optional unit-norm embeddings).
        Returns:
            TrackOutput with one row per track matched in this frame (confirmed or not) and one
            per confirmed track that was not matched (``det_index == -1``, predicted box).
        """
        cfg = self.cfg if dets.embeddings is None else self._cfg_appearance
        now = float(dets.timestamp)
        self.frames += 1
        if self.time is not None:
            dt = now - self.time
            if dt < 0:
                log.warning("timestamp went backwards by %.3f s; re-basing track times on the new clock", -dt)
                self.last_seen = self.last_seen + dt  # ages stay what they were, on the new clock
                dt = 0.0
            self.mean, self.cov = kalman.predict(self.mean, self.cov, dt, cfg.kalman)
        self.time = now

        keep_det = dets.scores >= cfg.low_score
        det_idx_all = np.nonzero(keep_det)[0]
        tlbr = dets.tlbr[det_idx_all].astype(np.float64)
        scores = dets.scores[det_idx_all]
        emb = dets.embeddings[det_idx_all] if dets.embeddings is not None else None
        if emb is not None and len(emb):
            memory = self._ensure_memory(emb.shape[1])
        else:
            memory = self._memory
        n_det = len(tlbr)
        self.score_range.observe(scores)
        if cfg.score_scale == "adaptive":
            high = scores >= self.score_range.threshold(cfg.high_score)
            new_track_score = self.score_range.threshold(cfg.new_track_score)
            noise_scores = self.score_range.normalise(scores)
        else:
            high = scores >= cfg.high_score
            new_track_score = cfg.new_track_score
            noise_scores = scores

        det_match = np.full(n_det, -1, np.int64)  # det -> track row
        trk_match = np.full(len(self), -1, np.int64)  # track row -> det
        track_tlbr = self.predicted_tlbr()
        det_xywh = tlbr_to_xywh(tlbr)

        def assign(rows: np.ndarray, cols: np.ndarray, cost_fn, threshold: float) -> None:
            """Match track rows to detection cols on cost_fn(rows, cols); record the pairs."""
            if len(rows) and len(cols):
                m, _, _ = linear_assignment(cost_fn(rows, cols), threshold)
                trk_match[rows[m[:, 0]]] = cols[m[:, 1]]
                det_match[cols[m[:, 1]]] = rows[m[:, 0]]

        def iou_only(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            return iou_cost(track_tlbr[rows], tlbr[cols])

        def fused(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            motion = iou_cost(track_tlbr[rows], tlbr[cols])
            appearance = has_app = None
            if emb is not None and memory is not None:
                appearance = memory.distance(rows, emb[cols]).astype(np.float64)
                has_app = memory.valid[rows]
            cost = fuse_costs(appearance, motion, cfg.appearance_weight, has_app)
            gate = kalman.mahalanobis_sq(self.mean[rows], self.cov[rows], det_xywh[cols], cfg.kalman) > cfg.gating_chi2
            if appearance is not None:
                gate |= (appearance > cfg.max_cosine_distance) & has_app[:, None]
            # Without appearance, a pair must overlap to match: motion alone cannot re-identify.
            no_app = np.ones(len(rows), bool) if has_app is None else ~has_app
            gate |= no_app[:, None] & (motion >= 1.0)
            cost[gate] = GATED
            return cost

        # Stage 1: confirmed tracks (tracked or lost) vs confident detections, appearance + motion.
        assign(np.nonzero(self.state == CONFIRMED)[0], np.nonzero(high)[0], fused, cfg.match_threshold)
        # Stage 2: recently seen confirmed tracks vs leftover detections (confident first, then low), IoU.
        recent = (self.state == CONFIRMED) & (now - self.last_seen <= cfg.recent_window)
        for pick in (high, ~high):
            assign(np.nonzero(recent & (trk_match < 0))[0], np.nonzero(pick & (det_match < 0))[0], iou_only,
                   cfg.iou_threshold)
        # Stage 3: tentative tracks vs leftover confident detections, IoU.
        assign(np.nonzero((self.state == TENTATIVE) & (trk_match < 0))[0], np.nonzero(high & (det_match < 0))[0],
               iou_only, cfg.tentative_iou_threshold)

        # Update matched tracks.
        matched = np.nonzero(trk_match >= 0)[0]
        if len(matched):
            d = trk_match[matched]
            self.mean[matched], self.cov[matched] = kalman.update(
                self.mean[matched], self.cov[matched], det_xywh[d], cfg.kalman, noise_scores[d])
            self.hits[matched] += 1
            self.last_seen[matched] = now
            self.score[matched] = scores[d]
            promote = matched[(self.state[matched] == TENTATIVE) & (self.hits[matched] >= cfg.n_init)]
            self.state[promote] = CONFIRMED
            if emb is not None and memory is not None:
                # Only confident detections update appearance (low-score crops are often occluded).
                good = high[d]
                memory.update(matched[good], emb[d[good]])

        # Lifecycle: drop tentative misses and expired tracks.
        missed = trk_match < 0
        drop = missed & (self.state == TENTATIVE)
        has_app = memory.valid if memory is not None else np.zeros(len(self), bool)
        max_age = np.where(has_app, cfg.max_age, min(cfg.motion_max_age, cfg.max_age))
        drop |= (self.state == CONFIRMED) & (now - self.last_seen > max_age)
        if cfg.output_box == "filtered":
            matched_tlbr = self.predicted_tlbr()
        else:
            matched_tlbr = tlbr[np.maximum(trk_match, 0)] if n_det else track_tlbr
        out_rows = np.nonzero(~drop & ((trk_match >= 0) | (self.state == CONFIRMED)))[0]
        out = TrackOutput(
            track_ids=self.track_ids[out_rows].copy(),
            global_ids=np.full(len(out_rows), -1, np.int64),
            tlbr=np.where((trk_match[out_rows] >= 0)[:, None], matched_tlbr[out_rows],
                          track_tlbr[out_rows]).astype(np.float32),
            scores=np.where(trk_match[out_rows] >= 0, self.score[out_rows], 0.0).astype(np.float32),
            det_index=np.where(trk_match[out_rows] >= 0, det_idx_all[np.maximum(trk_match[out_rows], 0)]
                               if n_det else -1, -1).astype(np.int64),
            confirmed=self.state[out_rows] == CONFIRMED,
            timestamp=now,
        )
        if drop.any():
            self._keep(~drop)

        # Births from unmatched confident detections.
        new = np.nonzero(high & (det_match < 0) & (scores >= new_track_score))[0]
        if len(new):
            self._birth(tlbr[new], scores[new], emb[new] if emb is not None else None, now)
            if self.frames == 1 or cfg.n_init == 1:
                out = _append_births(out, self.track_ids[-len(new):], tlbr[new], scores[new], det_idx_all[new])
        return out


def _append_births(out: TrackOutput, ids, tlbr, scores, det_index) -> TrackOutput:
    """Add rows for tracks born confirmed in this frame."""
    n = len(ids)
    return TrackOutput(
        track_ids=np.concatenate([out.track_ids, ids]),
        global_ids=np.concatenate([out.global_ids, np.full(n, -1, np.int64)]),
        tlbr=np.concatenate([out.tlbr, tlbr.astype(np.float32)]),
        scores=np.concatenate([out.scores, scores.astype(np.float32)]),
        det_index=np.concatenate([out.det_index, det_index.astype(np.int64)]),
        confirmed=np.concatenate([out.confirmed, np.ones(n, bool)]),
        timestamp=out.timestamp,
    )
