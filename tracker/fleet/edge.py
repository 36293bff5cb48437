"""The edge side of a fleet: the live pipeline's hook (``Pipeline`` with ``fleet.enabled``).

Per tick and camera the edge publishes what the identity registry consumes in a one-box run
(``schema.encode_obs``: every track row with its box, detection index and confirmed flag, and the
embeddings of the detections the rows point at), and applies the global ids the identity service
sent back before the sinks see the tick. Until a track's id arrives it shows its local id (events
carry ``"provisional": true``).

Nothing here blocks the loop: messages go into a bounded ``Outbox`` drained by a sender thread;
a receiver thread reads this edge's id stream. When the broker is unreachable tracking goes on
with local ids, the outbox keeps the newest messages (count and byte bounds, the oldest dropped
and counted) and they are re-sent in order when the broker is back.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time

import numpy as np

from tracker.core.types import TrackOutput
from tracker.fleet import schema
from tracker.fleet.outbox import Outbox
from tracker.fleet.transport import Transport, TransportDown, open_transport

log = logging.getLogger(__name__)
_BATCH = 500  # messages per publish round trip
_RETRY_S = 0.5
_MAX_IDS = 100_000  # global ids remembered per edge (tracks that ended are forgotten)


class FleetEdge:
    """Publishes one edge's tracks and applies the identity service's global ids.

    Args:
        cfg: the ``fleet`` section.
        cameras: this edge's camera ids.
        transport: a ready ``Transport`` (tests); default: the one ``cfg.broker`` names.

    Raises:
        UserError: the broker refuses the credentials (checked at once when it is reachable).
    """

    def __init__(self, cfg, cameras: list[str], transport: Transport | None = None):
        self.cfg = cfg
        self.cameras = list(cameras)
        self.node = cfg.node or socket.gethostname().split(".")[0] or "edge"
        self.session = f"{int(time.time() * 1000):x}-{os.getpid()}"
        self.transport = transport or open_transport(cfg)
        self.obs_stream = schema.obs_stream(cfg.site)
        self.ids_stream = schema.ids_stream(cfg.site, self.node)
        self.outbox = Outbox(cfg.outbox_messages, int(cfg.outbox_mb * 1e6))
        self.epoch = 0.0  # added to frame timestamps: 0 for files (stream time), Unix time of the clock origin live
        self._seq = dict.fromkeys(self.cameras, 0)
        self._gids: collections.OrderedDict = collections.OrderedDict()  # (camera, local id) -> global id
        self._waiting: dict[tuple[str, int], float] = {}  # (camera, local id) -> monotonic time first published
        self._current: dict[str, set] = {c: set() for c in self.cameras}
        self._ended: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.latencies: collections.deque = collections.deque(maxlen=100_000)  # seconds, publish -> id back
        self.published = 0
        self.published_bytes = 0
        self.received = 0
        self.up = True
        self._down_since: float | None = None
        self._after = "0-0"
        try:
            self.transport.ping()
            self._after = self.transport.last_id(self.ids_stream)
        except TransportDown as exc:
            self._mark_down(exc)
        self.outbox.put(self.obs_stream, schema.encode(
            "hello", {"node": self.node, "session": self.session, "cameras": self.cameras, "sent": time.time()}))
        self._threads = [threading.Thread(target=self._send_loop, name="mctrack-fleet-send", daemon=True),
                         threading.Thread(target=self._recv_loop, name="mctrack-fleet-recv", daemon=True)]
        for t in self._threads:
            t.start()
        log.info("fleet: edge %s (cameras %s) publishing to %s as site %s", self.node, ", ".join(self.cameras),
                 getattr(self.transport, "url", "the broker"), cfg.site)

    # ------------------------------------------------------------------ the loop's side
    def publish(self, outputs: dict[str, TrackOutput], embeddings: dict[str, np.ndarray | None],
                frames: dict[str, int]) -> None:
        """Queue one tick: ``outputs`` camera -> TrackOutput (local ids), ``embeddings`` camera -> (N, D)
        float32 unit-norm embeddings of that frame's detections (or None), ``frames`` camera -> frame index."""
        now_wall, now_mono = time.time(), time.monotonic()
        for cam, out in outputs.items():
            self._seq[cam] += 1
            fields = schema.encode_obs(self.node, self.session, cam, self._seq[cam], out.timestamp + self.epoch,
                                       frames[cam], now_wall, out, embeddings.get(cam), self.cfg.embedding_dtype)
            self.outbox.put(self.obs_stream, fields)
            self.published += 1
            self.published_bytes += sum(len(v) for v in fields.values())
            with self._lock:
                for lid, conf in zip(out.track_ids.tolist(), out.confirmed.tolist(), strict=True):
                    if conf and (cam, lid) not in self._gids and (cam, lid) not in self._waiting:
                        self._waiting[(cam, lid)] = now_mono

    def apply(self, outputs: dict[str, TrackOutput]) -> dict[str, TrackOutput]:
        """The same outputs with the global ids received so far (-1 where none yet)."""
        result = {}
        with self._lock:
            for cam, out in outputs.items():
                ids = out.track_ids.tolist()
                now = set(ids)
                for lid in self._current.get(cam, set()) - now:  # ended: local ids are never reused
                    self._gids.pop((cam, lid), None)
                    self._waiting.pop((cam, lid), None)
                self._current[cam] = now
                gids = np.array([self._gids.get((cam, lid), -1) if c else -1
                                 for lid, c in zip(ids, out.confirmed.tolist(), strict=True)], np.int64)
                result[cam] = TrackOutput(out.track_ids, gids, out.tlbr, out.scores, out.det_index, out.confirmed,
                                          out.timestamp)
        return result

    def ended(self, cameras: list[str]) -> None:
        """These cameras' sources finished: tell the service not to wait for them."""
        new = [c for c in cameras if c not in self._ended]
        if new:
            self._ended.update(new)
            self.outbox.put(self.obs_stream, schema.encode("end", {"node": self.node, "session": self.session,
                                                                   "cams": new}))

    def close(self, timeout: float = 5.0) -> None:
        """Send what is buffered (waiting at most ``timeout`` s for the broker), then stop the threads."""
        self.ended([c for c in self.cameras if c not in self._ended])
        deadline = time.monotonic() + timeout
        while len(self.outbox) and time.monotonic() < deadline:
            time.sleep(0.02)
        if len(self.outbox):
            log.warning("fleet: %d messages not delivered (the broker did not take them before shutdown)",
                        len(self.outbox))
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3.0)
        self.transport.close()

    def stats(self) -> dict:
        lat = np.asarray(self.latencies, np.float64) * 1000 if self.latencies else np.zeros(0)
        return {"node": self.node, "session": self.session, "published": self.published,
                "published_bytes": self.published_bytes, "received_ids": self.received,
                "outbox": len(self.outbox), "outbox_bytes": self.outbox.bytes, "dropped": self.outbox.dropped,
                "broker_up": self.up, "assignments": len(lat),
                "latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
                "latency_p95_ms": float(np.percentile(lat, 95)) if len(lat) else None}

    # ------------------------------------------------------------------ threads
    def _mark_down(self, exc) -> None:
        if self.up:
            self.up = False
            self._down_since = time.monotonic()
            log.warning("fleet: broker unreachable (%s): tracking goes on with local ids; buffering up to %d "
                        "messages / %.0f MB", exc, self.cfg.outbox_messages, self.cfg.outbox_mb)

    def _mark_up(self) -> None:
        if not self.up:
            self.up = True
            log.info("fleet: broker back after %.1f s; re-sending %d buffered messages (%d dropped)",
                     time.monotonic() - (self._down_since or time.monotonic()), len(self.outbox), self.outbox.dropped)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            last, items = self.outbox.peek(_BATCH)
            if not items:
                self.outbox.wait(0.2)
                continue
            try:
                self.transport.publish(items)
            except TransportDown as exc:
                self._mark_down(exc)
                self._stop.wait(_RETRY_S)
                continue
            except Exception:  # noqa: BLE001 - a bug or a refused write: never kill the loop silently
                log.exception("fleet: publishing failed; retrying")
                self._stop.wait(_RETRY_S)
                continue
            self.outbox.pop_through(last)
            self._mark_up()

    def _recv_loop(self) -> None:
        while not self._stop.is_set():
            try:
                entries = self.transport.read(self.ids_stream, self._after, 1000, 200)
            except TransportDown as exc:
                self._mark_down(exc)
                self._stop.wait(_RETRY_S)
                continue
            except Exception:  # noqa: BLE001
                log.exception("fleet: reading ids failed; retrying")
                self._stop.wait(_RETRY_S)
                continue
            now = time.monotonic()
            for eid, fields in entries:
                self._after = eid
                try:
                    kind, body, _ = schema.decode(fields)
                except schema.BadMessage:
                    continue
                if kind != "ids" or body.get("session") != self.session:
                    continue  # another start of this edge
                with self._lock:
                    for cam, lid, gid in body.get("a", []):
                        key = (str(cam), int(lid))
                        self._gids[key] = int(gid)
                        self._gids.move_to_end(key)
                        t0 = self._waiting.pop(key, None)
                        if t0 is not None:
                            self.latencies.append(now - t0)
                        self.received += 1
                    while len(self._gids) > _MAX_IDS:
                        self._gids.popitem(last=False)
