"""Site adaptation and learned topology of the identity registry: synthetic scenarios."""

from __future__ import annotations

import numpy as np

from tests.test_multicam import BOX, out
from tracker.multicam.adaptation import SiteAdaptation
from tracker.multicam.config import LinkConfig, MulticamConfig
from tracker.multicam.registry import IdentityRegistry
from tracker.multicam.topology import LearnedTopology

DIM = 32
RNG = np.random.default_rng(5)
COMMON = RNG.normal(size=DIM)
COMMON /= np.linalg.norm(COMMON)
BIAS = RNG.normal(size=DIM)  # camera b's colour cast
BIAS -= (BIAS @ COMMON) * COMMON
BIAS /= np.linalg.norm(BIAS)


def person(seed: int) -> np.ndarray:
    u = np.random.default_rng(1000 + seed).normal(size=DIM)
    return u / np.linalg.norm(u)


def look(seed: int, cam: str, noise: float = 0.05) -> np.ndarray:
    """One embedding of person ``seed`` in camera ``cam``: the site's common look (everyone wears dark
    jackets), the person, and camera b's colour cast; unit norm."""
    v = 2.0 * COMMON + person(seed) + (1.5 * BIAS if cam == "b" else 0.0)
    v = v + np.random.default_rng().normal(0, noise, DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def walk(reg, cam, local, seed, t0, t1, fps=5.0):
    ids = set()
    for k in range(int((t1 - t0) * fps)):
        t = t0 + k / fps
        r = reg.update(t, {cam: out([(local, BOX)], t)}, {cam: look(seed, cam)[None]})
        ids |= set(r[cam].global_ids.tolist())
    reg.update(t1 + 0.01, {cam: out([], t1 + 0.01)}, {cam: np.zeros((0, DIM), np.float32)})
    return ids


# ------------------------------------------------------------------------------ adaptation


def test_adaptation_is_the_identity_before_any_evidence():
    ad = SiteAdaptation()
    x = np.stack([look(1, "a"), look(2, "b")])
    assert np.array_equal(ad.transform("a", x), x)
    ad.observe("a", look(3, "a"))  # observed but not yet refreshed: still the identity
    assert np.array_equal(ad.transform_rows(["a", "b"], x), x)
    g, q = SiteAdaptation().embed(["a"], x[:1], query=False), SiteAdaptation().embed(["b"], x[1:], query=True)
    assert np.isclose(1.0 - float(g[0] @ q[0]), 1.0 - float(x[0] @ x[1]), atol=1e-6)  # raw cosine distance


def test_adaptation_separates_look_alikes_after_evidence():
    """Raw, person A seen in camera b is closer to someone else seen in b (they share the camera's cast)
    than to A seen in a; once each camera's centre is learned from other people's tracks, A is closest."""
    ad = SiteAdaptation()
    a_in_a, b_in_b, a_in_b = look(1, "a", 0), look(2, "b", 0), look(1, "b", 0)
    raw = (1 - a_in_b @ a_in_a, 1 - a_in_b @ b_in_b)
    assert raw[0] > raw[1]  # the look-alike wins on raw features
    for p in range(100, 140):
        ad.observe("a", look(p, "a"))
        ad.observe("b", look(p + 100, "b"))
    assert ad.refresh()
    g = ad.embed(["a", "b"], np.stack([a_in_a, b_in_b]), query=False)
    q = ad.embed(["b"], a_in_b[None], query=True)[0]
    d = 1.0 - g @ q
    assert d[0] < d[1]
    assert ad.export_state() and SiteAdaptation().export_state() == {"cameras": {}}
    again = SiteAdaptation()
    again.import_state(ad.export_state())
    assert np.allclose(again.embed(["b"], a_in_b[None], query=True), q[None], atol=1e-6)


def test_registry_links_across_the_colour_cast_with_adaptation_only():
    def run(adapt: bool, others: int) -> bool:
        reg = IdentityRegistry(MulticamConfig(enabled=True, adapt=adapt, memory_seconds=60.0))
        t = 0.0
        for p in range(others):  # other people pass both cameras, one at a time: the evidence
            walk(reg, "a", 100 + p, 200 + p, t, t + 2)
            walk(reg, "b", 100 + p, 300 + p, t + 2.5, t + 4.5)
            t += 5
        t += 120  # they are forgotten (memory_seconds), what was learned from them is not
        (ga,) = walk(reg, "a", 1, 1, t, t + 3)
        walk(reg, "b", 1, 2, t + 3.5, t + 6.5)  # someone else, in b
        (gb,) = walk(reg, "b", 2, 1, t + 7, t + 10)  # A again, now in b
        return ga == gb

    assert not run(adapt=False, others=0)  # raw features: the look-alike in b (same colour cast) wins
    assert not run(adapt=False, others=30)
    assert run(adapt=True, others=30)


# ------------------------------------------------------------------------------ learned topology


def test_link_needs_several_consistent_handovers_never_one():
    topo = LearnedTopology(min_handovers=4)
    topo.record("a", "b", 3.0)
    assert topo.links() == {} and topo.overlaps() == set()
    for gap in (2.5, 3.5, 4.0):
        topo.record("b", "a", gap)  # either direction counts for the pair
    lo, hi = topo.links()[("a", "b")]
    assert lo <= 2.5 and hi >= 4.0
    assert topo.overlaps() == set()
    rows = topo.report()
    assert rows[0]["handovers"] == 4 and rows[0]["learned"] == "link" and rows[0]["travel_median"] == 3.25
    again = LearnedTopology(min_handovers=4)
    again.import_state(topo.export_state())
    assert again.links() == topo.links()


def test_overlap_learned_from_simultaneous_sightings():
    topo = LearnedTopology(min_handovers=4)
    for gap in (0.0, 0.0, 1.0, 0.0, 0.0):
        topo.record("a", "b", gap)
    assert topo.overlaps() == {frozenset(("a", "b"))} and topo.links() == {}


def test_registry_learns_a_link_from_handovers_and_then_uses_its_window():
    cfg = MulticamConfig(enabled=True, adapt=False, topology_min_handovers=3)
    reg = IdentityRegistry(cfg)
    t = 0.0
    for p in range(3):  # three different people walk from a to b, 2 s through a blind gap
        ga = walk(reg, "a", 10 + p, 20 + p, t, t + 2)
        if p == 0:
            assert reg.learned_topology()["links"] == []
        gb = walk(reg, "b", 10 + p, 20 + p, t + 4, t + 6)
        assert ga == gb
        t += 20
    learned = reg.learned_topology()
    assert [(lk.a, lk.b) for lk in learned["links"]] == [("a", "b")]
    lo, hi = reg._links[("a", "b")]
    assert lo <= 2.0 <= hi
    # Used like a written link: a hand-over far outside the learned window is not linked.
    ga = walk(reg, "a", 50, 50, t, t + 2)
    gb = walk(reg, "b", 50, 50, t + 2 + hi + 5, t + 2 + hi + 8)
    assert ga != gb


def test_registry_learns_an_overlap_and_links_people_in_both_views_at_once():
    cfg = MulticamConfig(enabled=True, adapt=False, topology_min_handovers=3)
    reg = IdentityRegistry(cfg)

    def both(p, t0):
        ids = {"a": set(), "b": set()}
        for k in range(20):  # in a from t0, in b as well from t0 + 1 s (the views overlap)
            t = t0 + k / 5
            outs = {"a": out([(p, BOX)], t), "b": out([(p, BOX)] if k >= 5 else [], t)}
            embs = {"a": look(p, "a")[None], "b": (look(p, "a")[None] if k >= 5 else np.zeros((0, DIM), np.float32))}
            r = reg.update(t, outs, embs)
            for c in r:
                ids[c] |= set(r[c].global_ids.tolist())
        for c in ("a", "b"):
            reg.update(t0 + 5, {c: out([], t0 + 5)}, {c: np.zeros((0, DIM), np.float32)})
        return ids

    first = both(1, 0.0)
    assert first["a"] != first["b"]  # nothing known: one identity cannot be in two cameras at once
    for p in range(2, 5):
        both(p, 10.0 * p)
    assert reg.learned_topology()["overlaps"] == [["a", "b"]]
    later = both(9, 100.0)
    assert later["a"] == later["b"]


def test_written_topology_wins_over_learned():
    cfg = MulticamConfig(enabled=True, adapt=False, topology_min_handovers=2, links=(LinkConfig("a", "b", 0, 5),))
    reg = IdentityRegistry(cfg)
    for _ in range(3):
        reg.topology.record("a", "b", 0.0)  # evidence says the views overlap
    reg._apply_topology()
    learned = reg.learned_topology()
    assert learned["overlaps"] == [["a", "b"]] and learned["pairs"][0]["written"]
    assert not reg.overlaps("a", "b") and reg._links[("a", "b")] == (0, 5)  # the written link is used
