"""Run-time adaptation of the tracker to what it sees: frame rate (all times in seconds), the detector's
score range (tracker.score_scale: adaptive) and whether appearance is available (motion_max_age)."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.core.config import TrackerConfig
from tracker.core.ids import IdAllocator
from tracker.core.tracker import CameraTracker, ScoreRange
from tracker.core.types import Detections

# ----------------------------------------------------------------------------------------------------------
# ScoreRange: a table of score distributions


@pytest.mark.parametrize("lo, hi, t, expected", [
    (0.5, 1.0, 0.5, 0.75),   # SORT's Faster R-CNN: reports 0.5..1.0
    (0.1, 0.9, 0.5, 0.50),   # YOLO at conf 0.1: 0.1..0.9
    (0.0, 1.0, 0.7, 0.70),   # a detector using the whole range reads like absolute scores
    (0.3, 0.6, 0.0, 0.30),
])
def test_score_range_learns_the_detectors_range(lo, hi, t, expected):
    r = ScoreRange()
    r.observe(np.random.default_rng(0).uniform(lo, hi, 5000))
    assert r.threshold(t) == pytest.approx(expected, abs=0.02)
    assert r.normalise(np.array([lo, hi]))[0] == pytest.approx(0.0, abs=0.03)
    assert r.normalise(np.array([lo, hi]))[1] == pytest.approx(1.0, abs=0.03)


def test_score_range_starts_absolute_and_ignores_empty_frames():
    r = ScoreRange()
    assert (r.floor, r.top) == (0.0, 1.0) and r.threshold(0.5) == 0.5
    r.observe(np.zeros(0))
    assert (r.floor, r.top) == (0.0, 1.0)
    r.observe(np.full(3, 0.95))  # a few detections move the range only a little
    assert r.floor < 0.2 and r.top > 0.95


# ----------------------------------------------------------------------------------------------------------
# Synthetic scene: people walking at constant speed (pixels per second), detections with pixel noise


def _scene(fps: float, seconds: float = 10.0, seed: int = 0, score_map=lambda s: s,
           gap: tuple[float, float] | None = None):
    """Yield Detections for 3 people (one crosses another) sampled at ``fps``; person 2 unseen during ``gap``."""
    rng = np.random.default_rng(seed)
    starts = np.array([[100.0, 300.0], [700.0, 310.0], [400.0, 150.0]])
    vel = np.array([[40.0, 0.0], [-40.0, 0.0], [0.0, 15.0]])  # px / s
    n = int(round(seconds * fps))
    for f in range(n):
        t = f / fps
        c = starts + vel * t + rng.normal(0, 1.5, starts.shape)
        keep = np.ones(3, bool)
        if gap is not None and gap[0] <= t < gap[1]:
            keep[2] = False
        w, h = 40.0, 100.0
        tlbr = np.column_stack([c[:, 0] - w / 2, c[:, 1] - h / 2, c[:, 0] + w / 2, c[:, 1] + h / 2])[keep]
        scores = score_map(rng.uniform(0.6, 1.0, 3)[keep])
        yield Detections(tlbr.astype(np.float32), scores.astype(np.float32), t, None, f + 1)


def _track(frames, cfg: TrackerConfig | None = None) -> dict[float, dict[int, np.ndarray]]:
    """{timestamp: {track id: tlbr}} of confirmed tracks matched in that frame."""
    trk = CameraTracker(cfg or TrackerConfig(), IdAllocator())
    out = {}
    for d in frames:
        o = trk.update(d)
        keep = o.confirmed & (o.det_index >= 0)
        out[round(d.timestamp, 6)] = dict(zip(o.track_ids[keep].tolist(), o.tlbr[keep], strict=True))
    return out


def _ids(res) -> set[int]:
    return {i for frame in res.values() for i in frame}


@pytest.mark.parametrize("gap", [None, (4.0, 4.5)])
def test_same_scene_at_7_and_30_fps_gives_the_same_tracks(gap):
    """Times are seconds: the same people at 7 and 30 fps get the same number of tracks (3: one each, across
    the crossing and a 0.5 s miss), and at the instants both rates sample the boxes agree within a few pixels."""
    slow, fast = _track(_scene(7.0, gap=gap)), _track(_scene(30.0, gap=gap))
    assert len(_ids(slow)) == len(_ids(fast)) == 3
    common = [t for t in slow if t in fast and t >= 1.0]  # whole seconds: 1.0 .. 9.0
    assert len(common) >= 8
    for t in common:
        a, b = slow[t], fast[t]
        assert len(a) == len(b), t
        # match boxes by position (ids are allocated in different orders)
        for box in a.values():
            nearest = min(np.abs(np.asarray(list(b.values())) - box).max(axis=1))
            assert nearest < 6.0, (t, nearest)


def test_tracks_do_not_depend_on_the_detectors_score_scale():
    """The same detections with scores squeezed into 0.5..1.0 (as SORT's Faster R-CNN reports them) give the same
    tracks as with scores spread over 0.2..1.0 once the range is learnt."""
    wide = _track(_scene(14.0, seconds=20.0, score_map=lambda s: (s - 0.6) * 2.0 + 0.2))
    narrow = _track(_scene(14.0, seconds=20.0, score_map=lambda s: (s - 0.6) * 1.25 + 0.5))
    late = [t for t in wide if t >= 5.0]
    same = sum(len(wide[t]) == len(narrow[t]) for t in late)
    assert same / len(late) >= 0.95
    assert len(_ids(wide)) == len(_ids(narrow))


def test_absolute_scale_reads_raw_scores():
    """With score_scale 'absolute' a detector reporting only 0.5..0.7 never reaches new_track_score 0.8; on the
    adaptive scale 0.8 means the top fifth of what it reports, so tracks start."""
    cfg = TrackerConfig(score_scale="absolute", new_track_score=0.8, high_score=0.5)
    res = _track(_scene(14.0, seconds=3.0, score_map=lambda s: 0.5 + (s - 0.6) * 0.5), cfg)
    assert not _ids(res)
    res = _track(_scene(14.0, seconds=6.0, score_map=lambda s: 0.5 + (s - 0.6) * 0.5),
                 TrackerConfig(new_track_score=0.8, high_score=0.5))
    assert _ids(res)


@pytest.mark.parametrize("emb, same_id", [(False, False), (True, True)])
def test_motion_only_tracks_expire_after_motion_max_age(emb, same_id):
    """A person unseen for 1.5 s: with appearance the track waits max_age (5 s) and is re-identified;
    on motion alone it expires after motion_max_age (1 s) and the person gets a new track."""
    cfg = TrackerConfig(max_age=5.0, motion_max_age=1.0)
    trk = CameraTracker(cfg, IdAllocator())
    e = np.ones((1, 8), np.float32) / np.sqrt(8) if emb else None
    box = np.array([[100, 100, 140, 200]], np.float32)
    ids = []
    for f in range(40):
        t = f / 10.0
        if 1.0 <= t < 2.5:
            d = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), t,
                           np.zeros((0, 8), np.float32) if emb else None)
        else:
            d = Detections(box, np.array([0.9], np.float32), t, e)
        o = trk.update(d)
        ids += o.track_ids[o.confirmed & (o.det_index >= 0)].tolist()
    assert (len(set(ids)) == 1) == same_id
