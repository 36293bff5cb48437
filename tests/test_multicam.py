"""Identity registry scenarios with synthetic tracks and embeddings."""

from __future__ import annotations

import numpy as np

from tracker.core.types import TrackOutput
from tracker.multicam.config import HomographyConfig, LinkConfig, MulticamConfig
from tracker.multicam.registry import IdentityRegistry

DIM = 32


def emb(seed: int, noise: float = 0.02) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM)
    v += np.random.default_rng().normal(0, noise * np.linalg.norm(v), DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def out(tracks: list[tuple[int, list[float]]], t: float) -> TrackOutput:
    """Confirmed tracks matched this frame: (local id, tlbr)."""
    n = len(tracks)
    return TrackOutput(np.array([i for i, _ in tracks], np.int64), np.full(n, -1, np.int64),
                       np.array([b for _, b in tracks], np.float32).reshape(n, 4), np.full(n, 0.9, np.float32),
                       np.arange(n, dtype=np.int64), np.ones(n, bool), t)


def step(reg, t, per_cam: dict[str, list[tuple[int, list[float], int]]]) -> dict[str, dict[int, int]]:
    """per_cam: camera -> [(local id, tlbr, person seed)]; returns camera -> {local id: global id}."""
    outputs = {c: out([(i, b) for i, b, _ in rows], t) for c, rows in per_cam.items()}
    embs = {c: np.array([emb(p) for _, _, p in rows], np.float32).reshape(-1, DIM) for c, rows in per_cam.items()}
    res = reg.update(t, outputs, embs)
    return {c: dict(zip(r.track_ids.tolist(), r.global_ids.tolist(), strict=True)) for c, r in res.items()}


BOX = [100, 100, 140, 200]


def walk(reg, cam, local, person, t0, t1, fps=5.0):
    ids = set()
    for k in range(int((t1 - t0) * fps)):
        ids |= set(step(reg, t0 + k / fps, {cam: [(local, BOX, person)]})[cam].values())
    step(reg, t1 + 0.01, {cam: []})  # the track ends
    return ids


def linked_site(max_travel=10.0):
    return MulticamConfig(enabled=True, links=(LinkConfig("a", "b", 0.0, max_travel),))


def test_handover_through_blind_gap_within_window_is_linked():
    reg = IdentityRegistry(linked_site())
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    g2 = walk(reg, "b", 1, person=7, t0=5, t1=8)
    assert g1 == g2 and len(g1) == 1


def test_handover_outside_travel_window_is_not_linked():
    reg = IdentityRegistry(linked_site(max_travel=4.0))
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    g2 = walk(reg, "b", 1, person=7, t0=20, t1=23)
    assert g1 != g2


def test_unlinked_cameras_never_share_identities_when_topology_is_given():
    cfg = MulticamConfig(enabled=True, links=(LinkConfig("a", "b", 0.0, 10.0),))
    reg = IdentityRegistry(cfg)
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    g2 = walk(reg, "c", 1, person=7, t0=4, t1=6)
    assert g1 != g2


def test_two_similar_people_at_once_in_non_overlapping_cameras_are_not_merged():
    reg = IdentityRegistry(linked_site())
    seen = {"a": set(), "b": set()}
    for k in range(20):
        r = step(reg, k / 5, {"a": [(1, BOX, 7)], "b": [(1, BOX, 7)]})  # same looks, same time
        for c in r:
            seen[c] |= set(r[c].values())
    assert seen["a"].isdisjoint(seen["b"])


def test_overlapping_cameras_same_place_share_identity_and_different_place_do_not():
    cfg = MulticamConfig(enabled=True, overlaps=(("a", "b"),), homographies=(
        HomographyConfig("a", (1, 0, 0, 0, 1, 0, 0, 0, 1)), HomographyConfig("b", (1, 0, 500, 0, 1, 0, 0, 0, 1))))
    reg = IdentityRegistry(cfg)
    step(reg, 0.0, {"a": [(1, [600, 100, 640, 200], 7)]})
    r = step(reg, 0.2, {"a": [(1, [600, 100, 640, 200], 7)], "b": [(1, [100, 100, 140, 200], 7),
                                                                   (2, [300, 100, 340, 200], 7)]})
    assert r["b"][1] == r["a"][1]  # b's x=120 is the plane's x=620, where a sees the person
    assert r["b"][2] != r["a"][1]  # same looks, 200 px (2 heights) away: someone else


def test_reentry_same_camera_restores_identity_and_never_twice_in_one_camera():
    reg = IdentityRegistry(MulticamConfig(enabled=True, reentry_max_gap=600.0))
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    g2 = walk(reg, "a", 2, person=7, t0=60, t1=62)  # back a minute later
    assert g1 == g2
    r = step(reg, 70.0, {"a": [(3, BOX, 7), (4, [400, 100, 440, 200], 7)]})
    assert len(set(r["a"].values())) == 2


def test_memory_is_bounded():
    reg = IdentityRegistry(MulticamConfig(enabled=True, memory_seconds=10.0, max_identities=50))
    for p in range(200):
        walk(reg, "a", p + 1, person=1000 + p, t0=p, t1=p + 0.6)
    assert len(reg.identities) <= 50
    assert all(len(i.gallery) <= reg.cfg.gallery_size for i in reg.identities.values())


def widen_view(reg, cam="a", t=-5.0):
    """Someone else crosses the camera's corners first, so its view (learned from boxes) is wider than BOX."""
    step(reg, t, {cam: [(900, [0, 0, 40, 100], 99)]})
    step(reg, t + 0.2, {cam: [(900, [600, 300, 640, 400], 99)]})
    step(reg, t + 0.4, {cam: []})


def test_broken_local_track_is_relinked_and_never_shown_twice():
    """The local tracker loses a person inside the view and starts a new track: the identity carries over; if the
    old (lost) track comes back, it cannot show the same identity in the same camera."""
    reg = IdentityRegistry(MulticamConfig(enabled=True))
    widen_view(reg)
    ids = set()
    for k in range(10):
        ids |= set(step(reg, k / 5, {"a": [(1, BOX, 7)]})["a"].values())
    # Track 1 goes unmatched (lost, still alive in the tracker); track 2 picks the person up 2 s later.
    broken = TrackOutput(np.array([1, 2]), np.array([-1, -1]), np.array([BOX, [110, 100, 150, 200]], np.float32),
                         np.array([0, 0.9], np.float32), np.array([-1, 0]), np.array([True, True]), 3.0)
    r = reg.update(3.0, {"a": broken}, {"a": emb(7)[None]})
    g_new = dict(zip(r["a"].track_ids.tolist(), r["a"].global_ids.tolist(), strict=True))
    assert g_new[2] in ids
    r = step(reg, 3.2, {"a": [(1, [300, 100, 340, 200], 7), (2, [112, 100, 152, 200], 7)]})
    assert r["a"][1] != r["a"][2]


def overlap_site(**kw) -> MulticamConfig:
    """a and b overlap; b's pixel x maps to the plane's x + 500."""
    return MulticamConfig(enabled=True, overlaps=(("a", "b"),), homographies=(
        HomographyConfig("a", (1, 0, 0, 0, 1, 0, 0, 0, 1)), HomographyConfig("b", (1, 0, 500, 0, 1, 0, 0, 0, 1))),
        **kw)


def test_reentry_after_minutes_restores_identity_within_memory_only():
    reg = IdentityRegistry(MulticamConfig(enabled=True, reentry_max_gap=1e6))  # default memory: 300 s
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    g2 = walk(reg, "a", 2, person=7, t0=240, t1=243)  # four minutes later
    assert g1 == g2
    reg = IdentityRegistry(MulticamConfig(enabled=True, memory_seconds=60.0, reentry_max_gap=1e6))
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    g2 = walk(reg, "a", 2, person=7, t0=240, t1=243)
    assert g1 != g2


def test_people_entering_overlapping_views_together_are_merged_with_an_event():
    reg = IdentityRegistry(overlap_site())
    first = None
    for k in range(10):  # 2 s, both views see the same spot (plane x=620) from the same tick on
        r = step(reg, k / 5, {"a": [(1, [600, 100, 640, 200], 7)], "b": [(1, [100, 100, 140, 200], 7)]})
        first = first or (r["a"][1], r["b"][1])
    assert first[0] != first[1]  # both new in one tick: nothing to link to yet
    assert r["a"][1] == r["b"][1] == min(first)  # merged into the older identity
    merged = [e for e in reg.drain_events() if e["type"] == "identity_merged"]
    assert len(merged) == 1 and merged[0]["identity"] == min(first) and merged[0]["merged"] == max(first)
    assert reg.drain_events() == []


def test_identity_at_two_places_in_overlapping_views_is_split_with_an_event():
    reg = IdentityRegistry(overlap_site())
    for k in range(5):
        step(reg, k / 5, {"a": [(1, [600, 100, 640, 200], 7)]})
    r = step(reg, 1.0, {"a": [(1, [600, 100, 640, 200], 7)], "b": [(1, [100, 100, 140, 200], 7)]})
    assert r["a"][1] == r["b"][1]  # handed over: same place, same looks
    for k in range(1, 11):  # then b's track walks away from where a sees the person (3 heights and more)
        r = step(reg, 1.0 + k / 5, {"a": [(1, [600, 100, 640, 200], 7)], "b": [(1, [400 + 20 * k, 100, 440 + 20 * k,
                                                                                   200], 7)]})
    assert r["a"][1] != r["b"][1]
    split = [e for e in reg.drain_events() if e["type"] == "identity_split"]
    assert len(split) == 1 and split[0]["camera"] == "b" and split[0]["new_identity"] == r["b"][1]


def test_linked_track_that_turns_out_to_look_different_is_split():
    reg = IdentityRegistry(linked_site())
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    ids = []
    for k in range(15):  # b: three frames that look like person 7 (linked), then clearly person 8
        ids.append(step(reg, 5 + k / 5, {"b": [(1, BOX, 7 if k < 3 else 8)]})["b"][1])
    assert ids[0] in g1 and ids[-1] not in g1
    assert [e["type"] for e in reg.drain_events()] == ["identity_split"]


def test_newcomer_that_clearly_matches_once_seen_longer_is_merged():
    reg = IdentityRegistry(linked_site())
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    ids = []
    for k in range(15):  # b: three unusable crops first (a new identity), then person 7
        ids.append(step(reg, 5 + k / 5, {"b": [(1, BOX, 1000 + k if k < 3 else 7)]})["b"][1])
    assert ids[0] not in g1 and ids[-1] in g1
    ev = reg.drain_events()
    assert [e["type"] for e in ev] == ["identity_merged"] and ev[0]["merged"] == ids[0]


def test_restart_from_exported_state_keeps_identities():
    cfg = MulticamConfig(enabled=True, reentry_max_gap=1e6)  # people come back into the same camera here
    reg = IdentityRegistry(cfg)
    g1 = walk(reg, "a", 1, person=7, t0=0, t1=3)
    walk(reg, "a", 2, person=8, t0=4, t1=6)
    state = reg.export_state(now=10.0)
    again = IdentityRegistry(cfg)
    assert again.import_state(state, now=0.0) == 2
    assert walk(again, "a", 1, person=7, t0=20, t1=22) == g1  # the clock restarted at 0; ages carried over
    newcomer = walk(again, "a", 2, person=9, t0=30, t1=32)
    assert min(newcomer) >= state["next_id"]
    old = [{**rec, "age": cfg.memory_seconds + 1} for rec in state["identities"]]
    assert IdentityRegistry(cfg).import_state({**state, "identities": old}) == 0  # expired while down


def test_purge_forgets_one_identity_and_its_summaries():
    reg = IdentityRegistry(MulticamConfig(enabled=True))
    (g7,) = walk(reg, "a", 1, person=7, t0=0, t1=3)
    walk(reg, "a", 2, person=8, t0=4, t1=6)
    before = reg.stats()["gallery_embeddings"]
    assert reg.purge(g7) and not reg.purge(g7)
    assert reg.stats()["gallery_embeddings"] == before - 1
    assert walk(reg, "a", 3, person=7, t0=10, t1=12) != {g7}


def test_walked_out_and_back_later_is_someone_new_but_lost_inside_the_view_is_relinked():
    """Default ``reentry_max_gap`` (1 s): a track that ended at the edge of the camera's view (walked out) does not
    give its identity to a look-alike entering that camera seconds later; one lost in the middle of the view does."""
    reg = IdentityRegistry(MulticamConfig(enabled=True))
    widen_view(reg)
    g1 = set()
    for k in range(16):  # walks left until the side of the view, then is gone
        x = max(200 - 13 * k, 0)
        g1 |= set(step(reg, k / 5, {"a": [(1, [x, 150, x + 40, 250], 7)]})["a"].values())
    step(reg, 3.2, {"a": []})
    g2 = walk(reg, "a", 2, person=7, t0=8, t1=10)  # the same looks, 5 s later
    assert len(g1) == len(g2) == 1 and g1 != g2
    g3 = set()
    for k in range(10):  # someone stands in the middle of the view, the tracker loses them
        g3 |= set(step(reg, 20 + k / 5, {"a": [(3, [300, 150, 340, 250], 8)]})["a"].values())
    step(reg, 22.0, {"a": []})
    g4 = walk(reg, "a", 4, person=8, t0=26, t1=28)  # picked up again nearby 4 s later
    assert len(g3) == 1 and g3 == g4


def test_reentry_within_reentry_max_gap_keeps_the_identity_even_at_the_edge():
    reg = IdentityRegistry(MulticamConfig(enabled=True, reentry_max_gap=5.0))
    widen_view(reg)
    g1 = set()
    for k in range(10):  # stands at the left side of the view, then is gone
        g1 |= set(step(reg, 10 + k / 5, {"a": [(5, [0, 150, 40, 250], 7)]})["a"].values())
    step(reg, 12.0, {"a": []})
    g2 = walk(reg, "a", 6, person=7, t0=14, t1=16)  # back 2 s later, within 5 s
    assert g1 == g2
