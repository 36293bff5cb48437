"""The identity service: one process that runs the identity registry for every camera of a site.

It reads every edge's observations from ``mctrack:<site>:obs`` through a consumer group, puts them
back in timestamp order across edges the way one box batches its cameras (``_ready``: a site tick
is applied only when every camera has published that far, or ``fleet.lateness`` seconds of waiting
passed), runs ``IdentityRegistry.update`` on each tick, sends new or changed global ids to each edge
(``mctrack:<site>:ids:<node>``), and writes the site's ``<camera>.txt`` and ``events.jsonl``.

Delivery is at least once; the service is idempotent: an observation is keyed by (camera, edge
session, sequence number) and one seen before is skipped (counted). Entries are acknowledged only
at a checkpoint, after the registry was saved to ``multicam.store``; a service killed between two
checkpoints restores the last save and replays its pending entries, so no observation is lost. The
highest global id ever sent to an edge is kept on the broker (``mctrack:<site>:next_gid``, raised
before the ids are sent), so a replay never gives an id that is already out to another person.
"""

from __future__ import annotations

import collections
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from tracker.core.types import TrackOutput
from tracker.errors import UserError
from tracker.fleet import schema
from tracker.fleet.transport import Transport, TransportDown, open_transport

log = logging.getLogger(__name__)
GROUP = "identity-service"
_READ_COUNT = 2000
_LOGGED_BAD_MAX = 1  # malformed entries: the first is logged (warning), the rest counted


class _Frame:
    """What the sinks need of a frame on the service (no image)."""

    __slots__ = ("camera_id", "index", "timestamp", "image", "capture_time")

    def __init__(self, camera_id: str, index: int, timestamp: float):
        self.camera_id, self.index, self.timestamp = camera_id, index, timestamp
        self.image, self.capture_time = None, None


def check_service_config(cfg) -> None:
    """The identity service's config: ``fleet`` (broker, site, cameras) and the topology in ``multicam``."""
    from tracker.config import check_fleet_config

    fl = cfg.fleet
    check_fleet_config(fl)
    if not fl.cameras:
        raise UserError("config: fleet.cameras must list every camera id of the site for the identity service")
    cams = set(fl.cameras)
    mc = cfg.multicam
    for pair in mc.overlaps:
        if len(pair) != 2 or any(c not in cams for c in pair):
            raise UserError(f"config: multicam.overlaps entry {list(pair)} must name two cameras of fleet.cameras")
    for link in mc.links:
        if link.a not in cams or link.b not in cams:
            raise UserError(f"config: multicam.links {link.a} -> {link.b} must name cameras of fleet.cameras")
    for h in mc.homographies:
        if h.camera not in cams or len(h.matrix) != 9:
            raise UserError(f"config: multicam.homographies for '{h.camera}' needs a camera of fleet.cameras and "
                            "9 numbers")


class IdentityService:
    """Consume every edge's stream, run the registry over all cameras, send ids back, write site outputs.

    Args:
        cfg: a ``RunConfig`` whose ``fleet``, ``multicam``, ``output`` and ``pipeline.max_wait`` are used.
        transport: a ready ``Transport`` (tests); default: ``fleet.broker``.
        consumer: this process's name in the consumer group (a restarted service takes over its pending
            entries, and any other consumer's).
    """

    def __init__(self, cfg, transport: Transport | None = None, consumer: str = "service"):
        from tracker.io.sinks import Sinks
        from tracker.multicam.registry import IdentityRegistry

        check_service_config(cfg)
        self.cfg = cfg
        fl = cfg.fleet
        self.site = fl.site
        self.cameras = list(fl.cameras)
        self.stream = schema.obs_stream(fl.site)
        self.counter_key = schema.gid_counter(fl.site)
        self.consumer = consumer
        self.transport = transport or open_transport(fl)
        self.registry = IdentityRegistry(cfg.multicam)
        self._stop = threading.Event()
        self.store_path = None
        if cfg.multicam.store:
            p = Path(cfg.multicam.store).expanduser()
            self.store_path = p if p.is_absolute() else Path(cfg.output.dir) / p
        self._saved_state = None  # loaded store, imported at the first tick (the site clock is known then)
        self._restored = 0
        self.transport.ping()  # wrong credentials: one clear error before anything is written
        if self.store_path is not None:
            from tracker.multicam.store import load_registry

            self.store_path.parent.mkdir(parents=True, exist_ok=True)
            self._saved_state = load_registry(self.store_path)
        out = cfg.output
        self._http_cfg = out
        no_http = type(out)(**{**{k: getattr(out, k) for k in out.__dataclass_fields__}, "http": False, "video": False})
        self.sinks = Sinks(no_http, self.cameras)
        # ordering across edges
        self.pending: dict[str, collections.deque] = {c: collections.deque() for c in self.cameras}
        self.last_t: dict[str, float] = {}  # newest time received per camera
        self.ended: set[str] = set()
        self.stalled: set[str] = set()
        self._blocked_since: float | None = None
        self.now: float | None = None  # the site clock: the latest tick applied
        # idempotency and id bookkeeping
        self.seq_seen: dict[tuple[str, str], int] = {}
        self.lid_map: dict[tuple[str, str, int], int] = {}  # (camera, session, edge local id) -> registry local id
        self._next_lid: dict[str, int] = dict.fromkeys(self.cameras, 1)
        self._current: dict[str, set] = {c: set() for c in self.cameras}  # (session, lid) keys of the last tick
        self.sent: dict[tuple[str, str, int], int] = {}
        self.session_node: dict[str, str] = {}
        self.session_cams: dict[str, set] = collections.defaultdict(set)
        self._to_ack: list[str] = []
        self._counter = 0
        self._skew_warned: set[str] = set()
        self._bad_logged = 0
        self.metrics = collections.Counter()
        self.cpu_seconds = 0.0
        self.tick_ms: collections.deque = collections.deque(maxlen=4096)
        self._http: ThreadingHTTPServer | None = None
        self.url: str | None = None
        self._last_trim = 0.0

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stop.set()

    def _start(self) -> None:
        self.transport.ensure_group(self.stream, GROUP)
        claimed = self.transport.claim(self.stream, GROUP, self.consumer)
        self._counter = self.transport.get_counter(self.counter_key)
        if self._counter:
            self.registry.reserve_ids(self._counter)
        self.sinks.start()
        if self._http_cfg.http:
            self._serve_http()
        # Entries delivered before a crash and never acknowledged: replayed first, in order.
        after, replay = "0-0", 0
        while True:
            entries = self.transport.consume(self.stream, GROUP, self.consumer, _READ_COUNT, 0, pending=True,
                                             after=after)
            if not entries:
                break
            replay += len(entries)
            for eid, fields in entries:
                self._receive(eid, fields)
            after = entries[-1][0]
        log.info("identity service: site %s, %d cameras, stream %s (%d pending entries replayed%s), next global "
                 "id above %d", self.site, len(self.cameras), self.stream, replay,
                 f", {claimed} claimed" if claimed else "", self._counter)

    def done(self) -> bool:
        """Every camera of the site has ended (its edge said so) and nothing is pending."""
        return all(c in self.ended for c in self.cameras) and not any(self.pending.values())

    def run(self, max_seconds: float | None = None, until_ended: bool = False) -> dict:
        """Serve until ``stop()`` (or ``max_seconds``, or, ``until_ended``, until every camera has ended);
        checkpoints every ``fleet.checkpoint_interval``."""
        t_end = None if max_seconds is None else time.monotonic() + max_seconds
        last_cp = time.monotonic()
        down_logged = False
        started = False
        try:
            while not self._stop.is_set() and (t_end is None or time.monotonic() < t_end):
                try:
                    if not started:
                        self._start()
                        started = True
                    self._step()
                    if until_ended and self.done():
                        break
                    if down_logged:
                        log.info("identity service: broker back")
                        down_logged = False
                    if time.monotonic() - last_cp >= self.cfg.fleet.checkpoint_interval:
                        last_cp = time.monotonic()
                        self.checkpoint()
                except TransportDown as exc:
                    if not down_logged:
                        log.warning("identity service: broker unreachable (%s); retrying every second", exc)
                        down_logged = True
                    self.metrics["broker_errors"] += 1
                    self._stop.wait(1.0)
        finally:
            try:
                if started:
                    self._drain_ready()
                    self.checkpoint()
            except TransportDown:
                log.warning("identity service: broker unreachable at shutdown: %d processed entries not "
                            "acknowledged (replayed at the next start)", len(self._to_ack))
            self.sinks.close()
            if self._http is not None:
                self._http.shutdown()
                self._http.server_close()
            self.transport.close()
        return self.summary()

    def summary(self) -> dict:
        return {"ticks": self.metrics["ticks"], "observations": self.metrics["obs"],
                "duplicates": self.metrics["duplicates"], "malformed": self.metrics["malformed"],
                "late": self.metrics["late"], "identities": len(self.registry.identities),
                "next_id": self.registry.next_id, "cpu_seconds": self.cpu_seconds,
                "restored": self._restored, "outputs": self.sinks.paths()}

    # ------------------------------------------------------------------ one step
    def _step(self) -> None:
        block = 50 if not any(self.pending.values()) else 10
        entries = self.transport.consume(self.stream, GROUP, self.consumer, _READ_COUNT, block)
        c0 = time.thread_time()
        for eid, fields in entries:
            self._receive(eid, fields)
        self._drain_ready()
        self.cpu_seconds += time.thread_time() - c0
        if time.monotonic() - self._last_trim > 60.0:
            self._last_trim = time.monotonic()
            self.transport.trim_age(self.stream, self.cfg.fleet.retention)

    def _bad(self, eid: str, why: str) -> None:
        self.metrics["malformed"] += 1
        self._to_ack.append(eid)
        if self._bad_logged < _LOGGED_BAD_MAX:
            self._bad_logged += 1
            log.warning("identity service: skipped an entry that is not a fleet message (%s: %s); further ones "
                        "are counted (mctrack_fleet_malformed_total)", eid, why)

    def _receive(self, eid: str, fields: dict) -> None:
        try:
            kind, body, blob = schema.decode(fields)
            if kind == "obs":
                obs = schema.decode_obs(body, blob)
            elif kind in ("hello", "end"):
                session, node = str(body["session"]), str(body["node"])
                cams = [str(c) for c in body["cameras" if kind == "hello" else "cams"]]
            else:
                raise schema.BadMessage(f"kind {kind!r} does not belong on the observation stream")
        except (schema.BadMessage, KeyError, TypeError) as exc:
            self._bad(eid, str(exc))
            return
        if kind != "obs":
            self._to_ack.append(eid)
            self.session_node[session] = node
            unknown = [c for c in cams if c not in self.pending]
            if unknown:
                log.warning("identity service: edge %s publishes cameras %s that are not in fleet.cameras; their "
                            "observations are skipped", node, ", ".join(unknown))
            for c in cams:
                if c in self.pending:
                    (self.ended.add if kind == "end" else self.ended.discard)(c)
                    self.stalled.discard(c)
            return
        if obs.camera not in self.pending:
            self._bad(eid, f"unknown camera {obs.camera!r}")
            return
        key = (obs.camera, obs.session)
        if obs.seq <= self.seq_seen.get(key, 0):
            self.metrics["duplicates"] += 1
            self._to_ack.append(eid)
            return
        self.seq_seen[key] = obs.seq
        self.session_node[obs.session] = obs.node
        self.metrics["obs"] += 1
        skew = obs.sent - int(eid.split("-")[0]) / 1000.0
        if abs(skew) > self.cfg.fleet.max_skew and obs.node not in self._skew_warned:
            self._skew_warned.add(obs.node)
            log.warning("identity service: edge %s's clock is %+.1f s off the broker's (more than fleet.max_skew "
                        "%.1f s); its cameras are ordered by their own timestamps", obs.node, skew,
                        self.cfg.fleet.max_skew)
        q = self.pending[obs.camera]
        q.append((obs, eid))
        if len(q) > 1 and q[-2][0].t > obs.t:  # a camera's ticks arrive in order; keep them sorted anyway
            self.pending[obs.camera] = collections.deque(sorted(q, key=lambda x: x[0].t))
        self.last_t[obs.camera] = max(self.last_t.get(obs.camera, -np.inf), obs.t)
        self.ended.discard(obs.camera)
        if obs.camera in self.stalled:
            self.stalled.discard(obs.camera)
            log.info("identity service: camera %s publishes again", obs.camera)

    def _ready(self) -> list[str] | None:
        """Cameras of the next site tick (as one box batches them), or None to wait for a slower camera."""
        heads = {c: q[0][0].t for c, q in self.pending.items() if q}
        if not heads:
            self._blocked_since = None
            return None
        t0 = min(heads.values())
        slack = self.cfg.pipeline.max_wait + 1e-6
        waiting = [c for c in self.cameras if c not in heads and c not in self.ended and c not in self.stalled
                   and self.last_t.get(c, -np.inf) <= t0 + slack]
        if waiting:
            now = time.monotonic()
            if self._blocked_since is None:
                self._blocked_since = now
            if now - self._blocked_since < self.cfg.fleet.lateness:
                return None
            for c in waiting:
                self.stalled.add(c)
                log.warning("identity service: camera %s has published nothing past t=%.3f for %.1f s "
                            "(fleet.lateness); going on without it", c, t0, now - self._blocked_since)
            self.metrics["stalls"] += len(waiting)
        self._blocked_since = None
        return [c for c, t in heads.items() if t <= t0 + slack]

    def _drain_ready(self) -> None:
        while True:
            cams = self._ready()
            if not cams:
                return
            self._tick(cams)

    def _tick(self, cams: list[str]) -> None:
        t0 = time.perf_counter()
        batch = [self.pending[c].popleft() for c in cams]
        now = max(o.t for o, _ in batch)
        if self.now is not None and now < self.now:
            self.metrics["late"] += 1
        if self._saved_state is not None:  # restore at the first tick: ages count back from the site clock
            from tracker.multicam.store import age_state

            state, saved_at = self._saved_state
            self._restored = self.registry.import_state(age_state(state, saved_at), now=now)
            self.registry.reserve_ids(self._counter)
            log.info("identity service: restored %d identities from %s", self._restored, self.store_path)
            self._saved_state = None
        outputs, embeddings, keys = {}, {}, {}
        for obs, _ in batch:
            cam, out = obs.camera, obs.out
            lids = np.empty(len(out), np.int64)
            ks = []
            for i, lid in enumerate(out.track_ids.tolist()):
                k = (cam, obs.session, lid)
                m = self.lid_map.get(k)
                if m is None:
                    m = self.lid_map[k] = self._next_lid[cam]
                    self._next_lid[cam] += 1
                lids[i] = m
                ks.append(k)
            cur = set(ks)
            for k in self._current[cam] - cur:  # ended tracks (or the edge's previous session)
                self.lid_map.pop(k, None)
                self.sent.pop(k, None)
            self._current[cam] = cur
            keys[cam] = ks
            outputs[cam] = TrackOutput(lids, out.global_ids, out.tlbr, out.scores, out.det_index, out.confirmed,
                                       out.timestamp)
            embeddings[cam] = obs.embeddings
        results = self.registry.update(now, outputs, embeddings)
        self.now = now if self.now is None else max(self.now, now)
        corrections = self.registry.drain_events()
        by_node: dict[str, list] = collections.defaultdict(list)
        by_node_session: dict[str, str] = {}
        for obs, _ in batch:
            res = results[obs.camera]
            for k, gid, conf in zip(keys[obs.camera], res.global_ids.tolist(), res.confirmed.tolist(), strict=True):
                if conf and self.sent.get(k) != gid:
                    self.sent[k] = gid
                    node = self.session_node.get(obs.session, obs.node)
                    by_node[node].append([obs.camera, k[2], gid])
                    by_node_session[node] = obs.session
        if by_node:
            nid = self.registry.next_id
            if nid > self._counter:  # raised before any id is out: a replay never reuses one
                self.transport.set_counter(self.counter_key, nid)
                self._counter = nid
            self.transport.publish([(schema.ids_stream(self.site, node),
                                     schema.encode("ids", {"session": by_node_session[node], "t": now, "a": a}))
                                    for node, a in by_node.items()])
        from tracker.io.sinks import CameraResult

        if corrections:
            self.sinks.submit_events(corrections)
        self.sinks.submit([CameraResult(o.camera, _Frame(o.camera, o.frame, o.t), results[o.camera], 0.0)
                           for o, _ in batch], [])
        self._to_ack.extend(eid for _, eid in batch)
        if self.store_path is None and len(self._to_ack) >= 256:
            self.transport.ack(self.stream, GROUP, self._to_ack)
            self._to_ack = []
        self.metrics["ticks"] += 1
        self.tick_ms.append(1000 * (time.perf_counter() - t0))

    def checkpoint(self) -> None:
        """Save the registry (``multicam.store``), then acknowledge every entry processed before it."""
        if self.store_path is not None and self.now is not None and self._saved_state is None:
            from tracker.multicam.store import save_registry

            save_registry(self.store_path, self.registry.export_state(self.now))
        if self._to_ack:
            self.transport.ack(self.stream, GROUP, self._to_ack)
            self._to_ack = []
        self.metrics["checkpoints"] += 1

    # ------------------------------------------------------------------ /metrics, /healthz
    def metrics_text(self) -> str:
        m = self.metrics
        lines = [
            f"mctrack_fleet_observations_total {m['obs']}", f"mctrack_fleet_duplicates_total {m['duplicates']}",
            f"mctrack_fleet_malformed_total {m['malformed']}", f"mctrack_fleet_late_total {m['late']}",
            f"mctrack_fleet_ticks_total {m['ticks']}", f"mctrack_fleet_stalls_total {m['stalls']}",
            f"mctrack_fleet_broker_errors_total {m['broker_errors']}",
            f"mctrack_fleet_checkpoints_total {m['checkpoints']}",
            f"mctrack_fleet_identities {len(self.registry.identities)}",
            f"mctrack_fleet_pending_observations {sum(len(q) for q in self.pending.values())}",
            f"mctrack_fleet_stalled_cameras {len(self.stalled)}",
            f"mctrack_fleet_cpu_seconds_total {self.cpu_seconds:.6f}",
        ]
        if self.now is not None:
            lines.append(f"mctrack_fleet_site_time_seconds {self.now:.3f}")
        return "\n".join(lines) + "\n"

    def _serve_http(self) -> None:
        import hmac

        svc, out = self, self._http_cfg

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # no request logs (they could carry a token)
                pass

            def do_GET(self):  # noqa: N802
                if out.http_token:
                    auth = self.headers.get("Authorization", "")
                    if not hmac.compare_digest(auth.encode(), f"Bearer {out.http_token}".encode()):
                        self.send_response(401)
                        self.end_headers()
                        return
                path = self.path.split("?")[0]
                if path == "/metrics":
                    body, ctype = svc.metrics_text().encode(), "text/plain; version=0.0.4"
                elif path == "/healthz":
                    body, ctype = json.dumps({"ok": True, "site": svc.site, "ticks": svc.metrics["ticks"],
                                              "stalled": sorted(svc.stalled)}).encode(), "application/json"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        try:
            self._http = ThreadingHTTPServer((out.http_host, out.http_port), Handler)
        except OSError as exc:
            raise UserError(f"identity service: cannot listen on {out.http_host}:{out.http_port}: "
                            f"{exc.strerror or exc}") from None
        self._http.daemon_threads = True
        host, port = self._http.server_address[:2]
        self.url = f"http://{host}:{port}/"
        threading.Thread(target=self._http.serve_forever, name="mctrack-fleet-http", daemon=True).start()
        log.info("identity service: /metrics and /healthz on %s", self.url)


def hostname() -> str:
    return socket.gethostname()
