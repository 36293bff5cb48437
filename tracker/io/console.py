"""The identity console's state: who the site has seen, where and when, with a thumbnail per visit.

``IdentityConsole`` is fed by ``tracker.io.sinks.console.ConsoleOutput`` on the sinks' frame thread
(sightings and thumbnails, a bounded number of JPEG encodings per frame) and by the registry's
corrections (``apply_events``: merges and splits); the live view's server thread reads it
(``tracker.io.console_web``). Every method takes one lock for a short, bounded time.

Per identity (global id): the visits (one per stretch of presence in one camera: camera, first and
last time, sightings, the best thumbnail of that stretch and the ground-plane path where a
homography is configured), the best thumbnail overall, and how many sightings in all. Times are the
sources' timestamps in seconds (``now`` is the latest one seen); ``seen_at`` is the wall clock.

Thumbnails are biometric data. They are kept in memory only, unless the registry is stored
(``multicam.store``): then in ``<store>.console`` beside it (SQLite, owner-only), with the same
retention (``multicam.memory_seconds`` since last seen) and removed by ``run.py registry purge``,
which also tells a running console (the ``console_purged`` table, read every second) so the card
leaves open pages at once.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VISIT_GAP_S = 3.0  # a person unseen in a camera for longer starts a new visit there
VISIBLE_S = 1.0  # seen within this many seconds of the latest frame: "visible now"
MAX_VISITS = 64  # visits kept per identity (the oldest are folded into their successor)
PATH_STEP_S = 0.5  # ground-plane path: one point per this many seconds per visit
MAX_PATH = 240  # points kept per visit
FEED_LEN = 2000  # corrections and purges kept for pages that reconnect
IMPROVE = 1.15  # a new crop replaces a visit's thumbnail when its quality is this much higher
POLL_S = 1.0  # how often purges from `run.py registry purge` are picked up
SAVE_S = 5.0  # how often changed identities are written to the console store


def console_store_path(registry_store: Path | str | None) -> Path | None:
    """Where thumbnails are kept: beside the registry store (``<store>.console``), or nowhere (None)."""
    return None if registry_store is None else Path(str(registry_store) + ".console")


@dataclass
class Visit:
    camera: str
    t0: float
    t1: float
    n: int = 0
    thumb: bytes | None = None
    quality: float = 0.0
    path: list = field(default_factory=list)  # [[x, y], ...] on the common plane
    emb: np.ndarray | None = None  # ReID embedding of ``thumb`` (search; computed on demand)

    def as_json(self, idx: int) -> dict:
        return {"index": idx, "camera": self.camera, "t0": round(self.t0, 3), "t1": round(self.t1, 3),
                "sightings": self.n, "thumb": self.thumb is not None, "path": self.path}


@dataclass
class Identity:
    gid: int
    first: float
    last: float
    last_camera: str
    seen_at: float
    sightings: int = 0
    visits: list[Visit] = field(default_factory=list)
    best: int = -1  # index of the visit holding the best thumbnail
    version: int = 0

    def summary(self, now: float) -> dict:
        return {"gid": self.gid, "first": round(self.first, 3), "last": round(self.last, 3),
                "last_camera": self.last_camera, "visible": now - self.last <= VISIBLE_S,
                "sightings": self.sightings, "cameras": [[v.camera, round(v.t0, 3), round(v.t1, 3)]
                                                          for v in self.visits],
                "thumb": self.best >= 0, "version": self.version}


class IdentityConsole:
    """Identity bookkeeping for the console (thread-safe).

    Args:
        camera_ids: the cameras, in display order.
        site: the ``MulticamConfig`` (overlaps, links, homographies) drawn on the site map, or None.
        store: SQLite file for thumbnails (``console_store_path``), or None to keep them in memory only.
        retention: seconds after last being seen that an identity is forgotten (``multicam.memory_seconds``).
        max_identities: most identities kept; the longest unseen go first.
        encoder: the ReID encoder for search by photo (``embed(frames, boxes)``), or None.
    """

    def __init__(self, camera_ids, site=None, store: Path | None = None, retention: float = 300.0,
                 max_identities: int = 2000, encoder=None):
        self.camera_ids = list(camera_ids)
        self.site = site
        self.store = Path(store) if store is not None else None
        self.retention = float(retention)
        self.max_identities = int(max_identities)
        self.encoder = encoder
        self.registry = None  # set by the pipeline: read for learned links (optional accessor)
        self.frame_sizes: dict[str, tuple[int, int]] = {}
        self.now = 0.0
        self._lock = threading.Lock()
        self._search_lock = threading.Lock()
        self._ids: dict[int, Identity] = {}
        self._alias: dict[int, int] = {}  # merged id -> the id it lives on in
        self._purged: set[int] = set()
        self._version = 0
        self._feed: collections.deque = collections.deque(maxlen=FEED_LEN)  # (version, event)
        self._dirty: set[int] = set()
        self._deleted: set[int] = set()
        self._homog = {}
        for h in getattr(site, "homographies", ()) or ():
            self._homog[h.camera] = np.asarray(h.matrix, np.float64).reshape(3, 3)
        from tracker.io.liveview import Pulse

        self.pulse = Pulse()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Load saved thumbnails (when stored) and start the purge/save thread."""
        if self.store is not None:
            try:
                self._load()
            except Exception as exc:  # noqa: BLE001 - the console must never stop the tracker
                log.warning("identity console: saved thumbnails in %s not read (%s); starting empty", self.store, exc)
        self._thread = threading.Thread(target=self._loop, name="mctrack-console", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self._save()

    def _loop(self) -> None:
        next_save = time.monotonic() + SAVE_S
        while not self._stop.wait(POLL_S):
            try:
                self._poll_purges()
                if time.monotonic() >= next_save:
                    next_save = time.monotonic() + SAVE_S
                    self._save()
            except Exception as exc:  # noqa: BLE001 - logged, retried at the next round
                log.warning("identity console: store %s: %s", self.store, exc)

    # -- fed by the frame thread -----------------------------------------------------------------

    def observe(self, camera: str, t: float, gids: np.ndarray, quality: np.ndarray,
                feet_xy: np.ndarray | None = None, frame_size: tuple[int, int] | None = None) -> list[int]:
        """Record one frame's sightings.

        Args:
            camera: the camera.
            t: the frame's timestamp, seconds.
            gids: (N,) int64 global ids seen in the frame (matched confirmed tracks).
            quality: (N,) float crop quality (``sinks.console.crop_quality``); higher is a better thumbnail.
            feet_xy: (N, 2) float image pixels of the box bottom centres, or None.
            frame_size: (width, height) of the frame.
        Returns:
            Indices into ``gids`` whose crop would improve their visit's thumbnail, best first.
        """
        wall = time.time()
        want = []
        with self._lock:
            self.now = max(self.now, float(t))
            if frame_size is not None:
                self.frame_sizes[camera] = frame_size
            plane = self._to_plane(camera, feet_xy) if feet_xy is not None else None
            for i, g in enumerate(gids.tolist()):
                g = self._alias.get(g, g)
                if g in self._purged:
                    continue
                ident = self._ids.get(g)
                if ident is None:
                    ident = self._ids[g] = Identity(g, t, t, camera, wall)
                    self._trim()
                visit = self._visit(ident, camera, t)
                visit.n += 1
                ident.sightings += 1
                ident.last = max(ident.last, t)
                ident.last_camera = camera
                ident.seen_at = wall
                if plane is not None and (not visit.path or t - visit.path[-1][2] >= PATH_STEP_S):
                    visit.path.append([round(float(plane[i, 0]), 1), round(float(plane[i, 1]), 1), round(t, 2)])
                    del visit.path[:-MAX_PATH]
                if visit.thumb is None or quality[i] > visit.quality * IMPROVE:
                    want.append(i)
                self._touch(ident)
        want.sort(key=lambda i: -float(quality[i]))
        self.pulse.fire()
        return want

    def set_thumbnail(self, camera: str, gid: int, jpeg: bytes, quality: float) -> None:
        """Give the current visit of ``gid`` in ``camera`` a new thumbnail (JPEG bytes) of ``quality``."""
        with self._lock:
            gid = self._alias.get(gid, gid)
            ident = self._ids.get(gid)
            if ident is None or gid in self._purged:
                return
            for idx in range(len(ident.visits) - 1, -1, -1):
                v = ident.visits[idx]
                if v.camera == camera:
                    if v.thumb is None or quality > v.quality:
                        v.thumb, v.quality, v.emb = jpeg, float(quality), None
                        if ident.best < 0 or quality > ident.visits[ident.best].quality:
                            ident.best = idx
                        self._touch(ident)
                    break

    def apply_events(self, events: list[dict]) -> None:
        """The registry's corrections (``identity_merged`` / ``identity_split``), as they happen."""
        with self._lock:
            for e in events:
                kind = e.get("type")
                if kind == "identity_merged":
                    keep, drop = int(e["identity"]), int(e["merged"])
                    self._merge(self._alias.get(keep, keep), drop)
                    self._event({"type": "merged", "gid": keep, "merged": drop, "time": e.get("time"),
                                 "reason": e.get("reason")})
                elif kind == "identity_split":
                    self._event({"type": "split", "gid": e.get("identity"), "new": e.get("new_identity"),
                                 "camera": e.get("camera"), "time": e.get("time"), "reason": e.get("reason")})
        self.pulse.fire()

    def forget(self, gid: int) -> bool:
        """Remove one identity (purged from the registry): memory, store and open pages. False if unknown."""
        gid = int(gid)
        with self._lock:
            self._purged.add(gid)
            found = self._ids.pop(gid, None) is not None
            for k in [k for k, v in self._alias.items() if v == gid]:
                del self._alias[k]
            self._dirty.discard(gid)
            self._deleted.add(gid)
            self._event({"type": "purged", "gid": gid})
        self.pulse.fire()
        if self.store is not None:
            try:
                self._save()
            except Exception as exc:  # noqa: BLE001
                log.warning("identity console: store %s: %s", self.store, exc)
        return found

    # -- internals (lock held) -------------------------------------------------------------------

    def _to_plane(self, camera: str, xy: np.ndarray) -> np.ndarray | None:
        h = self._homog.get(camera)
        if h is None or len(xy) == 0:
            return None
        p = np.c_[xy, np.ones(len(xy))] @ h.T
        return p[:, :2] / p[:, 2:3]

    def _visit(self, ident: Identity, camera: str, t: float) -> Visit:
        for v in reversed(ident.visits):
            if v.camera == camera:
                if t - v.t1 <= VISIT_GAP_S:
                    v.t1 = max(v.t1, t)
                    return v
                break
        ident.visits.append(Visit(camera, t, t))
        if len(ident.visits) > MAX_VISITS:
            del ident.visits[0]
            with_thumb = [k for k, v in enumerate(ident.visits) if v.thumb is not None]
            ident.best = max(with_thumb, key=lambda k: ident.visits[k].quality, default=-1)
        return ident.visits[-1]

    def _touch(self, ident: Identity) -> None:
        self._version += 1
        ident.version = self._version
        self._dirty.add(ident.gid)

    def _event(self, e: dict) -> None:
        self._version += 1
        self._feed.append((self._version, e))

    def _merge(self, keep: int, drop: int) -> None:
        if keep == drop:
            return
        a, b = self._ids.get(keep), self._ids.pop(drop, None)
        self._alias[drop] = keep
        for k, v in list(self._alias.items()):
            if v == drop:
                self._alias[k] = keep
        self._deleted.add(drop)
        self._dirty.discard(drop)
        if b is None:
            return
        if a is None:
            b.gid = keep
            self._ids[keep] = b
            self._touch(b)
            return
        best = a.visits[a.best] if a.best >= 0 else None
        other = b.visits[b.best] if b.best >= 0 else None
        a.visits = sorted(a.visits + b.visits, key=lambda v: v.t0)[-MAX_VISITS:]
        pick = max((v for v in (best, other) if v is not None and v in a.visits), key=lambda v: v.quality,
                   default=None)
        a.best = a.visits.index(pick) if pick is not None else -1
        a.first, a.last = min(a.first, b.first), max(a.last, b.last)
        if b.last > a.last - 1e-9 and b.last >= a.last:
            a.last_camera = b.last_camera
        a.sightings += b.sightings
        a.seen_at = max(a.seen_at, b.seen_at)
        self._touch(a)

    def _trim(self) -> None:
        cutoff = time.time() - self.retention
        old = [g for g, i in self._ids.items() if i.seen_at < cutoff]
        if len(self._ids) - len(old) > self.max_identities:
            by_age = sorted(self._ids.values(), key=lambda i: i.last)
            old += [i.gid for i in by_age[:len(self._ids) - len(old) - self.max_identities]]
        for g in old:
            if self._ids.pop(g, None) is not None:
                self._deleted.add(g)
                self._event({"type": "expired", "gid": g})

    # -- read by the server ----------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def list(self, camera: str | None = None, within: float | None = None, offset: int = 0,
             limit: int = 50) -> dict:
        """Identities newest activity first: ``{"now", "total", "version", "identities": [summary]}``.

        ``camera``: only those who visited it; ``within``: only those seen in the last so many seconds.
        """
        with self._lock:
            now = self.now
            sel = [i for i in self._ids.values()
                   if (camera is None or any(v.camera == camera for v in i.visits))
                   and (within is None or now - i.last <= within)]
            sel.sort(key=lambda i: (-i.last, -i.gid))
            return {"now": now, "total": len(sel), "version": self._version,
                    "identities": [i.summary(now) for i in sel[offset:offset + limit]]}

    def changes(self, since: int) -> dict:
        """What changed after version ``since``: updated summaries and events (merge, split, purge)."""
        with self._lock:
            now = self.now
            oldest = self._feed[0][0] if self._feed else self._version + 1
            events = [e for v, e in self._feed if v > since]
            reset = bool(self._feed) and since < oldest - 1 and len(self._feed) == self._feed.maxlen
            updated = [i.summary(now) for i in self._ids.values() if i.version > since]
            return {"version": self._version, "now": now, "updated": updated, "events": events, "reset": reset}

    def detail(self, gid: int) -> dict | None:
        with self._lock:
            gid = self._alias.get(gid, gid)
            ident = self._ids.get(gid)
            if ident is None:
                return None
            out = ident.summary(self.now)
            out["visits"] = [v.as_json(k) for k, v in enumerate(ident.visits)]
            out["best"] = ident.best
            out["now"] = self.now
            return out

    def thumbnail(self, gid: int, idx: int | None) -> bytes | None:
        """JPEG of visit ``idx`` (None: the best one) of ``gid``, or None."""
        with self._lock:
            ident = self._ids.get(self._alias.get(gid, gid))
            if ident is None:
                return None
            k = ident.best if idx is None else idx
            if not 0 <= k < len(ident.visits):
                return None
            return ident.visits[k].thumb

    def site_map(self) -> dict:
        """Cameras (frame size, field of view on the common plane), written links and learned ones."""
        site = self.site
        cams = []
        with self._lock:
            sizes = dict(self.frame_sizes)
        for cam in self.camera_ids:
            fov = None
            size = sizes.get(cam)
            if size is not None and cam in self._homog:
                w, h = size
                corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
                fov = np.round(self._to_plane(cam, corners), 1).tolist()
            cams.append({"id": cam, "size": list(size) if size else None, "fov": fov})
        links = []
        for a, b in getattr(site, "overlaps", ()) or ():
            links.append({"a": a, "b": b, "kind": "overlap"})
        for link in getattr(site, "links", ()) or ():
            links.append({"a": link.a, "b": link.b, "kind": "link", "min_travel": link.min_travel,
                          "max_travel": link.max_travel, "bidirectional": link.bidirectional})
        learned = []
        accessor = getattr(self.registry, "learned_topology", None)  # #12: lights up when the registry has it
        try:
            got = accessor() if callable(accessor) else accessor
            for item in got or ():
                d = dict(item) if isinstance(item, dict) else dict(vars(item))
                learned.append({k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
                                for k, v in d.items()})
        except Exception as exc:  # noqa: BLE001 - optional: never break the page
            log.debug("learned topology not readable: %s", exc)
        return {"cameras": cams, "links": links, "learned": learned, "plane": bool(self._homog)}

    def search(self, image_bgr: np.ndarray, limit: int = 20) -> list[dict]:
        """Identities ranked by cosine similarity of ReID features to a photo or crop of one person.

        The photo is embedded whole, like ``run.py similarity`` embeds a crop (same encoder, unit-norm
        features, similarity = dot product); each identity scores its best match over its visit thumbnails.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
        Raises:
            RuntimeError: no ReID encoder (``reid.enabled: false``).
        """
        if self.encoder is None:
            raise RuntimeError("search needs the ReID encoder (reid.enabled is false)")
        import cv2

        with self._lock:
            todo = [(i.gid, k, v) for i in self._ids.values() for k, v in enumerate(i.visits)
                    if v.thumb is not None and v.emb is None]
        with self._search_lock:  # one search embeds at a time; thumbnails' features are cached
            crops = []
            for _, _, v in todo:
                img = cv2.imdecode(np.frombuffer(v.thumb, np.uint8), cv2.IMREAD_COLOR)
                crops.append(img)
            feats = self._embed([image_bgr, *crops])
            q = feats[0]
            for (_, _, v), f in zip(todo, feats[1:], strict=True):
                v.emb = f
        with self._lock:
            now = self.now
            hits = []
            for ident in self._ids.values():
                scores = [(float(q @ v.emb), k) for k, v in enumerate(ident.visits) if v.emb is not None]
                if not scores:
                    continue
                s, k = max(scores)
                hits.append({"gid": ident.gid, "score": round(s, 4), "visit": k, "last_camera": ident.last_camera,
                             "last": round(ident.last, 3), "visible": now - ident.last <= VISIBLE_S})
        hits.sort(key=lambda h: -h["score"])
        return hits[:limit]

    def _embed(self, images: list[np.ndarray]) -> np.ndarray:
        boxes = [np.array([[0, 0, im.shape[1], im.shape[0]]], np.float32) for im in images]
        out = self.encoder.embed(images, boxes)
        return np.concatenate([np.asarray(e, np.float32).reshape(1, -1) for e in out])

    # -- the store beside the registry's -----------------------------------------------------------

    def _poll_purges(self) -> None:
        if self.store is None or not self.store.exists():
            return
        from tracker.io.console_store import take_purged

        for gid in take_purged(self.store):
            self.forget(gid)

    def _save(self) -> None:
        if self.store is None:
            return
        from tracker.io.console_store import save_identities

        with self._lock:
            if not self._dirty and not self._deleted:
                return
            rows = []
            for g in self._dirty:
                ident = self._ids.get(g)
                if ident is None:
                    continue
                data = {"first": ident.first, "last": ident.last, "last_camera": ident.last_camera,
                        "sightings": ident.sightings, "best": ident.best,
                        "visits": [{"camera": v.camera, "t0": v.t0, "t1": v.t1, "n": v.n, "quality": v.quality,
                                    "path": v.path} for v in ident.visits]}
                rows.append((g, ident.seen_at, json.dumps(data), [v.thumb for v in ident.visits]))
            deleted = set(self._deleted)
            self._dirty.clear()
            self._deleted.clear()
        try:
            save_identities(self.store, rows, deleted, time.time() - self.retention)
        except Exception:
            with self._lock:  # try again next round
                self._dirty.update(r[0] for r in rows)
                self._deleted.update(deleted)
            raise

    def _load(self) -> None:
        from tracker.io.console_store import load_identities

        if not self.store.exists():
            return
        n = 0
        for gid, seen_at, data, thumbs in load_identities(self.store, time.time() - self.retention):
            d = json.loads(data)
            # Source times start again at 0: shift the saved ones so that "last seen" is its age now.
            off = -(time.time() - seen_at) - d["last"]
            ident = Identity(gid, d["first"] + off, d["last"] + off, d["last_camera"], seen_at, d["sightings"],
                             best=d["best"])
            for v, jpeg in zip(d["visits"], thumbs, strict=False):
                path = [[x, y, t + off] for x, y, t in v["path"]]
                ident.visits.append(Visit(v["camera"], v["t0"] + off, v["t1"] + off, v["n"], jpeg, v["quality"],
                                          path))
            self._ids[gid] = ident
            self._touch(ident)
            n += 1
        self._dirty.clear()
        if n:
            log.info("identity console: %d identities with thumbnails restored from %s", n, self.store)
