"""Track lifecycle scenarios with synthetic people: birth, occlusion, crossing, re-entry, ids."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tracker.core.config import TrackerConfig
from tracker.core.ids import IdAllocator
from tracker.core.tracker import CameraTracker
from tracker.core.types import Detections

RNG = np.random.default_rng(7)
DIM = 64


def person_embedding(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def noisy(e: np.ndarray, sigma: float = 0.05) -> np.ndarray:
    v = e + RNG.normal(0, sigma, e.shape).astype(np.float32)
    return v / np.linalg.norm(v)


def box(cx: float, cy: float, w: float = 40, h: float = 100) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def frame(people: list[tuple[list[float], int]], t: float, emb: bool = True, score: float = 0.9) -> Detections:
    """people: list of (tlbr box, person seed)."""
    tlbr = np.array([p[0] for p in people], np.float32).reshape(-1, 4)
    e = np.array([noisy(person_embedding(p[1])) for p in people], np.float32).reshape(-1, DIM) if emb else None
    return Detections(tlbr, np.full(len(people), score, np.float32), t, e)


def run(tracker: CameraTracker, frames: list[Detections]) -> list[dict[int, int]]:
    """Returns, per frame, {det_index: track id} for confirmed matched tracks."""
    out = []
    for d in frames:
        o = tracker.update(d)
        keep = o.confirmed & (o.det_index >= 0)
        out.append(dict(zip(o.det_index[keep].tolist(), o.track_ids[keep].tolist(), strict=False)))
    return out


def ids_of(assignments: list[dict[int, int]], det: int) -> set[int]:
    return {a[det] for a in assignments if det in a}


@pytest.mark.parametrize("emb", [True, False])
def test_birth_and_confirmation(emb):
    cfg = TrackerConfig(n_init=3)
    trk = CameraTracker(cfg, IdAllocator())
    frames = [frame([(box(100, 100), 1)], 0.0, emb)]  # first frame: confirmed at once
    res = run(trk, frames)
    assert res[0] == {0: 1}
    # A person appearing later is tentative for n_init - 1 frames, then confirmed.
    frames = [frame([(box(100 + 5 * k, 100), 1), (box(400, 300), 2)], 0.1 * k, emb) for k in range(1, 6)]
    res = run(trk, frames)
    assert [1 in r for r in res] == [False, False, True, True, True]
    assert ids_of(res, 0) == {1} and ids_of(res, 1) == {2}


def test_false_positive_never_confirmed():
    trk = CameraTracker(TrackerConfig(n_init=3), IdAllocator())
    run(trk, [frame([(box(100, 100), 1)], 0.0)])
    res = run(trk, [frame([(box(100, 100), 1), (box(500, 300), 9)], 0.1)] +
              [frame([(box(100, 100), 1)], 0.1 * k) for k in range(2, 6)])
    assert all(set(r.values()) == {1} for r in res)
    assert len(trk) == 1


def ids_by_person(res: list[dict[int, int]], truth: list[list[int]]) -> dict[int, set[int]]:
    """{person seed: set of track ids it was given}, from per-frame det -> person lists."""
    out: dict[int, set[int]] = {}
    for r, tr in zip(res, truth, strict=False):
        for det, tid in r.items():
            out.setdefault(tr[det], set()).add(tid)
    return out


@pytest.mark.parametrize("fps", [5.0, 30.0])
def test_occlusion_gap_keeps_identity(fps):
    """A walking person hidden for 1.5 s comes back with the same id (with appearance)."""
    trk = CameraTracker(TrackerConfig(), IdAllocator())
    frames, truth = [], []
    for k in range(int(6 * fps)):
        t = k / fps
        if 2.0 <= t < 3.5:
            frames.append(frame([(box(300, 300), 2)], t))  # only a bystander visible
            truth.append([2])
        else:
            frames.append(frame([(box(100 + 40 * t, 200), 1), (box(300, 300), 2)], t))
            truth.append([1, 2])
    assert ids_by_person(run(trk, frames), truth) == {1: {1}, 2: {2}}


def test_crossing_people_keep_identities():
    """Two people cross paths; appearance and motion keep them apart."""
    trk = CameraTracker(TrackerConfig(), IdAllocator())
    fps, frames, truth = 7.0, [], []
    for k in range(40):
        t = k / fps
        a, b = box(100 + 60 * t, 200), box(460 - 60 * t, 210)
        people = [(a, 1), (b, 2)] if k % 2 == 0 else [(b, 2), (a, 1)]  # detector order varies
        frames.append(frame(people, t))
        truth.append([1, 2] if k % 2 == 0 else [2, 1])
    assert ids_by_person(run(trk, frames), truth) == {1: {1}, 2: {2}}


def test_reentry_within_budget_and_after():
    """Re-entry within max_age restores the id; after max_age a new id is issued and old ids never return."""
    cfg = TrackerConfig(max_age=5.0)
    trk = CameraTracker(cfg, IdAllocator())
    run(trk, [frame([(box(100, 100), 1)], 0.1 * k) for k in range(10)])
    res = run(trk, [frame([(box(150, 100), 1)], 3.0 + 0.1 * k) for k in range(5)])  # back after 2 s
    assert ids_of(res, 0) == {1}
    run(trk, [Detections.empty(4.0 + k) for k in range(8)])  # gone for 7 s > max_age
    res = run(trk, [frame([(box(100, 100), 1)], 11.5 + 0.1 * k) for k in range(5)])
    assert ids_of(res, 0) == {2}


def test_two_trackers_do_not_share_ids():
    a, b = CameraTracker(TrackerConfig(), IdAllocator()), CameraTracker(TrackerConfig(), IdAllocator())
    ra = run(a, [frame([(box(100, 100), 1)], 0.0)])
    rb = run(b, [frame([(box(100, 100), 1)], 0.0)])
    assert ra[0] == rb[0] == {0: 1}
    shared = IdAllocator()
    c, d = CameraTracker(TrackerConfig(), shared), CameraTracker(TrackerConfig(), shared)
    assert run(c, [frame([(box(1, 1), 1)], 0.0)])[0][0] != run(d, [frame([(box(1, 1), 1)], 0.0)])[0][0]


def test_det_index_points_to_the_detection():
    trk = CameraTracker(TrackerConfig(output_box="detection"), IdAllocator())
    d = frame([(box(100, 100), 1), (box(300, 100), 2), (box(500, 100), 3)], 0.0)
    d = dataclasses.replace(d, scores=np.array([0.9, 0.05, 0.8], np.float32))  # middle one below low_score
    o = trk.update(d)
    assert sorted(o.det_index.tolist()) == [0, 2]
    for i, di in enumerate(o.det_index):
        assert np.allclose(o.tlbr[i], d.tlbr[di])


def test_low_score_detections_extend_but_do_not_start_tracks():
    cfg = TrackerConfig(high_score=0.5, low_score=0.1)
    trk = CameraTracker(cfg, IdAllocator())
    run(trk, [frame([(box(100 + 3 * k, 100), 1)], 0.1 * k) for k in range(5)])
    # Person becomes partly occluded: low scores keep the track alive and matched.
    res = run(trk, [frame([(box(115 + 3 * k, 100), 1)], 0.5 + 0.1 * k, score=0.3) for k in range(5)])
    assert ids_of(res, 0) == {1}
    trk2 = CameraTracker(cfg, IdAllocator())
    res = run(trk2, [frame([(box(100, 100), 1)], 0.1 * k, score=0.3) for k in range(5)])
    assert all(r == {} for r in res)


def test_motion_only_and_timestamps_backwards():
    trk = CameraTracker(TrackerConfig(), IdAllocator())
    res = run(trk, [frame([(box(100 + 5 * k, 100), 1)], 0.1 * k, emb=False) for k in range(5)])
    res += run(trk, [frame([(box(125, 100), 1)], 0.2, emb=False)])  # clock jumped back
    assert ids_of(res, 0) == {1}


def test_memory_gallery_variant():
    trk = CameraTracker(TrackerConfig(memory="gallery", gallery_size=5), IdAllocator())
    res = run(trk, [frame([(box(100 + 5 * k, 100), 1), (box(400, 100), 2)], 0.1 * k) for k in range(20)])
    assert ids_of(res, 0) == {1} and ids_of(res, 1) == {2}


def test_mixed_frame_rates_same_tracks():
    """The same walk sampled at 5 and 25 fps yields one track each: motion is in seconds."""
    for fps in (5.0, 25.0):
        trk = CameraTracker(TrackerConfig(), IdAllocator())
        res = run(trk, [frame([(box(100 + 50 * k / fps, 100), 1)], k / fps, emb=False) for k in range(int(4 * fps))])
        assert ids_of(res, 0) == {1}


def test_many_tracks_bounded_state():
    trk = CameraTracker(TrackerConfig(max_age=1.0), IdAllocator())
    for k in range(50):  # a crowd that changes every second
        base = (k // 10) * 1000
        people = [(box(50 + 60 * i, 100 + base % 400), base + i) for i in range(10)]
        trk.update(frame(people, 0.1 * k))
    assert len(trk) <= 30
