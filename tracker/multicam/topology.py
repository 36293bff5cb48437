"""Camera topology learned from the data: which cameras connect, with which travel times, and which overlap.

Evidence is a *confident, unambiguous hand-over*: a new track in camera B whose appearance matches
one known identity clearly (distance at most ``max_distance``) and every other identity clearly
worse (by at least ``margin``), where that identity was last seen in another camera A. Its gap is

    gap = (first time of the new track in B) - (last time the identity was seen in A)

and it is negative (or zero) when the identity is still visible in A at that moment: the person is
in both views at once, so A and B overlap. Per unordered camera pair the last ``max_samples`` gaps
are kept. A pair becomes

- an **overlap** once it has ``min_handovers`` pieces of evidence and most of them (more than
  ``overlap_fraction``) are simultaneous;
- a **link** once it has ``min_handovers`` positive gaps and is not an overlap; its travel window
  is ``[0.5 * shortest, 2 * longest + slack]`` of the gaps seen, in seconds (both directions).

A single hand-over never creates anything: a look-alike seen once somewhere else must not connect
two cameras. Look-alikes that recur are why ``min_handovers`` is more than two: raising it trades
later learning for fewer false connections.

Memory: at most ``max_samples`` floats per camera pair. Time: O(1) per piece of evidence, O(pairs)
to rebuild the learned topology (only when evidence arrives). Pure Python/numpy; no I/O.
"""

from __future__ import annotations

import numpy as np


class LearnedTopology:
    """Hand-over evidence per camera pair and the overlaps and links it supports.

    Args:
        min_handovers: pieces of evidence a pair needs before it becomes an overlap or a link.
        overlap_fraction: share of simultaneous sightings above which a pair is an overlap.
        max_samples: gaps kept per pair (the newest); bounds memory and lets the topology follow change.
        slack: seconds added to the longest travel time seen (people walk slower than anyone yet seen).
    """

    def __init__(self, min_handovers: int = 4, overlap_fraction: float = 0.5, max_samples: int = 64,
                 slack: float = 2.0):
        self.min_handovers = int(min_handovers)
        self.overlap_fraction = float(overlap_fraction)
        self.max_samples = int(max_samples)
        self.slack = float(slack)
        self._gaps: dict[tuple[str, str], list[float]] = {}  # sorted camera pair -> gaps in seconds
        self.version = 0  # bumped whenever the learned overlaps or links change
        self._overlaps: set[frozenset] = set()
        self._links: dict[tuple[str, str], tuple[float, float]] = {}

    def record(self, a: str, b: str, gap: float) -> None:
        """One confident hand-over from camera ``a`` to camera ``b`` after ``gap`` seconds (<= 0: both at once)."""
        if a == b or not np.isfinite(gap):
            return
        key = (a, b) if a < b else (b, a)
        g = self._gaps.setdefault(key, [])
        g.append(float(gap))
        if len(g) > self.max_samples:
            del g[0]
        self._rebuild()

    def _rebuild(self) -> None:
        overlaps, links = set(), {}
        for (a, b), gaps in self._gaps.items():
            g = np.asarray(gaps)
            if len(g) < self.min_handovers:
                continue
            sim = g <= 0.0
            if sim.mean() > self.overlap_fraction:
                overlaps.add(frozenset((a, b)))
                continue
            pos = g[~sim]
            if len(pos) >= self.min_handovers:
                links[(a, b)] = (round(0.5 * float(pos.min()), 1), round(2.0 * float(pos.max()) + self.slack, 1))
        if overlaps != self._overlaps or links != self._links:
            self._overlaps, self._links = overlaps, links
            self.version += 1

    def overlaps(self) -> set[frozenset]:
        """Learned overlapping camera pairs."""
        return set(self._overlaps)

    def links(self) -> dict[tuple[str, str], tuple[float, float]]:
        """Learned links: sorted (a, b) -> (min_travel, max_travel) seconds, valid in both directions."""
        return dict(self._links)

    def report(self) -> list[dict]:
        """Every camera pair with evidence: ``{"a", "b", "handovers", "simultaneous", "travel_median",
        "travel_min", "travel_max", "learned": "overlap"|"link"|None, "min_travel", "max_travel"}``."""
        rows = []
        for (a, b), gaps in sorted(self._gaps.items()):
            g = np.asarray(gaps)
            pos = g[g > 0]
            link = self._links.get((a, b))
            kind = "overlap" if frozenset((a, b)) in self._overlaps else ("link" if link else None)
            rows.append({"a": a, "b": b, "handovers": int(len(g)), "simultaneous": int((g <= 0).sum()),
                         "travel_median": float(np.median(pos)) if len(pos) else None,
                         "travel_min": float(pos.min()) if len(pos) else None,
                         "travel_max": float(pos.max()) if len(pos) else None, "learned": kind,
                         "min_travel": link[0] if link else None, "max_travel": link[1] if link else None})
        return rows

    # ------------------------------------------------------------------ persistence
    def export_state(self) -> dict:
        """``{"pairs": [[a, b, [gaps...]], ...]}`` (plain data, JSON-able)."""
        return {"pairs": [[a, b, [float(x) for x in g]] for (a, b), g in sorted(self._gaps.items())]}

    def import_state(self, state: dict) -> None:
        """Restore what ``export_state`` returned (replaces the current evidence)."""
        gaps = {}
        for a, b, g in (state or {}).get("pairs", []):
            vals = [float(x) for x in g][-self.max_samples:]
            if str(a) != str(b) and all(np.isfinite(vals)):
                key = (str(a), str(b)) if str(a) < str(b) else (str(b), str(a))
                gaps[key] = vals
        self._gaps = gaps
        self._rebuild()
        self.version += 1
