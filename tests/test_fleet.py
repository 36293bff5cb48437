"""Fleet over a real redis-server on loopback (``tests/redis_server.py``; no fake broker): schema, outbox,
identities across edges, and the faults of issue #11 (broker restart, service SIGKILL + restart, an edge
down for a minute, malformed entries, a wrong password)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.redis_server import INSTALL_HINT, RedisServer, redis_available
from tracker.config import FleetConfig
from tracker.core.types import TrackOutput
from tracker.fleet import schema
from tracker.fleet.outbox import Outbox

ROOT = Path(__file__).resolve().parents[1]
needs_redis = pytest.mark.skipif(not redis_available(), reason=INSTALL_HINT)
DIM = 64
PASSWORD = "fl33t-S3cret"


# ------------------------------------------------------------------ pure parts
def _out(ids, t, confirmed=None):
    n = len(ids)
    tlbr = np.array([[10 * i, 20, 10 * i + 40, 140] for i in range(n)], np.float32).reshape(n, 4)
    return TrackOutput(np.asarray(ids, np.int64), np.full(n, -1, np.int64), tlbr, np.full(n, 0.9, np.float32),
                       np.arange(n, dtype=np.int64), np.asarray(confirmed if confirmed is not None else [True] * n),
                       t)


def test_schema_round_trip_is_exact():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(3, DIM)).astype(np.float32)
    out = TrackOutput(np.array([4, 7]), np.array([-1, -1]), np.array([[1.5, 2.25, 30.125, 90.0], [5, 6, 7, 8]],
                      np.float32), np.array([0.8, 0.3], np.float32), np.array([2, -1]), np.array([True, False]), 1.75)
    fields = schema.encode_obs("e1", "s1", "cam", 3, 1.75, 12, 1000.0, out, emb)
    kind, body, blob = schema.decode({k.encode(): (v if isinstance(v, bytes) else v.encode())
                                      for k, v in fields.items()})
    obs = schema.decode_obs(body, blob)
    assert kind == "obs" and obs.camera == "cam" and obs.seq == 3 and obs.frame == 12
    np.testing.assert_array_equal(obs.out.tlbr, out.tlbr)
    np.testing.assert_array_equal(obs.out.det_index, out.det_index)
    np.testing.assert_array_equal(obs.embeddings[2], emb[2])  # exactly the row a track points at
    assert body["erows"] == [2]  # detections no track points at never travel


@pytest.mark.parametrize("fields", [
    {b"v": b"9", b"k": b"obs", b"m": b"{}"},
    {b"v": b"1", b"k": b"nope", b"m": b"{}"},
    {b"v": b"1", b"k": b"obs", b"m": b"not json"},
    {b"hello": b"world"},
])
def test_schema_rejects_foreign_entries(fields):
    with pytest.raises(schema.BadMessage):
        kind, body, blob = schema.decode(fields)
        schema.decode_obs(body, blob)


def test_outbox_bounds_drop_oldest_with_count(caplog):
    box = Outbox(max_messages=5, max_bytes=10_000)
    for i in range(8):
        box.put("s", {"m": str(i)})
    assert len(box) == 5 and box.dropped == 3
    last, items = box.peek(2)
    box.put("s", {"m": "x" * 20_000})  # over the byte bound: the oldest go
    box.pop_through(last)
    assert box.bytes <= 10_000 or len(box) == 1
    assert sum("dropping the oldest" in r.message for r in caplog.records) == 1


# ------------------------------------------------------------------ a synthetic site
class Site:
    """Two cameras on two edges; person P1 walks camA -> camB, P2 camB -> camA; fixed appearances."""

    def __init__(self, redis: RedisServer, tmp: Path, lateness: float = 0.3):
        self.redis, self.tmp = redis, tmp
        self.fleet = {"broker": redis.url, "site": "t", "lateness": lateness, "checkpoint_interval": 0.5}
        rng = np.random.default_rng(1)
        self.look = {p: v / np.linalg.norm(v) for p, v in
                     (("P1", rng.normal(size=DIM)), ("P2", rng.normal(size=DIM)), ("P3", rng.normal(size=DIM)))}
        self.rng = rng
        self.gids: dict[tuple[str, int], int] = {}  # (camera, local id) -> global id seen at the edge
        self.person: dict[tuple[str, int], str] = {}
        self.next_lid = {"camA": 1, "camB": 1}
        self.lid: dict[tuple[str, str, int], int] = {}
        self.rows = 0

    def central(self, **extra) -> Path:
        cfg = {"fleet": {**self.fleet, "cameras": ["camA", "camB"], **extra},
               "multicam": {"store": "registry.db"}, "output": {"dir": str(self.tmp / "central")}}
        path = self.tmp / "central.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def service(self, *args: str, wait: bool = True) -> subprocess.Popen:
        """Start the identity service; ``wait``: until its consumer group exists (it is reading)."""
        import redis as redis_py

        p = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "identity-service", "--config",
                              str(self.central()), *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        r = redis_py.Redis.from_url(self.redis.url.replace("127.0.0.1", "127.0.0.1"), password=None)
        deadline = time.monotonic() + 60
        while wait and time.monotonic() < deadline and p.poll() is None:
            try:
                if r.exists(schema.obs_stream("t")) and r.xinfo_groups(schema.obs_stream("t")):
                    break
            except redis_py.RedisError:
                pass
            time.sleep(0.1)
        r.close()
        return p

    def edge(self, node: str, cam: str):
        from tracker.fleet.edge import FleetEdge

        return FleetEdge(FleetConfig(**{**self.fleet, "enabled": True, "node": node}), [cam])

    def tick(self, edge, cam: str, k: int, people: list[tuple[str, int]], t_offset: float = 0.0) -> None:
        """People in view: (person, visit number); a new visit is a new local track, confirmed after 3 ticks."""
        ids, conf, emb = [], [], []
        for person, visit in people:
            key = (cam, person, visit)
            if key not in self.lid:
                self.lid[key] = self.next_lid[cam]
                self.next_lid[cam] += 1
                self._age = getattr(self, "_age", {})
                self._age[key] = 0
            self._age[key] += 1
            lid = self.lid[key]
            self.person[(cam, lid)] = person
            ids.append(lid)
            conf.append(self._age[key] >= 3)
            v = self.look[person] + 0.05 * self.rng.normal(size=DIM)
            emb.append(v / np.linalg.norm(v))
        out = _out(ids, k * 0.1 + t_offset, conf)
        self.rows += int(np.sum(conf))
        edge.publish({cam: out}, {cam: np.asarray(emb, np.float32).reshape(len(ids), DIM)}, {cam: k + 1})
        for lid, gid in zip(ids, edge.apply({cam: out})[cam].global_ids.tolist(), strict=True):
            if gid >= 0:
                self.gids[(cam, lid)] = gid

    def identities_by_person(self) -> dict[str, set]:
        by: dict[str, set] = {}
        for key, gid in self.gids.items():
            by.setdefault(self.person[key], set()).add(gid)
        return by


def scenario(site, ea, eb, ks, during=None):
    """Ticks ``ks``: P1 in camA for ticks 0-29 then camB 50-79; P2 the other way round; P3 in camA 60-79."""
    for k in ks:
        if during is not None:
            during(k)
        a = ([("P1", 1)] if k < 30 else []) + ([("P2", 1)] if 50 <= k < 80 else []) + \
            ([("P3", 1)] if 60 <= k < 80 else [])
        b = ([("P2", 1)] if k < 30 else []) + ([("P1", 1)] if 50 <= k < 80 else [])
        site.tick(ea, "camA", k, a)
        site.tick(eb, "camB", k, b)
        time.sleep(0.03)


def _finish(site, ea, eb, service, timeout=60):
    time.sleep(1.0)  # the last ids arrive
    ea.close()
    eb.close()
    out, err = service.communicate(timeout=timeout)
    assert service.returncode == 0, err[-2000:]
    return out, err


def _all_acked(redis: RedisServer) -> tuple[int, bool]:
    import redis as redis_py

    r = redis_py.Redis.from_url(redis.url)
    pending = r.xpending(schema.obs_stream("t"), "identity-service")["pending"]
    group = r.xinfo_groups(schema.obs_stream("t"))[0]
    last = r.xrevrange(schema.obs_stream("t"), count=1)[0][0]
    r.close()
    return pending, group["last-delivered-id"] == last


def _check_identities(site):
    by = site.identities_by_person()
    assert by["P1"] and by["P2"] and by["P3"], by
    assert len(by["P1"]) == 1 and len(by["P2"]) == 1, f"a person got two ids across cameras: {by}"
    owners: dict[int, set] = {}
    for person, gids in by.items():
        for g in gids:
            owners.setdefault(g, set()).add(person)
    assert all(len(p) == 1 for p in owners.values()), f"one id given to two people: {owners}"


@pytest.mark.slow
@needs_redis
def test_identity_follows_a_person_across_edges(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        site = Site(redis, tmp_path)
        service = site.service("--until-ended")
        ea, eb = site.edge("edgeA", "camA"), site.edge("edgeB", "camB")
        scenario(site, ea, eb, range(80))
        time.sleep(1.0)
        scenario(site, ea, eb, [])
        _finish(site, ea, eb, service)
        _check_identities(site)
        assert ea.stats()["assignments"] > 0 and ea.stats()["latency_p95_ms"] < 1000
        rows = sum(len((tmp_path / "central" / f"{c}.txt").read_text().splitlines()) for c in ("camA", "camB"))
        assert rows == site.rows  # every confirmed observation reached the site's MOT files
        assert _all_acked(redis) == (0, True)


@pytest.mark.slow
@needs_redis
def test_broker_restart_loses_nothing(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        site = Site(redis, tmp_path)
        service = site.service("--until-ended")
        ea, eb = site.edge("edgeA", "camA"), site.edge("edgeB", "camB")

        def during(k):
            if k == 35:
                redis.stop()
            if k == 45:
                time.sleep(0.5)
                redis.start()
        scenario(site, ea, eb, range(80), during)
        _finish(site, ea, eb, service)
        _check_identities(site)
        assert ea.stats()["dropped"] == 0 and ea.stats()["outbox"] == 0
        rows = sum(len((tmp_path / "central" / f"{c}.txt").read_text().splitlines()) for c in ("camA", "camB"))
        assert rows == site.rows, "observations lost over the broker restart"
        assert _all_acked(redis) == (0, True)


@pytest.mark.slow
@needs_redis
def test_service_sigkill_and_restart(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        site = Site(redis, tmp_path)
        first = site.service()
        ea, eb = site.edge("edgeA", "camA"), site.edge("edgeB", "camB")
        state = {}

        def during(k):
            if k == 40:
                time.sleep(1.0)  # a checkpoint has been taken; what follows is replayed
                first.send_signal(signal.SIGKILL)
                first.wait()
            if k == 44:
                state["second"] = site.service("--until-ended", wait=False)
        scenario(site, ea, eb, range(80), during)
        out, err = _finish(site, ea, eb, state["second"])
        assert "pending entries replayed" in err
        _check_identities(site)
        assert _all_acked(redis) == (0, True)  # every entry processed and acknowledged: nothing lost


@pytest.mark.slow
@needs_redis
def test_malformed_entries_skipped_counted_logged_once(tmp_path):
    import redis as redis_py

    with RedisServer(tmp_path / "redis") as redis:
        site = Site(redis, tmp_path)
        r = redis_py.Redis.from_url(redis.url)
        for fields in ({"hello": "world"}, {"v": "1", "k": "obs", "m": "{bad"}, {"v": "7", "k": "obs", "m": "{}"}):
            r.xadd(schema.obs_stream("t"), fields)
        r.close()
        service = site.service("--until-ended")
        ea, eb = site.edge("edgeA", "camA"), site.edge("edgeB", "camB")
        scenario(site, ea, eb, range(40))
        out, err = _finish(site, ea, eb, service)
        assert "3 malformed skipped" in out
        assert err.count("not a fleet message") == 1
        assert site.identities_by_person()["P1"]


@pytest.mark.slow
@needs_redis
def test_wrong_password_is_one_clear_error(tmp_path):
    with RedisServer(tmp_path / "redis", password=PASSWORD, user="mctrack") as redis:
        site = Site(redis, tmp_path)
        site.fleet["broker"] = f"redis://mctrack:wrong-{PASSWORD}@127.0.0.1:{redis.port}/0"
        p = site.service("--seconds", "5", wait=False)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: broker redis://***@127.0.0.1"), err
        assert PASSWORD not in err + out
        # the right one, from the environment
        site.fleet["broker"] = f"redis://127.0.0.1:{redis.port}/0"
        cfg = site.central()
        raw = yaml.safe_load(cfg.read_text())
        raw["fleet"].update(username="mctrack", password="${FLEET_PW}")
        cfg.write_text(yaml.safe_dump(raw))
        p = subprocess.run([sys.executable, str(ROOT / "run.py"), "identity-service", "--config", str(cfg),
                            "--seconds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "FLEET_PW": PASSWORD})
        assert p.returncode == 0, p.stderr
        assert PASSWORD not in p.stderr + p.stdout


@needs_redis
@pytest.mark.slow
def test_edge_down_for_a_minute(tmp_path):
    with RedisServer(tmp_path / "redis") as redis:
        site = Site(redis, tmp_path, lateness=0.5)
        service = site.service("--until-ended")
        ea, eb = site.edge("edgeA", "camA"), site.edge("edgeB", "camB")
        scenario(site, ea, eb, range(30))  # P1 in camA, P2 in camB
        ea.close()  # edge A is down; B keeps publishing (nobody in view) for a minute
        t_end = time.monotonic() + 60
        k = 30
        while time.monotonic() < t_end:
            site.tick(eb, "camB", k, [])
            k += 1
            time.sleep(0.1)
        ea = site.edge("edgeA", "camA")  # restarted: new local tracks, same people
        site.next_lid["camA"] = 1  # local ids start over after a restart
        for j in range(30):
            site.tick(ea, "camA", k + j, [("P1", 2)])
            site.tick(eb, "camB", k + j, [])
            time.sleep(0.05)
        time.sleep(1.0)
        site.tick(ea, "camA", k + 30, [("P1", 2)])
        _finish(site, ea, eb, service)
        by = site.identities_by_person()
        assert len(by["P1"]) == 1, f"P1 did not get its id back after the edge restart: {by}"


@needs_redis
@pytest.mark.slow
def test_pets09_fleet_equals_one_box(tmp_path, data_dir, model_dir):
    """bench/fleet_pets09.py: three edges + identity service + redis-server give the single-process answer."""
    env = {**os.environ, "MCTRACK_DATA_DIR": str(data_dir), "MCTRACK_MODEL_DIR": str(model_dir)}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "fleet_pets09.py"), "--out", str(tmp_path / "f")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    print(last)
    fleet_idf1, single_idf1 = (float(x) for x in re.findall(r"cross_idf1=([0-9.]+)", last))
    fleet_ids, single_ids = (int(x) for x in re.findall(r"=(\d+)", last.split("ids")[1]))
    assert abs(fleet_idf1 - single_idf1) <= 0.5, last
    assert fleet_ids == single_ids, last
