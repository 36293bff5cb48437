"""Registry persistence: the SQLite store, restore/save in the pipeline, purge, correction events.

The pipeline tests run one synthetic camera (an image folder) with a fake detector and encoder:
each 'person' is a box whose embedding is a fixed unit vector, so the same appearance after a
restart must get the same global id back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import tracker.multicam.store as store_mod
from streams.frame import Frame
from tests.test_faults import _cli_config
from tracker.config import OutputConfig, RunConfig
from tracker.core.config import from_dict
from tracker.core.types import TrackOutput
from tracker.errors import UserError
from tracker.io.sinks import CameraResult, CameraStats, Sinks
from tracker.models.detection import FrameDetections
from tracker.multicam.config import MulticamConfig
from tracker.multicam.registry import IdentityRegistry
from tracker.multicam.store import (
    age_state,
    list_identities,
    load_registry,
    purge_identity,
    save_registry,
    store_info,
)
from tracker.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
DIM = 16


def state(n: int = 5, next_id: int | None = None, seed: int = 0, k: int = 3, dim: int = DIM) -> dict:
    rng = np.random.default_rng(seed)
    idents = []
    for g in range(1, n + 1):
        gal = rng.standard_normal((k, dim)).astype(np.float32)
        idents.append({"gid": g * 2, "age": float(g), "last_camera": f"cam{g % 3}", "gallery": gal})
    if n:  # values whose bits a text or float64 round trip would change
        idents[0]["gallery"][0, :4] = [-0.0, np.float32(1e-45), np.float32(np.pi), np.float32(3.4e38)]
        idents[-1]["gallery"] = np.zeros((0, 0), np.float32)  # an identity without a summary keeps its id
    return {"version": 1, "next_id": next_id or 2 * n + 1, "identities": idents}


def assert_same(a: dict, b: dict) -> None:
    assert a["next_id"] == b["next_id"]
    assert [r["gid"] for r in a["identities"]] == [r["gid"] for r in b["identities"]]
    for ra, rb in zip(a["identities"], b["identities"], strict=True):
        assert ra["last_camera"] == rb["last_camera"] and ra["age"] == rb["age"]
        ga, gb = np.asarray(ra["gallery"]), np.asarray(rb["gallery"])
        assert ga.dtype == gb.dtype == np.float32 and ga.shape == gb.shape and ga.tobytes() == gb.tobytes()


# ---------------------------------------------------------------------------------------------
# The store


def test_round_trip_is_bit_exact_and_owner_only(tmp_path):
    path = tmp_path / "sub" / "reg.db"
    s = state()
    assert save_registry(path, s, saved_at=1234.5) == set()
    loaded, saved_at = load_registry(path)
    assert saved_at == 1234.5
    assert_same(loaded, s)
    assert path.stat().st_mode & 0o777 == 0o600
    # A second save replaces everything (no leftovers of the first), and a wider mode is narrowed again.
    os.chmod(path, 0o644)
    s2 = state(2, seed=1)
    save_registry(path, s2)
    assert_same(load_registry(path)[0], s2)
    assert path.stat().st_mode & 0o777 == 0o600


def test_round_trip_through_a_registry_keeps_ids_and_galleries(tmp_path):
    cfg = MulticamConfig(enabled=True)
    reg = IdentityRegistry(cfg)
    s = state(4, next_id=40)
    assert reg.import_state(s, now=100.0) == 4
    save_registry(tmp_path / "r.db", reg.export_state(100.0))
    loaded, _ = load_registry(tmp_path / "r.db")
    assert_same(loaded, s)
    again = IdentityRegistry(cfg)
    again.import_state(loaded)
    assert again._next_id == 40 and sorted(again.identities) == [2, 4, 6, 8]


def test_downtime_ages_identities_and_expired_ones_are_dropped(tmp_path):
    path = tmp_path / "r.db"
    s = state(3)  # gids 2, 4, 6 with ages 1, 2, 3 s
    save_registry(path, s, saved_at=time.time() - 100.0)
    loaded, saved_at = load_registry(path)
    aged = age_state(loaded, saved_at)
    assert [round(r["age"]) for r in aged["identities"]] == [101, 102, 103]
    assert [r["age"] for r in loaded["identities"]] == [1.0, 2.0, 3.0]  # a copy: the loaded state is unchanged
    reg = IdentityRegistry(MulticamConfig(enabled=True, memory_seconds=101.5))
    assert reg.import_state(aged, now=0.0) == 1
    assert list(reg.identities) == [2] and reg.identities[2].last_time == pytest.approx(-101, abs=1)
    assert age_state(loaded, saved_at, now=saved_at - 50)["identities"][0]["age"] == 1.0  # clock went back
    assert [round(r["age"]) for r in list_identities(path)] == [101, 102, 103]


def test_missing_and_empty_files_mean_nothing_saved(tmp_path):
    assert load_registry(tmp_path / "none.db") is None
    (tmp_path / "empty.db").write_bytes(b"")
    assert load_registry(tmp_path / "empty.db") is None
    assert list_identities(tmp_path / "empty.db") == []
    save_registry(tmp_path / "empty.db", state(1))  # a store is created in it
    assert store_info(tmp_path / "empty.db")["identities"] == 1


def _foreign_db(p: Path) -> None:
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()


def _set(p: Path, sql: str) -> None:
    save_registry(p, state())
    con = sqlite3.connect(p)
    con.execute(sql)
    con.commit()
    con.close()


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b"not a database\x00" * 300), "not a readable registry store"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + os.urandom(2000)), "registry store"),
    (_foreign_db, "not a registry store"),
    (lambda p: _set(p, "UPDATE schema_version SET version = 99"), "schema version 99"),
    (lambda p: _set(p, "UPDATE identities SET gallery = x'0102' WHERE gid = 2"), "damaged"),
    (lambda p: _set(p, "DELETE FROM meta WHERE key = 'next_id'"), "incomplete"),
], ids=["garbage", "bad-pages", "foreign-db", "version", "short-blob", "meta"])
def test_corrupt_or_foreign_file_is_a_user_error(tmp_path, make, message):
    path = tmp_path / "r.db"
    make(path)
    with pytest.raises(UserError, match=message) as caught:
        load_registry(path)
    assert str(path) in str(caught.value)
    if message != "registry store":
        assert "delete the file" in str(caught.value)
    if message in ("damaged", "incomplete"):  # ours, damaged: the next save replaces it
        return
    before = path.read_bytes()
    with pytest.raises(UserError):
        list_identities(path)
    with pytest.raises(UserError):  # never overwrite a file that is not ours
        save_registry(path, state())
    assert path.read_bytes() == before


CRASH_CHILD = """
import sys
from tests.test_registry_store import state
from tracker.multicam.store import save_registry
states = [state(200, seed=0, k=10, dim=128), state(150, seed=1, k=10, dim=128)]
print("ready", flush=True)
i = 0
while True:
    save_registry(sys.argv[1], states[i % 2])
    i += 1
"""


@pytest.mark.slow
def test_kill_mid_save_leaves_a_whole_save(tmp_path):
    """SIGKILL at random moments while saving: the file always holds one whole save, never a mix."""
    path = tmp_path / "r.db"
    a, b = state(200, seed=0, k=10, dim=128), state(150, seed=1, k=10, dim=128)
    save_registry(path, a)
    seen = set()
    journals = 0
    rng = np.random.default_rng(0)
    for _ in range(6):
        child = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                 text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.05, 0.4)))  # about time: a kill at a random moment
        finally:
            child.kill()
            child.communicate()
        journals += Path(f"{path}-journal").exists()  # killed inside a transaction: rolled back on open
        loaded, _ = load_registry(path)
        which = a if loaded["next_id"] == a["next_id"] else b
        assert_same(loaded, which)
        seen.add(which["next_id"])
    print(f"states found after the kills: {sorted(seen)}; killed mid-save {journals} times")
    assert journals, "no kill landed inside a save"


def test_purge_function_and_a_later_save_drops_it(tmp_path):
    path = tmp_path / "r.db"
    s = state(3)
    save_registry(path, s)
    assert purge_identity(path, 4) is True
    assert purge_identity(path, 4) is False and purge_identity(path, 99) is False
    assert [r["gid"] for r in list_identities(path)] == [2, 6]
    assert store_info(path)["purged_pending"] == 1
    # A pipeline that still holds identity 4 saves: it is not written back, and the saver says so.
    assert save_registry(path, s) == {4}
    assert [r["gid"] for r in list_identities(path)] == [2, 6]
    assert store_info(path)["purged_pending"] == 0
    # Its summaries are not left in the file's free pages (secure_delete).
    needle = s["identities"][1]["gallery"][0].tobytes()
    assert needle not in path.read_bytes()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_registry_list_and_purge_commands(tmp_path):
    path = tmp_path / "r.db"
    save_registry(path, state(3), saved_at=time.time() - 120)
    r = _cli("registry", "list", "--store", str(path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["gid", "last", "seen", "last", "camera", "summaries"]
    assert lines[1].split() == ["2", "2", "min", "ago", "cam1", "3"]
    assert lines[3].split() == ["6", "2", "min", "ago", "cam0", "0"]
    assert "3 identities" in lines[-1] and "next id 7" in lines[-1]

    r = _cli("registry", "purge", "--store", str(path), "--id", "2", "--id", "5")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: no identity 5 in {path}; nothing purged "
                                             f"(see: run.py registry list --store {path})"]
    assert [x["gid"] for x in list_identities(path)] == [2, 4, 6]

    r = _cli("registry", "purge", "--store", str(path), "--id", "2", "--id", "6")
    assert r.returncode == 0, r.stderr
    assert f"purged identity 2 (3 appearance summaries) from {path}" in r.stdout
    assert f"purged identity 6 (0 appearance summaries) from {path}" in r.stdout
    assert "next save" in r.stdout
    assert [x["gid"] for x in list_identities(path)] == [4]

    for args in (["list", "--store", str(tmp_path / "missing.db")], ["purge", "--store", str(tmp_path), "--id", "1"]):
        r = _cli("registry", *args)
        assert r.returncode == 2 and r.stderr.startswith("error: registry store") and "Traceback" not in r.stderr
    (tmp_path / "bad.db").write_bytes(b"junk" * 1000)
    r = _cli("registry", "list", "--store", str(tmp_path / "bad.db"))
    assert r.returncode == 2 and "delete the file" in r.stderr and "Traceback" not in r.stderr
    assert "next restart" not in _cli("registry", "purge", "--help").stdout  # it is honoured at the next save


# ---------------------------------------------------------------------------------------------
# The pipeline: restore at start, save periodically and at shutdown


APPEARANCE = {name: np.eye(DIM, dtype=np.float32)[i] for i, name in enumerate("ABC")}


class People:
    """Fake detector: a fixed set of people, one box each, drifting 0.5 px per frame.

    ``people`` is a list of (name, left); the encoder reads the name back from the box's left edge.
    """

    def __init__(self, people):
        self.people = list(people)
        self.calls = 0

    def detect(self, frames):
        out = []
        for _ in frames:
            self.calls += 1
            d = 0.5 * self.calls
            tlbr = np.array([[x + d, 60, x + d + 40, 180] for _, x in self.people], np.float32).reshape(-1, 4)
            out.append(FrameDetections(tlbr, np.full(len(tlbr), 0.9, np.float32), np.zeros(len(tlbr), np.int64)))
        return out


class Looks:
    """Fake encoder: the appearance of the person whose box starts nearest (``People`` layout)."""

    def __init__(self, people):
        self.people = list(people)

    def embed(self, images, boxes):
        out = []
        for b in boxes:
            rows = [APPEARANCE[min(self.people, key=lambda p, x=float(box[0]): abs(p[1] - x))[0]] for box in b]
            out.append(np.asarray(rows, np.float32).reshape(len(b), DIM))
        return out


def frames_dir(tmp_path: Path, n: int) -> Path:
    d = tmp_path / "frames"
    if not d.is_dir():
        d.mkdir()
        for i in range(n):
            cv2.imwrite(str(d / f"{i + 1:04d}.png"), np.full((240, 480, 3), 60 + i % 50, np.uint8))
    return d


def run_config(tmp_path: Path, out: Path, n: int = 30, pace: bool = False, mot_delay: float = 3.0,
               **multicam) -> RunConfig:
    return from_dict(RunConfig, {
        "cameras": [{"id": "a", "source": str(frames_dir(tmp_path, n)), "fps": 10, "pace": pace}],
        "reid": {"enabled": False}, "pipeline": {"status_interval": 0},
        "multicam": {"enabled": True, "store": "registry.db", **multicam},
        "output": {"dir": str(out), "mot_delay": mot_delay}})


def run_people(cfg: RunConfig, people, **kw) -> tuple[dict, Pipeline]:
    pipe = Pipeline(cfg, detector=People(people), encoder=Looks(people))
    return pipe.run(progress=False, **kw), pipe


def ids_by_person(out: Path, people) -> dict[str, set[int]]:
    rows = np.loadtxt(out / "a.txt", delimiter=",", ndmin=2)
    found: dict[str, set[int]] = {}
    for row in rows:
        name = min(people, key=lambda p: abs(p[1] - row[2]))[0]
        found.setdefault(name, set()).add(int(row[1]))
    return found


def test_restart_restores_identities_and_continues_ids(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    first = [("A", 20), ("C", 300)]
    summary, _ = run_people(run_config(tmp_path, tmp_path / "run1"), first)
    ids1 = ids_by_person(tmp_path / "run1", first)
    assert len(ids1["A"]) == 1 and len(ids1["C"]) == 1, ids1
    store = tmp_path / "run1" / "registry.db"
    assert summary["registry"] == {"store": store, "restored": 0, "saved": 2, "error": None}
    saved, _ = load_registry(store)
    next_id = saved["next_id"]
    assert all(len(r["gallery"]) == 1 for r in saved["identities"])  # the live tracks' summaries

    # The second run writes elsewhere but uses the same store: A comes back, B is new.
    second = [("A", 20), ("B", 300)]
    cfg2 = elsewhere(run_config(tmp_path, tmp_path / "run2"), tmp_path / "run2", store)
    summary2, _ = run_people(cfg2, second)
    ids2 = ids_by_person(tmp_path / "run2", second)
    assert ids2["A"] == ids1["A"], "the same person got another id after the restart"
    assert len(ids2["B"]) == 1 and min(ids2["B"]) >= next_id, (ids2, next_id)
    assert summary2["registry"]["restored"] == 2 and summary2["registry"]["saved"] == 3
    assert any(f"registry: restored 2 identities from {store} (saved " in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "run2" / "registry.db").exists()

    # Purged while stopped: A is a stranger at the next start.
    (a_id,) = ids1["A"]
    assert purge_identity(store, a_id)
    run_people(elsewhere(cfg2, tmp_path / "run3", store), second)
    ids3 = ids_by_person(tmp_path / "run3", second)
    assert a_id not in ids3["A"] and min(ids3["A"]) >= next_id
    assert ids3["B"] == ids2["B"]


def elsewhere(cfg: RunConfig, out: Path, store: Path) -> RunConfig:
    """``cfg`` writing its outputs to ``out`` with the registry store ``store``."""
    return dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=str(out)),
                               multicam=dataclasses.replace(cfg.multicam, store=str(store)))


def test_expired_identities_are_dropped_from_the_file_at_start(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    out.mkdir()
    s = state(3)  # ages 1, 2, 3 s
    save_registry(out / "registry.db", s, saved_at=time.time() - 58.5)
    pipe = Pipeline(run_config(tmp_path, out, memory_seconds=60.0), detector=People([]), encoder=Looks([]))
    assert sorted(pipe.registry.identities) == [2]
    assert [r["gid"] for r in list_identities(out / "registry.db")] == [2]
    assert any("2 saved identities unseen for more than" in r.getMessage() for r in caplog.records)
    pipe.close_sources()


def test_periodic_saves_and_a_purge_while_running(tmp_path):
    """A paced run saves every 0.2 s; purging the person's id mid-run makes the pipeline forget it."""
    out = tmp_path / "out"
    people = [("A", 20)]
    # rows written at once: with a delay, the rows shown before the purge would take the new id too
    cfg = run_config(tmp_path, out, n=60, pace=True, mot_delay=0.0, save_interval=0.2)
    pipe = Pipeline(cfg, detector=People(people), encoder=Looks(people))
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(pipe.run(progress=False)), daemon=True)
    t.start()
    store = out / "registry.db"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (store.exists() and list_identities(store)):
        time.sleep(0.05)
    (first,) = [r["gid"] for r in list_identities(store)]
    assert purge_identity(store, first)
    while time.monotonic() < deadline and first in pipe.registry.identities:
        time.sleep(0.05)
    assert first not in pipe.registry.identities, "the running pipeline did not honour the purge"
    assert first not in [r["gid"] for r in list_identities(store)]
    ticks = pipe.ticks
    while time.monotonic() < deadline and pipe.ticks < ticks + 3:  # the person, still in view, under a new id
        time.sleep(0.05)
    pipe.stop()
    t.join(20)
    assert not t.is_alive() and result["registry"]["error"] is None
    gids = [r["gid"] for r in list_identities(store)]
    assert first not in gids and len(gids) == 1 and gids[0] > first  # the person got a fresh id
    ids = ids_by_person(out, people)["A"]
    assert ids == {first, gids[0]}


def test_failed_saves_are_logged_once_and_never_mask_the_error(tmp_path, caplog, monkeypatch):
    def broken(path, state, saved_at=None):
        raise UserError(f"registry store {path} cannot be written: database or disk is full")

    monkeypatch.setattr(store_mod, "save_registry", broken)
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    summary, _ = run_people(run_config(tmp_path, out), [("A", 20)])
    assert summary["registry"]["error"].endswith("database or disk is full")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "not saved at shutdown" in errors[0].getMessage()
    assert len(np.loadtxt(out / "a.txt", delimiter=",", ndmin=2)) > 10  # the outputs are complete

    # A source that crashes: its error is what the caller gets; the failed save is logged beside it.
    caplog.clear()
    pipe = Pipeline(run_config(tmp_path, tmp_path / "out2"), detector=People([("A", 20)]), encoder=Looks([("A", 20)]))
    real = pipe.cameras["a"].reader.get
    calls = {"n": 0}

    def get(timeout=None):
        calls["n"] += 1
        if calls["n"] > 10:
            raise RuntimeError("simulated decoder crash")
        return real(timeout)

    monkeypatch.setattr(pipe.cameras["a"].reader, "get", get)
    with pytest.raises(RuntimeError, match="simulated decoder crash"):
        pipe.run(progress=False)
    assert any("not saved at shutdown" in r.getMessage() for r in caplog.records)


def cli_config(tmp_path: Path, n: int = 20) -> Path:
    """A run config for ``run.py run``: the synthetic camera with a detection file (one person)."""
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{20 + f},60,40,120,0.9,-1,-1,-1\n" for f in range(1, n + 1)))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"cameras:\n  - {{id: a, source: '{frames_dir(tmp_path, n)}', fps: 10, detections: '{det}'}}\n"
                   "reid: {enabled: false}\nmulticam: {enabled: true, store: registry.db}\n")
    return cfg


def test_cli_run_with_an_unusable_store_is_one_error_line(tmp_path):
    out = tmp_path / "out"
    (out / "registry.db").mkdir(parents=True)
    r = _cli("run", "--config", str(cli_config(tmp_path)), "--set", f"output.dir={out}", "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == [
        f"error: registry store {out / 'registry.db'} not found (it is a folder)"]


FULL_DISK_WRAPPER = """
import sys
import run
import tracker.multicam.store as s
from tracker.errors import UserError

def full(path, state, saved_at=None):
    raise UserError(f"registry store {path} cannot be written: database or disk is full")

s.save_registry = full
sys.exit(run.main(sys.argv[1:]))
"""


def test_cli_run_reports_a_failed_final_save_with_exit_2(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", FULL_DISK_WRAPPER, "run", "--config", str(cli_config(tmp_path)), "--set",
                        f"output.dir={out}", "-q"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    print(r.stdout, r.stderr)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stdout.startswith("finished: 20 frames")
    assert f"registry: NOT saved to {out / 'registry.db'} (see the error above)" in r.stdout
    errors = [ln for ln in r.stderr.splitlines() if "ERROR" in ln or ln.startswith("error:")]
    assert len(errors) == 1 and "database or disk is full" in errors[0] and "not saved at shutdown" in errors[0]
    assert len(np.loadtxt(out / "a.txt", delimiter=",", ndmin=2)) > 10


def _cli_run_config(tmp_path: Path, data_dir: Path) -> Path:
    cfg = _cli_config(tmp_path, data_dir, cams=("cam1", "cam3"))
    cfg.write_text(cfg.read_text() + "multicam: {enabled: true, store: registry.db, save_interval: 0}\n")
    return cfg


def test_sigterm_saves_the_registry(tmp_path, data_dir):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "run.py"), "run", "--config", str(_cli_run_config(tmp_path, data_dir)),
           "--set", f"output.dir={out}", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and '"global_id": 1' not in _read(out / "events.jsonl"):
            time.sleep(0.05)
        time.sleep(1.0)  # kept: a window in which a periodic save would have written the file
        assert not (out / "registry.db").exists(), "save_interval 0: saved only at shutdown"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(stdout, stderr)
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert stdout.startswith("stopped:")
    stored = list_identities(out / "registry.db")
    assert stored and f"registry: {len(stored)} identities saved to {out / 'registry.db'}" in stdout
    events = [json.loads(ln) for ln in _read(out / "events.jsonl").splitlines()]
    next_id = store_info(out / "registry.db")["next_id"]
    assert max(e["global_id"] for e in events) < next_id and max(r["gid"] for r in stored) < next_id


def _read(p: Path) -> str:
    try:
        return p.read_text()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# Correction events


def test_correction_events_reach_events_jsonl_in_tick_order(tmp_path):
    people = [("A", 20)]
    pipe = Pipeline(run_config(tmp_path, tmp_path / "out"), detector=People(people), encoder=Looks(people))
    real = pipe.registry.update
    injected = {}

    def update(now, outputs, embeddings):
        res = real(now, outputs, embeddings)
        if len(injected) < 2 and now >= 1.0:
            ev = {"type": "identity_merged" if not injected else "identity_split", "time": now,
                  "from": np.int64(7), "into": 1, "cameras": np.array(["a"])}
            pipe.registry.events.append(ev)
            injected[ev["type"]] = now
        return res

    pipe.registry.update = update
    pipe.run(progress=False)
    events = [json.loads(ln) for ln in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    corrections = [e for e in events if e["type"].startswith("identity_") and e["type"] != "identity_seen"]
    assert corrections == [
        {"type": "identity_merged", "time": injected["identity_merged"], "from": 7, "into": 1, "cameras": ["a"]},
        {"type": "identity_split", "time": injected["identity_split"], "from": 7, "into": 1, "cameras": ["a"]}]
    # In stream order with the tick's other events (written before the tick's per-camera events).
    times = [e["time"] for e in events if e.get("reason") != "shutdown"]
    assert times == sorted(times)


def test_sinks_submit_events_order_and_events_off(tmp_path):
    def tick(i):
        tr = TrackOutput(np.array([1]), np.array([5]), np.array([[1, 2, 11, 22]], np.float32),
                         np.array([0.9], np.float32), np.array([0]), np.array([True]), 0.1 * i)
        return [CameraResult("a", Frame("a", i, 0.1 * i, None), tr, time.monotonic())]

    stats = [CameraStats("a", "x", 10.0, 0, 0, 0, 0.0, 1.0, 1.0, "running")]
    for on in (True, False):
        out = tmp_path / str(on)
        s = Sinks(OutputConfig(dir=str(out), events=on), ["a"])
        s.start()
        s.submit(tick(1), stats)
        s.submit_events([{"type": "identity_merged", "time": 0.2, "n": np.int32(3)}])
        s.submit_events([])
        s.submit(tick(2), stats)
        s.close()
        if not on:
            assert not (out / "events.jsonl").exists() and s.error is None
            continue
        types = [json.loads(ln)["type"] for ln in (out / "events.jsonl").read_text().splitlines()]
        assert types == ["track_started", "identity_seen", "identity_merged", "track_ended"]
        assert json.loads((out / "events.jsonl").read_text().splitlines()[2]) == {
            "type": "identity_merged", "time": 0.2, "n": 3}


# ---------------------------------------------------------------------------------------------
# Schema 2: the site (adaptation, learned topology) and the camera of each summary


def _learned_registry() -> IdentityRegistry:
    reg = IdentityRegistry(MulticamConfig(enabled=True, topology_min_handovers=2))
    rng = np.random.default_rng(3)
    for cam in ("cam1", "cam2"):
        for _ in range(6):
            v = rng.standard_normal(DIM)
            reg.adapt.observe(cam, v / np.linalg.norm(v))
    reg.adapt.refresh()
    for gap in (2.0, 3.0, 2.5, 2.0):  # the command reads it with the default topology_min_handovers (4)
        reg.topology.record("cam1", "cam2", gap)
    ident = reg._new_identity()
    reg._set_gallery(ident, [rng.standard_normal(DIM).astype(np.float32)], ["cam2"])
    return reg


def test_site_and_summary_cameras_round_trip(tmp_path):
    reg = _learned_registry()
    path = tmp_path / "reg.db"
    save_registry(path, reg.export_state(now=1.0), saved_at=10.0)
    loaded, _ = load_registry(path)
    assert loaded["identities"][0]["gallery_cameras"] == ["cam2"]
    again = IdentityRegistry(MulticamConfig(enabled=True, topology_min_handovers=2))
    assert again.import_state(loaded, now=0.0) == 1
    assert again.learned_topology()["links"] == reg.learned_topology()["links"] != []
    assert np.allclose(again.adapt.centre("cam1"), reg.adapt.centre("cam1"))
    assert again.identities[min(again.identities)].gallery_cams == ["cam2"]
    r = subprocess.run([sys.executable, str(ROOT / "run.py"), "registry", "topology", "--store", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "links:" in r.stdout and "{a: cam1, b: cam2, min_travel: 1, max_travel: 8}" in r.stdout
    assert "cam1 - cam2: 4 hand-overs" in r.stdout


def test_schema_1_file_is_read_and_migrated_on_save(tmp_path):
    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('state_version', '1'), ('next_id', '8'), ('saved_at', '5.0');
        CREATE TABLE identities (gid INTEGER PRIMARY KEY, age REAL NOT NULL, last_camera TEXT NOT NULL,
                                 rows INTEGER NOT NULL, dim INTEGER NOT NULL, gallery BLOB NOT NULL);
        CREATE TABLE purged (gid INTEGER PRIMARY KEY, purged_at REAL NOT NULL);
    """)
    con.execute("INSERT INTO identities VALUES (7, 1.0, 'cam1', 1, 2, ?)", (np.ones(2, "<f4").tobytes(),))
    con.commit()
    con.close()
    loaded, saved_at = load_registry(path)
    assert saved_at == 5.0 and loaded["identities"][0]["gallery_cameras"] == [""]
    reg = IdentityRegistry(MulticamConfig(enabled=True))
    assert reg.import_state(loaded) == 1
    save_registry(path, reg.export_state(now=0.0))
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT version FROM schema_version").fetchone()[0] == 2
    assert load_registry(path)[0]["identities"][0]["gid"] == 7
