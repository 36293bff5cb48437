"""Identity registry: one global identity per person across cameras.

Every confirmed local track gets a global identity, resolved once per tick for all cameras
with one assignment (not greedily per track). A new track is matched against identities that
are

- active now in a camera that overlaps its own (and, when both cameras have a homography to a
  common plane, standing at the same place in it),
- recently seen in another camera that the topology links to this one, within the link's
  travel-time window,
- recently seen in the same camera (re-entry), where the person could have walked since,
- or, when no topology is configured, seen anywhere within the memory time.

Constraints: an identity is never active twice in one camera, and never active at the same
time in two cameras that do not overlap. Appearance is a per-track mean of its unit-norm
embeddings; an identity keeps a bounded gallery of track means and matches by the closest;
the longer an identity has been out of sight, the closer the look-alike must be.

Corrections (``_correct``): identities found at one place in overlapping views are merged, one
identity at two places is split, and each track's identity is checked once more when it has
``review_embeddings`` embeddings. Each correction is an event (``drain_events``); ids already
written stay as they were.

Identities stay matchable for ``memory_seconds`` after they were last seen; the gallery and
the number of remembered identities are bounded. ``export_state``/``import_state`` carry the
registry over a restart (``tracker.multicam.store`` keeps it in SQLite); ``purge`` forgets one.

Pure numpy/scipy/lap; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracker.core.association import GATED, linear_assignment
from tracker.core.types import TrackOutput
from tracker.multicam.adaptation import SiteAdaptation
from tracker.multicam.config import LinkConfig, MulticamConfig
from tracker.multicam.topology import LearnedTopology

ADAPT_REFRESH_FRACTION = 0.05  # see SiteAdaptation.refresh


def _foot(tlbr: np.ndarray) -> tuple[np.ndarray, float]:
    """Foot point (bottom centre, (2,)) and height of a left, top, right, bottom box."""
    return np.array([(tlbr[0] + tlbr[2]) / 2, tlbr[3]]), float(tlbr[3] - tlbr[1])


def _apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) pixel points through a 3x3 homography; returns (N, 2)."""
    p = np.column_stack([pts, np.ones(len(pts))]) @ h.T
    return p[:, :2] / p[:, 2:3]


class _GalleryStore:
    """Every identity's appearance summaries in one matrix, so a new track is compared with all of them
    in one product. Rows are recycled; ``owner`` is the identity id of a row (-1: free)."""

    def __init__(self):
        self.rows = np.zeros((0, 0), np.float32)
        self.owner = np.zeros(0, np.int64)
        self.cams: list[str] = []  # camera of each row ("" unknown), for the site adaptation
        self.free: list[int] = []
        self.used = 0  # rows [0, used) have been handed out at least once
        self.adapted: np.ndarray | None = None  # rows [0, used) through the site adaptation (None: stale)
        self.adapt_version = -1

    def add(self, gid: int, vec: np.ndarray, cam: str = "", adapt: SiteAdaptation | None = None) -> int:
        if self.rows.shape[1] != vec.shape[0]:
            if self.used and self.rows.shape[1]:
                raise ValueError(f"embedding size changed from {self.rows.shape[1]} to {vec.shape[0]}")
            self.rows = np.zeros((64, vec.shape[0]), np.float32)
            self.owner = np.full(64, -1, np.int64)
        if self.free:
            r = self.free.pop()
        else:
            if self.used == len(self.rows):
                self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
                self.owner = np.concatenate([self.owner, np.full(len(self.owner), -1, np.int64)])
            r = self.used
            self.used += 1
            self.cams.append("")
        self.rows[r] = vec
        self.owner[r] = gid
        self.cams[r] = cam
        if self.adapted is not None:
            if r < len(self.adapted) and adapt is not None and adapt.version == self.adapt_version:
                self.adapted[r] = adapt.embed([cam], vec[None], query=False)[0]
            else:
                self.adapted = None
        return r

    def adapted_rows(self, adapt: SiteAdaptation) -> np.ndarray:
        """(used, D + 2) rows through the current adaptation, gallery side of ``SiteAdaptation.embed``
        (recomputed only when the adaptation changed)."""
        if self.adapted is None or self.adapt_version != adapt.version or len(self.adapted) != len(self.rows):
            self.adapted = np.zeros((len(self.rows), self.rows.shape[1] + 2), np.float32)
            self.adapted[:self.used] = adapt.embed(self.cams[:self.used], self.rows[:self.used], query=False)
            self.adapt_version = adapt.version
        return self.adapted[:self.used]

    def remove(self, rows: list[int]) -> None:
        for r in rows:
            self.owner[r] = -1
            self.free.append(r)


@dataclass
class _Track:
    camera: str
    local_id: int
    identity: int
    first_time: float
    last_time: float  # last time matched to a detection
    emb_sum: np.ndarray | None = None
    n_emb: int = 0
    position: np.ndarray | None = None  # (2,) foot point in the common plane
    height: float = 0.0  # box height in the common plane (position unit scale)
    tlbr_px: np.ndarray | None = None  # (4,) last box in camera pixels (foot point and height: _foot)
    linked: bool = False  # got an existing identity when resolved (not a newcomer)
    reviewed: bool = False  # its identity was re-checked once it had enough embeddings
    together: dict = field(default_factory=dict)  # other track key -> seconds seen at the same place
    apart: float = 0.0  # seconds its identity was at another place in an overlapping camera
    seen_now: bool = False  # matched to a detection this tick

    _mean: np.ndarray | None = None
    _mean_n: int = -1

    _amean: np.ndarray | None = None
    _amean_key: tuple = ()

    def mean(self) -> np.ndarray | None:
        """Unit-norm mean of its embeddings (cached until the next one)."""
        if self.emb_sum is None or self.n_emb == 0:
            return None
        if self._mean_n != self.n_emb:
            self._mean = self.emb_sum / max(float(np.linalg.norm(self.emb_sum)), 1e-12)
            self._mean_n = self.n_emb
        return self._mean

    def adapted_mean(self, adapt: SiteAdaptation | None, query: bool) -> np.ndarray | None:
        """``mean()`` through the site adaptation (``SiteAdaptation.embed``: (D + 2,), the side of the product
        ``query`` says), or the mean itself without one; cached."""
        m = self.mean()
        if m is None or adapt is None:
            return m
        key = (self.n_emb, adapt.version, query)
        if self._amean_key != key:
            self._amean = adapt.embed([self.camera], m.astype(np.float32)[None], query)[0]
            self._amean_key = key
        return self._amean


@dataclass
class _Identity:
    gid: int
    gallery: list = field(default_factory=list)  # unit-norm track means, newest last (float32)
    gallery_cams: list = field(default_factory=list)  # the camera of each summary ("" unknown)
    rows: list = field(default_factory=list)  # their rows in the registry's _GalleryStore
    last_time: float = 0.0
    last_camera: str = ""
    last_tlbr_px: np.ndarray | None = None  # its last box in last_camera's pixels
    last_position: np.ndarray | None = None  # foot point in the common plane, when the camera has a homography
    last_height: float = 0.0
    active: dict = field(default_factory=dict)  # camera -> local track id


class IdentityRegistry:
    """Assigns global identities to confirmed local tracks of many cameras.

    Args:
        config: ``MulticamConfig`` (topology, overlaps, homographies, thresholds, memory bounds).
        id_start: first global id.
    """

    def __init__(self, config: MulticamConfig | None = None, id_start: int = 1):
        self.cfg = config or MulticamConfig()
        self._next_id = int(id_start)
        self.tracks: dict[tuple[str, int], _Track] = {}
        self._pending: dict[tuple[str, int], _Track] = {}  # tentative local tracks
        self.identities: dict[int, _Identity] = {}
        self._store = _GalleryStore()
        self._h = {c.camera: np.asarray(c.matrix, np.float64).reshape(3, 3) for c in self.cfg.homographies}
        self._written_overlap = {frozenset(p) for p in self.cfg.overlaps if len(set(p)) == 2}
        self._written_links = {}
        for link in self.cfg.links:
            self._written_links[(link.a, link.b)] = (link.min_travel, link.max_travel)
            if link.bidirectional:
                self._written_links[(link.b, link.a)] = (link.min_travel, link.max_travel)
        self.has_topology = bool(self._written_links or self._written_overlap)
        cfg = self.cfg
        # Site adaptation of appearance and learned topology (module docstrings of adaptation, topology).
        self.adapt = SiteAdaptation(cfg.adapt_prior_tracks, cfg.adapt_horizon_tracks) if cfg.adapt else None
        self.topology = (LearnedTopology(cfg.topology_min_handovers) if cfg.learn_topology else None)
        self._topology_version = -1
        self._apply_topology()
        # Corrections not yet written: {"type": "identity_merged"|"identity_split", "time": t, ...}.
        self.events: list[dict] = []
        self._last_now: float | None = None
        self._extent: dict[str, np.ndarray] = {}  # camera -> (4,) hull of every box seen there: its view, learned
        self._tick = 0  # counts update() calls (key of per-tick caches)
        self._act_tick = -1  # the tick _act_raw was built in (see _active_means)
        self._act_raw: tuple = ([], np.zeros((0, 0), np.float32))
        self._act_adapted: dict = {}
        self._last_forget = -np.inf
        self._last_refresh = -np.inf

    # ------------------------------------------------------------------ helpers
    def _apply_topology(self) -> None:
        """The topology in use: the written one, plus learned pairs the written one does not mention
        (a written overlap or link of a pair always wins over what was learned for it)."""
        self._overlap = set(self._written_overlap)
        self._links = dict(self._written_links)
        if self.topology is not None:
            self._topology_version = self.topology.version
            written = self._written_overlap | {frozenset(k) for k in self._written_links}
            for pair in self.topology.overlaps():
                if pair not in written:
                    self._overlap.add(pair)
            for (a, b), window in self.topology.links().items():
                if frozenset((a, b)) not in written:
                    self._links[(a, b)] = self._links[(b, a)] = window
        # The same pairs in a fixed order (a set of strings iterates in a per-process hash order, and the
        # order of the corrections must not change between runs).
        self._overlap_pairs = sorted(tuple(sorted(p)) for p in self._overlap)

    def learned_topology(self) -> dict:
        """What was learned, for people to check and copy into the config: ``{"overlaps": [[a, b]], "links":
        [LinkConfig], "pairs": LearnedTopology.report()}``; pairs the written topology covers are marked
        ``"written": True`` (the written entry is used)."""
        if self.topology is None:
            return {"overlaps": [], "links": [], "pairs": []}
        written = self._written_overlap | {frozenset(k) for k in self._written_links}
        pairs = [{**r, "written": frozenset((r["a"], r["b"])) in written} for r in self.topology.report()]
        return {"overlaps": sorted(sorted(p) for p in self.topology.overlaps()),
                "links": [LinkConfig(a, b, lo, hi) for (a, b), (lo, hi) in sorted(self.topology.links().items())],
                "pairs": pairs}

    def overlaps(self, a: str, b: str) -> bool:
        return a != b and frozenset((a, b)) in self._overlap

    def _observe(self, cam: str, rows: list[tuple[_Track, int]], out: TrackOutput, emb: np.ndarray | None,
                 now: float) -> None:
        """Update the matched tracks ``rows`` ((track, row index)) of one camera, vectorised over rows."""
        idx = np.fromiter((i for _, i in rows), np.int64, len(rows))
        tlbr = np.asarray(out.tlbr, np.float64)[idx]
        h = self._h.get(cam)
        if h is not None:  # foot and head points into the common plane
            cx = (tlbr[:, 0] + tlbr[:, 2]) / 2
            plane = _apply_h(h, np.concatenate([np.column_stack([cx, tlbr[:, 3]]), np.column_stack([cx, tlbr[:, 1]])]))
            pos, top = plane[:len(idx)], plane[len(idx):]
            plane_h = np.linalg.norm(pos - top, axis=1)
        det = np.asarray(out.det_index)[idx]
        lo, hi = tlbr[:, :2].min(axis=0), tlbr[:, 2:].max(axis=0)
        ext = self._extent.get(cam)
        self._extent[cam] = np.concatenate([lo, hi]) if ext is None else np.concatenate(
            [np.minimum(ext[:2], lo), np.maximum(ext[2:], hi)])
        for k, (tr, _) in enumerate(rows):
            tr.last_time, tr.seen_now = now, True
            tr.tlbr_px = tlbr[k]
            if h is not None:
                tr.position, tr.height = pos[k], float(plane_h[k])
            d = int(det[k])
            if emb is not None and d < len(emb):
                e = emb[d]
                tr.emb_sum = e.astype(np.float64) if tr.emb_sum is None else tr.emb_sum + e
                tr.n_emb += 1

    def _set_gallery(self, ident: _Identity, vectors: list, cams: list | None = None) -> None:
        """Replace an identity's summaries and their cameras (keeping the newest ``gallery_size``)."""
        self._store.remove(ident.rows)
        cams = list(cams) if cams is not None else [""] * len(vectors)
        ident.gallery = [np.asarray(v, np.float32) for v in vectors][-self.cfg.gallery_size:]
        ident.gallery_cams = [str(c) for c in cams][-self.cfg.gallery_size:]
        ident.rows = [self._store.add(ident.gid, v, c, self.adapt)
                      for v, c in zip(ident.gallery, ident.gallery_cams, strict=True)]

    def _delete(self, gid: int) -> _Identity | None:
        ident = self.identities.pop(gid, None)
        if ident is not None:
            self._store.remove(ident.rows)
            ident.rows = []
        return ident

    def _new_identity(self) -> _Identity:
        ident = _Identity(self._next_id)
        self._next_id += 1
        self.identities[ident.gid] = ident
        return ident

    def _present(self, ident: _Identity, now: float) -> dict[str, _Track]:
        """Cameras where the identity's track was matched within ``presence_window`` seconds."""
        out = {}
        for cam, lid in ident.active.items():
            tr = self.tracks.get((cam, lid))
            if tr is not None and now - tr.last_time <= self.cfg.presence_window:
                out[cam] = tr
        return out

    # ------------------------------------------------------------------ main step
    def update(self, now: float, outputs: dict[str, TrackOutput],
               embeddings: dict[str, np.ndarray | None]) -> dict[str, TrackOutput]:
        """Resolve identities for one tick.

        Args:
            now: the tick's time in seconds (all cameras share one clock).
            outputs: camera -> that camera's TrackOutput of this tick.
            embeddings: camera -> (N, D) unit-norm embeddings of that frame's detections (rows
                indexed by ``det_index``), or None.
        Returns:
            camera -> TrackOutput with ``global_ids`` filled for every confirmed row.
        """
        seen: set[tuple[str, int]] = set()
        new: list[_Track] = []
        self._tick += 1
        dt = 0.0 if self._last_now is None else min(max(now - self._last_now, 0.0), 1.0)
        self._last_now = now
        for tr in self.tracks.values():
            tr.seen_now = False
        for cam, out in outputs.items():
            emb = embeddings.get(cam)
            matched: list[tuple[_Track, int]] = []
            for i in range(len(out)):
                key = (cam, int(out.track_ids[i]))
                seen.add(key)
                tr = self.tracks.get(key) or self._pending.get(key)
                if tr is None:  # tentative tracks gather appearance before they get an identity
                    tr = _Track(cam, key[1], -1, now, now)
                    self._pending[key] = tr
                if out.confirmed[i] and tr.identity < 0:
                    self._pending.pop(key, None)
                    self.tracks[key] = tr
                    new.append(tr)
                if out.det_index[i] >= 0:
                    matched.append((tr, i))
            if matched:
                self._observe(cam, matched, out, emb, now)
        # Tracks of the cameras updated this tick that are gone: ended (or, tentative, dropped).
        for key in [k for k in self.tracks if k[0] in outputs and k not in seen]:
            self._end(self.tracks.pop(key))
        for key in [k for k in self._pending if k[0] in outputs and k not in seen]:
            del self._pending[key]
        if self.adapt is not None and now - self._last_refresh >= 1.0 and self.adapt.refresh(ADAPT_REFRESH_FRACTION):
            # at most once a second, and once the centres would move by a few percent: the cached gallery is
            # re-transformed then (all of it, so this bounds the slowest ticks)
            self._last_refresh = now
        if self.topology is not None and self.topology.version != self._topology_version:
            self._apply_topology()
        if new:
            self._resolve(new, now)
        self._correct(now, dt, busy=bool(new))
        for tr in self.tracks.values():  # refresh identity appearance and whereabouts
            ident = self.identities[tr.identity]
            if tr.last_time >= ident.last_time:
                ident.last_time, ident.last_camera = tr.last_time, tr.camera
                ident.last_tlbr_px = tr.tlbr_px
                ident.last_position, ident.last_height = tr.position, tr.height
        self._forget(now)
        result = {}
        for cam, out in outputs.items():
            gids = np.array([self.tracks[(cam, int(t))].identity if c else -1
                             for t, c in zip(out.track_ids, out.confirmed, strict=True)], np.int64)
            result[cam] = TrackOutput(out.track_ids, gids, out.tlbr, out.scores, out.det_index, out.confirmed,
                                      out.timestamp)
        return result

    def _end(self, tr: _Track) -> None:
        ident = self.identities.get(tr.identity)
        if ident is None:
            return
        if ident.active.get(tr.camera) == tr.local_id:
            del ident.active[tr.camera]
        m = tr.mean()
        if m is not None and tr.n_emb >= self.cfg.min_embeddings:
            if self.adapt is not None:
                self.adapt.observe(tr.camera, m)  # counts from the next refresh on
            self._set_gallery(ident, [*ident.gallery, m], [*ident.gallery_cams, tr.camera])  # 2 KiB per 512-d summary

    def _forget(self, now: float) -> None:
        cfg = self.cfg
        if now - self._last_forget < 1.0 and len(self.identities) <= cfg.max_identities:
            return  # once a second is enough: ages are checked again when identities are matched
        self._last_forget = now
        stale = [g for g, i in self.identities.items() if not i.active and now - i.last_time > cfg.memory_seconds]
        for g in stale:
            self._delete(g)
        if len(self.identities) > cfg.max_identities:
            idle = sorted((i.last_time, g) for g, i in self.identities.items() if not i.active)
            for _, g in idle[:len(self.identities) - cfg.max_identities]:
                self._delete(g)

    def _candidate_cost(self, tr: _Track, ident: _Identity, now: float, app: float) -> float:
        """Cost of giving ``ident`` to the new track ``tr``; GATED when not allowed."""
        cfg = self.cfg
        if tr.camera in ident.active and ident.active[tr.camera] != tr.local_id:
            holder = self.tracks.get((tr.camera, ident.active[tr.camera]))
            if holder is not None and now - holder.last_time <= cfg.presence_window:
                return GATED  # never twice in one camera
            # Its track here is lost (the local tracker broke it): the new track may take the identity over.
        present = self._present(ident, now)
        present.pop(tr.camera, None)
        geometry_bonus = 0.0
        for cam, other in present.items():
            if not self.overlaps(cam, tr.camera):
                return GATED  # in two non-overlapping places at once
            if tr.position is not None and other.position is not None:
                scale = max(min(tr.height, other.height), 1e-6)
                if np.linalg.norm(tr.position - other.position) / scale > cfg.overlap_distance:
                    return GATED  # overlapping views, but not the same place
                geometry_bonus = cfg.geometry_weight
        gap = max(tr.first_time - ident.last_time, 0.0)
        if not present:
            if gap > cfg.memory_seconds:
                return GATED
            if not self._reachable(tr, ident, gap):
                return GATED
            last = ident.last_camera
            if last == tr.camera:
                if gap > cfg.reentry_max_gap and self._left_view(ident):
                    return GATED  # walked out of the view and came back later: treated as someone new
                # re-entry soon after, or a track the local tracker lost inside the view: reach checked above
            elif self.overlaps(last, tr.camera) and gap <= cfg.overlap_handover:
                pass  # walked out of one view while entering the overlapping one
            elif (last, tr.camera) in self._links:
                lo, hi = self._links[(last, tr.camera)]
                if not lo <= gap <= hi:
                    return GATED
            elif self.has_topology:
                return GATED
        # The longer an identity has been away, the more people could have come since: the appearance
        # bar rises with every doubling of the gap beyond ``gap_scale`` seconds.
        penalty = cfg.gap_penalty * np.log2(1.0 + gap / cfg.gap_scale) if not present else 0.0
        cost = app + penalty - geometry_bonus
        if cost > cfg.max_appearance_distance:
            return GATED
        return cost

    def _left_view(self, ident: _Identity) -> bool:
        """Was the identity last seen at the edge of its camera's view (walked out) rather than lost inside it?

        The view is learned: the hull of every box the camera has shown. At the edge means within half a box
        width of its left or right side, or a quarter of a box height of its top or bottom.
        """
        b, ext = ident.last_tlbr_px, self._extent.get(ident.last_camera)
        if b is None or ext is None:
            return True
        w, h = b[2] - b[0], b[3] - b[1]
        return bool(b[0] - ext[0] < 0.5 * w or ext[2] - b[2] < 0.5 * w
                    or b[1] - ext[1] < 0.25 * h or ext[3] - b[3] < 0.25 * h)

    def _reachable(self, tr: _Track, ident: _Identity, gap: float) -> bool:
        """Could the person have walked from where the identity was last seen to where ``tr`` appeared?

        Compared in the common plane when both cameras have a homography, in pixels when it is the
        same camera; otherwise no constraint. Distances are in person heights.
        """
        cfg = self.cfg
        reach = cfg.max_speed * gap + cfg.reentry_margin
        if ident.last_position is not None and tr.position is not None:
            h = max(ident.last_height, tr.height, 1e-6)
            return float(np.linalg.norm(tr.position - ident.last_position)) / h <= reach
        if ident.last_camera == tr.camera and ident.last_tlbr_px is not None and tr.tlbr_px is not None:
            (fa, ha), (fb, hb) = _foot(tr.tlbr_px), _foot(ident.last_tlbr_px)
            return float(np.linalg.norm(fa - fb)) / max(ha, hb, 1.0) <= reach
        return True

    def _app_matrix(self, new: list[_Track], gids: list[int], raw: bool = False) -> np.ndarray:
        """(len(new), len(gids)) cosine distances from each new track's mean to the closest summary of each
        identity (its gallery and its active tracks' means), in a few products; ``max_appearance_distance``
        (no evidence either way) where either side has none. Through the site adaptation (its calibrated
        distance) unless ``raw``."""
        return self._app_matrices(new, gids, (None if raw else self.adapt,))[0]

    def _app_matrices(self, new: list[_Track], gids: list[int], sides: tuple) -> list[np.ndarray]:
        """``_app_matrix`` for each entry of ``sides`` (a ``SiteAdaptation``, or None for raw features) at the
        cost of one: which summary belongs to which identity is worked out once."""
        no_evidence = self.cfg.max_appearance_distance
        means = [t.mean() for t in new]
        have = [i for i, m in enumerate(means) if m is not None]
        out = [np.full((len(new), len(gids)), no_evidence) for _ in sides]
        if not have:
            return out
        m0 = np.asarray([means[i] for i in have], np.float32)  # (n, D)
        order = np.argsort(np.asarray(gids, np.int64))
        sorted_gids = np.asarray(gids, np.int64)[order]
        last = len(sorted_gids) - 1

        def columns(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Rows whose identity is among ``gids``, and its column."""
            pos = np.searchsorted(sorted_gids, ids)
            ok = (pos < len(sorted_gids)) & (sorted_gids[np.minimum(pos, last)] == ids)
            return np.flatnonzero(ok), order[pos[ok]]

        st = self._store
        gallery = None
        if st.used:
            live = np.flatnonzero(st.owner[:st.used] >= 0)
            k, cols = columns(st.owner[live])
            gallery = (live[k], cols) if len(k) else None
        tracks, _ = self._active_means(None)
        active = None
        if tracks:
            k, cols = columns(np.fromiter((t.identity for t in tracks), np.int64, len(tracks)))
            if len(k):
                # only the track an identity holds in its camera (a lost track left behind does not count)
                idents = self.identities
                held = np.fromiter(((i := idents.get(tracks[r].identity)) is not None
                                    and i.active.get(tracks[r].camera) == tracks[r].local_id for r in k.tolist()),
                                   bool, len(k))
                active = (k[held], cols[held]) if held.any() else None
        for s, adapt in enumerate(sides):
            m = m0 if adapt is None else adapt.embed([new[i].camera for i in have], m0, query=True)  # (n, D [+ 2])
            best = np.full((len(gids), len(have)), -np.inf, np.float32)
            if gallery is not None and st.rows.shape[1] + (2 if adapt is not None else 0) == m.shape[1]:
                rows = st.adapted_rows(adapt) if adapt is not None else st.rows
                np.maximum.at(best, gallery[1], rows[gallery[0]] @ m.T)
            if active is not None:
                mat = self._active_means(adapt)[1]
                np.maximum.at(best, active[1], mat[active[0]] @ m.T)
            out[s][have] = np.where(np.isfinite(best.T), 1.0 - best.T, no_evidence)
        return out

    def _active_means(self, adapt: SiteAdaptation | None) -> tuple[list[_Track], np.ndarray]:
        """Tracks with appearance and their unit-norm means as one matrix (through ``adapt``, gallery side, when
        given). Built once per tick in one vectorised step (resolving, the topology evidence and reviewing compare
        against it several times a tick); the adapted matrix is derived from the raw one."""
        if self._act_tick != self._tick:
            tracks = [t for t in self.tracks.values() if t.n_emb]
            if tracks:
                sums = np.stack([t.emb_sum for t in tracks])
                raw = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
            else:
                raw = np.zeros((0, 0), np.float32)
            self._act_tick, self._act_raw, self._act_adapted = self._tick, (tracks, raw), {}
        tracks, raw = self._act_raw
        if adapt is None or not tracks:
            return tracks, raw
        hit = self._act_adapted.get(adapt.version)
        if hit is None:
            hit = self._act_adapted[adapt.version] = adapt.embed([t.camera for t in tracks], raw, query=False)
        return tracks, hit

    def _handover_evidence(self, new: list[_Track], gids: list[int], app: np.ndarray, now: float) -> None:
        """Feed the learned topology with the confident, unambiguous hand-overs among the new tracks.

        ``app`` (len(new), len(gids)) are raw appearance distances before any topology gate, so what is
        learned does not depend on what was written or learned before. A new track counts when one
        identity held in another camera is within ``topology_max_distance`` and every other candidate
        at least ``topology_margin`` farther; identities held by a live track in the new track's own
        camera, or last seen there, are not candidates (re-entry says nothing about topology).
        """
        cfg = self.cfg
        if app.shape[1] == 0:
            return
        for i in np.flatnonzero(app.min(axis=1) <= cfg.topology_max_distance):
            tr = new[i]
            valid = []  # the two closest candidates
            for j in np.argsort(app[i]):
                ident = self.identities[gids[j]]
                if tr.camera not in ident.active and ident.last_camera != tr.camera:
                    valid.append(j)
                    if len(valid) == 2:
                        break
            if not valid or app[i, valid[0]] > cfg.topology_max_distance:
                continue
            if len(valid) > 1 and app[i, valid[1]] - app[i, valid[0]] < cfg.topology_margin:
                continue  # ambiguous
            ident = self.identities[gids[valid[0]]]
            present = self._present(ident, now)
            present.pop(tr.camera, None)
            if present:
                for cam in sorted(present):
                    self.topology.record(cam, tr.camera, 0.0)
            elif ident.last_camera:
                self.topology.record(ident.last_camera, tr.camera, max(tr.first_time - ident.last_time, 1e-3))

    def _resolve(self, new: list[_Track], now: float) -> None:
        gids = list(self.identities)
        if gids:
            cfg = self.cfg
            if self.topology is not None and self.adapt is not None:
                app, raw = self._app_matrices(new, gids, (self.adapt, None))
            else:
                app = raw = self._app_matrix(new, gids)
            if self.topology is not None:
                # Judged on raw features: the learned topology came out cleaner on PETS09-MC than with adapted
                # ones (no look-alike cam1-cam3 link, tighter travel windows; bench/mc_replay.py).
                self._handover_evidence(new, gids, raw, now)
            # Appearance bounds the cost from below (penalties >= 0, bonus <= geometry_weight): only the
            # candidates that could pass get the full check.
            cost = np.full(app.shape, GATED)
            for i, j in zip(*np.nonzero(app - cfg.geometry_weight <= cfg.max_appearance_distance), strict=True):
                cost[i, j] = self._candidate_cost(new[i], self.identities[gids[j]], now, float(app[i, j]))
            keep = np.flatnonzero((cost < GATED).any(axis=0))  # only identities some new track may take
            matches, unmatched, _ = linear_assignment(cost[:, keep], self.cfg.match_threshold)
            matches = np.column_stack([matches[:, 0], keep[matches[:, 1]]]) if len(matches) else matches
        else:
            matches, unmatched = np.zeros((0, 2), np.int64), np.arange(len(new))
        for r, c in matches:
            tr, ident = new[r], self.identities[gids[c]]
            holder = self.tracks.get((tr.camera, ident.active.get(tr.camera, -1)))
            if holder is not None and holder is not tr:
                # Taken over from a lost track in the same camera; should that track come back, it is
                # someone else (an identity is never shown twice in one camera).
                fresh = self._new_identity()
                holder.identity = fresh.gid
                fresh.active[tr.camera] = holder.local_id
                fresh.last_time, fresh.last_camera = holder.last_time, holder.camera
            tr.identity, tr.linked = ident.gid, True
            ident.active[tr.camera] = tr.local_id
        for r in unmatched:
            ident = self._new_identity()
            new[r].identity = ident.gid
            ident.active[new[r].camera] = new[r].local_id
            ident.last_time = new[r].last_time
            ident.last_camera = new[r].camera

    # ------------------------------------------------------------------ corrections
    def _correct(self, now: float, dt: float, busy: bool = False) -> None:
        """Merge identities that later evidence shows are one person, split those that hold two.

        - Overlapping views: two tracks with different identities standing at the same place in
          the common plane for ``correction_seconds`` are one person (merge); one identity at two
          different places for that long is two people (the newer track is split off).
        - Appearance, once a track has ``review_embeddings`` embeddings: a newcomer whose summary
          now clearly matches an identity that may have become it (all of ``_candidate_cost``'s
          gates) is merged into it; a linked track whose summary is far from everything else its
          identity holds is split off.
        Each change is one event in ``events``. Reviews are spread over ticks to bound the work of one: at most
        one newcomer (the costly kind: compared with every identity) per tick, and none in a tick that resolved
        new tracks (``busy``); the others wait for the next ticks.
        """
        cfg = self.cfg
        if self._overlap and self._h:
            self._correct_overlaps(now, dt)
        budget = 0 if busy else 1  # newcomer reviews left this tick
        for tr in list(self.tracks.values()):
            if tr.reviewed or tr.n_emb < cfg.review_embeddings:
                continue
            if not tr.linked:
                if budget <= 0:
                    continue
                budget -= 1
            tr.reviewed = True
            ident = self.identities.get(tr.identity)
            if ident is None:
                continue
            if tr.linked:
                gallery = list(ident.gallery)
                if self.adapt is not None and gallery:
                    gallery = list(self.adapt.embed(ident.gallery_cams, np.asarray(gallery, np.float32), query=False))
                others = gallery + [o.adapted_mean(self.adapt, query=False) for o in self._active_tracks(ident)
                                    if o is not tr]
                others = [m for m in others if m is not None]
                mine = tr.adapted_mean(self.adapt, query=True)
                if others and 1.0 - float(np.max(np.asarray(others) @ mine)) > cfg.max_appearance_distance:
                    self._split(tr, now, "appearance differs from the identity")
                continue
            if ident.gallery or len(ident.active) > 1:
                continue  # not a newcomer any more
            best, best_cost = None, cfg.match_threshold - cfg.review_margin
            gids = [g for g in self.identities if g != ident.gid]
            app = self._app_matrix([tr], gids)[0] if gids else np.zeros(0)
            for j in np.flatnonzero(app - cfg.geometry_weight < best_cost):
                other = self.identities[gids[j]]
                if any(c in ident.active for c in other.active):
                    continue
                c = self._candidate_cost(tr, other, now, float(app[j]))
                if c < best_cost:
                    best, best_cost = other, c
            if best is not None:
                self._merge(best.gid, ident.gid, now, "appearance after more evidence")

    def _correct_overlaps(self, now: float, dt: float) -> None:
        cfg = self.cfg
        by_cam: dict[str, list[_Track]] = {}
        for t in self.tracks.values():
            if t.seen_now and t.position is not None:
                by_cam.setdefault(t.camera, []).append(t)
        for ca, cb in self._overlap_pairs:
            ta, tb = by_cam.get(ca), by_cam.get(cb)
            if not ta or not tb:
                continue
            pa = np.array([t.position for t in ta])
            pb = np.array([t.position for t in tb])
            ha = np.array([t.height for t in ta])
            hb = np.array([t.height for t in tb])
            dist = np.linalg.norm(pa[:, None] - pb[None], axis=2) / np.maximum(np.minimum(ha[:, None], hb[None]), 1e-6)
            near = dist <= cfg.overlap_distance
            same = np.array([t.identity for t in ta])[:, None] == np.array([t.identity for t in tb])[None]
            for i, j in zip(*np.nonzero(same), strict=True):
                a, b = ta[i], tb[j]
                if near[i, j]:
                    a.apart = b.apart = 0.0
                    continue
                newer = b if b.first_time >= a.first_time else a
                newer.apart += dt
                if newer.apart >= cfg.correction_seconds:
                    self._split(newer, now, "two places at once in overlapping views")
            close = near & ~same
            for i, a in enumerate(ta):  # forget pairs no longer together
                if a.together:
                    keep = {(tb[j].camera, tb[j].local_id) for j in np.flatnonzero(close[i])}
                    a.together = {k: v for k, v in a.together.items() if k in keep or k[0] != cb}
            for i, j in zip(*np.nonzero(close), strict=True):
                a, b = ta[i], tb[j]
                if a.identity == b.identity:
                    continue  # merged earlier this tick
                kb = (b.camera, b.local_id)
                a.together[kb] = a.together.get(kb, 0.0) + dt
                if a.together[kb] >= cfg.correction_seconds:
                    self._merge(a.identity, b.identity, now, "same place in overlapping views")

    def _active_tracks(self, ident: _Identity) -> list[_Track]:
        return [t for t in (self.tracks.get((c, lid)) for c, lid in ident.active.items()) if t is not None]

    def _merge(self, a: int, b: int, now: float, reason: str) -> None:
        """Merge identities ``a`` and ``b`` into the older one (the smaller id), when allowed."""
        keep, drop = self.identities.get(min(a, b)), self.identities.get(max(a, b))
        if keep is None or drop is None or keep is drop:
            return
        for cam in drop.active:
            if cam in keep.active:
                return  # both held in one camera: not one person
        for ca in keep.active:
            for cb in drop.active:
                if not self.overlaps(ca, cb):
                    return  # at once in two cameras that do not overlap
        for tr in self._active_tracks(drop):
            tr.identity = keep.gid
        keep.active.update(drop.active)
        self._set_gallery(keep, keep.gallery + drop.gallery, keep.gallery_cams + drop.gallery_cams)
        if drop.last_time > keep.last_time:
            keep.last_time, keep.last_camera = drop.last_time, drop.last_camera
            keep.last_tlbr_px = drop.last_tlbr_px
            keep.last_position, keep.last_height = drop.last_position, drop.last_height
        self._delete(drop.gid)
        self.events.append({"type": "identity_merged", "time": round(float(now), 6), "identity": keep.gid,
                            "merged": drop.gid, "cameras": sorted(keep.active), "reason": reason})

    def _split(self, tr: _Track, now: float, reason: str) -> None:
        """Give track ``tr`` a new identity of its own."""
        old = self.identities.get(tr.identity)
        fresh = self._new_identity()
        if old is not None and old.active.get(tr.camera) == tr.local_id:
            del old.active[tr.camera]
        tr.identity, tr.linked, tr.apart = fresh.gid, False, 0.0
        tr.together.clear()
        fresh.active[tr.camera] = tr.local_id
        fresh.last_time, fresh.last_camera = tr.last_time, tr.camera
        self.events.append({"type": "identity_split", "time": round(float(now), 6),
                            "identity": old.gid if old is not None else None, "new_identity": fresh.gid,
                            "camera": tr.camera, "track_id": tr.local_id, "reason": reason})

    # ------------------------------------------------------------------ persistence
    def export_state(self, now: float) -> dict:
        """Everything needed to restore the registry after a restart, as plain data.

        Local tracks do not survive a restart (the per-camera trackers start over), so active
        tracks are folded into their identity's gallery in the returned copy (the registry itself
        is not changed). Times are exported as ages in seconds before ``now``.

        Returns:
            ``{"version": 2, "next_id": int, "identities": [{"gid": int, "age": float,
            "last_camera": str, "gallery": (K, D) float32 array, "gallery_cameras": [K str]}, ...],
            "site": {"adaptation": SiteAdaptation.export_state() or None, "topology":
            LearnedTopology.export_state() or None}}``; identities with no appearance summary are
            included with an empty (0, 0) gallery (their id stays reserved).
        """
        extra: dict[int, list] = {}
        for tr in self.tracks.values():
            m = tr.mean()
            if m is not None and tr.n_emb >= self.cfg.min_embeddings:
                extra.setdefault(tr.identity, []).append((m.astype(np.float32), tr.camera))
        idents = []
        for gid, ident in self.identities.items():
            more = extra.get(gid, [])
            gallery = (list(ident.gallery) + [m for m, _ in more])[-self.cfg.gallery_size:]
            cams = (list(ident.gallery_cams) + [c for _, c in more])[-self.cfg.gallery_size:]
            arr = np.asarray(gallery, np.float32) if gallery else np.zeros((0, 0), np.float32)
            idents.append({"gid": gid, "age": max(0.0, float(now - ident.last_time)),
                           "last_camera": ident.last_camera, "gallery": arr, "gallery_cameras": cams})
        site = {"adaptation": self.adapt.export_state() if self.adapt is not None else None,
                "topology": self.topology.export_state() if self.topology is not None else None}
        return {"version": 2, "next_id": self._next_id, "identities": idents, "site": site}

    def import_state(self, state: dict, now: float = 0.0) -> int:
        """Restore identities saved by ``export_state``; returns how many were restored.

        ``now`` is the registry's clock at restore time; each identity's last sighting is set
        ``age`` seconds before it (add the time the process was down to ``age`` before calling).
        Identities older than ``memory_seconds`` are dropped; ids already used here are kept. Version 1
        states (no cameras per summary, no site statistics) are read too.
        """
        if int(state.get("version", 0)) not in (1, 2):
            raise ValueError(f"unsupported registry state version {state.get('version')!r}")
        site = state.get("site") or {}
        if self.adapt is not None and site.get("adaptation"):
            self.adapt.import_state(site["adaptation"])
        if self.topology is not None and site.get("topology"):
            self.topology.import_state(site["topology"])
            self._apply_topology()
        self._next_id = max(self._next_id, int(state["next_id"]))
        n = 0
        for rec in state["identities"]:
            age = float(rec["age"])
            gid = int(rec["gid"])
            if age > self.cfg.memory_seconds or gid in self.identities:
                continue
            ident = _Identity(gid)
            gallery = np.asarray(rec["gallery"], np.float32)
            if gallery.size:
                cams = list(rec.get("gallery_cameras") or [])
                cams = cams if len(cams) == len(gallery) else [""] * len(gallery)
                self._set_gallery(ident, list(gallery.reshape(len(gallery), -1)), cams)
            ident.last_time = now - age
            ident.last_camera = str(rec.get("last_camera", ""))
            self.identities[gid] = ident
            self._next_id = max(self._next_id, gid + 1)
            n += 1
        return n

    def purge(self, gid: int) -> bool:
        """Forget one identity now (its appearance summaries included); its tracks get new identities.

        Returns False when no such identity is held.
        """
        ident = self._delete(int(gid))
        if ident is None:
            return False
        for cam, lid in list(ident.active.items()):
            tr = self.tracks.get((cam, lid))
            if tr is not None:
                fresh = self._new_identity()
                tr.identity = fresh.gid
                tr.emb_sum, tr.n_emb, tr._mean_n = None, 0, -1
                fresh.active[cam] = lid
                fresh.last_time, fresh.last_camera = tr.last_time, cam
        return True

    @property
    def next_id(self) -> int:
        """The global id the next new identity gets."""
        return self._next_id

    def reserve_ids(self, next_id: int) -> None:
        """Never give out an id below ``next_id`` (ids handed out before a restart, kept elsewhere)."""
        self._next_id = max(self._next_id, int(next_id))

    def drain_events(self) -> list[dict]:
        """Identity corrections since the last call (merge/split), oldest first; see ``events``."""
        out, self.events = self.events, []
        return out

    def stats(self) -> dict:
        return {"identities": len(self.identities), "tracks": len(self.tracks),
                "gallery_embeddings": sum(len(i.gallery) for i in self.identities.values())}
