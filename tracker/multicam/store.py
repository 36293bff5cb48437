"""Saving the identity registry across restarts: one SQLite file (``multicam.store``).

What is stored is what ``IdentityRegistry.export_state`` returns: the next global id, per
identity its id, how long before the save it was last seen, the camera it was last seen in and
its appearance summaries (a (K, D) float32 gallery of track means with the camera of each; no
images, no boxes), and what the registry learned about the site: the per-camera appearance
centres of the site adaptation and the hand-over evidence of the learned topology. That is
biometric data, so the file is created owner-only (0600), identities expire after
``multicam.memory_seconds`` (the age grows while the tracker is down), and ``run.py registry
purge`` deletes one identity.

Tables (``schema_version`` says which layout; a file of another version is refused, not guessed at):

- ``schema_version(version)``: one row, ``SCHEMA_VERSION``.
- ``meta(key, value)``: ``state_version`` (of ``export_state``), ``next_id``, ``saved_at``
  (wall clock, Unix seconds).
- ``identities(gid, age, last_camera, rows, dim, gallery, cameras)``: ``gallery`` is ``rows * dim``
  little-endian float32 values, row-major (bit-exact round trip); ``cameras`` a JSON list of the
  camera of each row ("" unknown).
- ``site(key, value)``: ``adaptation`` and ``topology``, JSON (``SiteAdaptation.export_state``,
  ``LearnedTopology.export_state``); the adaptation centres are means over many people, not anyone's
  summary, and are kept until the file is deleted.
- ``purged(gid, purged_at)``: identities deleted by ``purge_identity``. The next save of a
  pipeline still holding one drops it instead of writing it back and reports it, so the pipeline
  forgets it too (``save_registry``'s return value).

A file of schema version 1 (before ``cameras`` and ``site``) is migrated in place on its first save
(its summaries get unknown cameras); reading it works without migrating.

Every save replaces the whole content in one SQLite transaction (rollback journal): a crash or a
power cut mid-save leaves the previous save, never a mix. ``secure_delete`` is on, so deleted
summaries are overwritten in the file, not left in free pages. Another process (``run.py
registry list``/``purge``) may use the file while a pipeline runs; writers wait for each other.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from tracker.errors import UserError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
STATE_VERSION = 2  # IdentityRegistry.export_state's "version" (1 is still accepted by save_registry)
_BUSY_TIMEOUT_S = 10.0
_FIX = "delete the file (or move it away) to start with no saved identities, or set multicam.store to another file"


def format_duration(seconds: float) -> str:
    """``42 s``, ``17 min``, ``5.2 h``, ``3.0 days`` (negative: 0 s)."""
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _unreadable(path: Path, why: str) -> UserError:
    return UserError(f"registry store {path} {why}; {_FIX}")


@contextlib.contextmanager
def _connect(path: Path, create: bool, verb: str):
    """An autocommit connection (transactions are explicit) with secure_delete on.

    SQLite errors inside the block become ``UserError``: a damaged or foreign file says what to do,
    an I/O problem (disk full, read-only, locked for longer than the busy timeout) says ``verb``.
    """
    if not create and not path.is_file():
        raise UserError(f"registry store {path} not found" + (" (it is a folder)" if path.exists() else ""))
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            os.chmod(path, 0o600)  # also when it existed with wider permissions
        con = sqlite3.connect(str(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(f"registry store {path} cannot be {verb}: {reason}") from None
    try:
        con.execute("PRAGMA secure_delete = ON")
        yield con
    except sqlite3.OperationalError as exc:
        raise UserError(f"registry store {path} cannot be {verb}: {exc}") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise _unreadable(path, f"is not a readable registry store ({exc})") from None
    finally:
        if con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        con.close()


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _schema(con: sqlite3.Connection, path: Path) -> int:
    """The file's schema version (1 or 2), 0 when it is empty; raises for anything else."""
    tables = _tables(con)
    if not tables:
        return 0
    if not {"schema_version", "meta", "identities", "purged"} <= tables:
        raise _unreadable(path, "is an SQLite file but not a registry store")
    row = con.execute("SELECT version FROM schema_version").fetchone()
    if row is None or row[0] not in (1, SCHEMA_VERSION):
        raise _unreadable(path, f"has schema version {row[0] if row else None}, this version reads "
                                f"1 and {SCHEMA_VERSION}")
    return int(row[0])


def _check_schema(con: sqlite3.Connection, path: Path) -> bool:
    """True when the file holds a store this version reads, False when it is empty; raises otherwise."""
    return _schema(con, path) > 0


def _migrate_v1(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2 inside the caller's transaction: cameras per summary (unknown), the site table."""
    con.execute("ALTER TABLE identities ADD COLUMN cameras TEXT NOT NULL DEFAULT '[]'")
    con.execute("CREATE TABLE site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))


def _create_schema(con: sqlite3.Connection) -> None:
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("CREATE TABLE identities (gid INTEGER PRIMARY KEY, age REAL NOT NULL, last_camera TEXT NOT NULL, "
                "rows INTEGER NOT NULL, dim INTEGER NOT NULL, gallery BLOB NOT NULL, "
                "cameras TEXT NOT NULL DEFAULT '[]')")
    con.execute("CREATE TABLE purged (gid INTEGER PRIMARY KEY, purged_at REAL NOT NULL)")
    con.execute("CREATE TABLE site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _meta(con: sqlite3.Connection, path: Path) -> dict[str, float]:
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    try:
        return {"state_version": int(meta["state_version"]), "next_id": int(meta["next_id"]),
                "saved_at": float(meta["saved_at"])}
    except (KeyError, ValueError):
        raise _unreadable(path, f"has incomplete metadata {meta}") from None


def save_registry(path: str | Path, state: dict, saved_at: float | None = None) -> set[int]:
    """Replace the store's content with ``state`` (from ``IdentityRegistry.export_state``), atomically.

    Args:
        path: the SQLite file; created (0600, with its folder) when missing.
        state: ``{"version": 2, "next_id": int, "identities": [{"gid", "age", "last_camera", "gallery",
            "gallery_cameras"}], "site": {"adaptation", "topology"}}`` (version 1: no cameras, no site).
        saved_at: wall-clock time of the state (Unix seconds); default now.
    Returns:
        The ids in ``state`` that were purged from the store since the last save (``purge_identity``);
        they are not written. The caller should forget them too (``IdentityRegistry.purge``).
    Raises:
        UserError: the file cannot be written, is not a registry store or is of another schema version.
    """
    path = Path(path)
    if int(state.get("version", 0)) not in (1, STATE_VERSION):
        raise ValueError(f"unsupported registry state version {state.get('version')!r}")
    saved_at = time.time() if saved_at is None else float(saved_at)
    rows = []
    for rec in state["identities"]:
        g = np.asarray(rec["gallery"], dtype="<f4")
        g = g.reshape(len(g), -1) if g.size else np.zeros((0, 0), "<f4")
        cams = [str(c) for c in (rec.get("gallery_cameras") or [])]
        cams = cams if len(cams) == g.shape[0] else [""] * g.shape[0]
        rows.append((int(rec["gid"]), float(rec["age"]), str(rec.get("last_camera", "")), g.shape[0], g.shape[1],
                     np.ascontiguousarray(g).tobytes(), json.dumps(cams)))
    site = [(k, json.dumps(v)) for k, v in sorted((state.get("site") or {}).items()) if v is not None]
    with _connect(path, create=True, verb="written") as con:
        con.execute("BEGIN IMMEDIATE")  # a crash before COMMIT leaves the previous save (rolled back on open)
        version = _schema(con, path)
        if version == 0:
            _create_schema(con)
        elif version == 1:
            _migrate_v1(con)
        purged = {r[0] for r in con.execute("SELECT gid FROM purged")}
        dropped = {r[0] for r in rows if r[0] in purged}
        con.execute("DELETE FROM identities")
        con.execute("DELETE FROM purged")  # applied: this save drops them, the caller forgets them
        con.executemany("INSERT INTO identities (gid, age, last_camera, rows, dim, gallery, cameras) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", [r for r in rows if r[0] not in purged])
        con.execute("DELETE FROM site")
        con.executemany("INSERT INTO site VALUES (?, ?)", site)
        con.execute("DELETE FROM meta")
        con.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("state_version", str(STATE_VERSION)), ("next_id", str(int(state["next_id"]))),
            ("saved_at", repr(saved_at))])
        con.execute("COMMIT")
    return dropped


def load_registry(path: str | Path) -> tuple[dict, float] | None:
    """The state last saved to ``path`` and when (wall clock), or None when there is none yet.

    Ages are as of the save; add the time since ``saved_at`` before ``IdentityRegistry.import_state``
    (``age_state`` does).

    Raises:
        UserError: the file is unreadable, not a registry store, of another schema version or damaged.
    """
    path = Path(path)
    if not path.exists():
        return None
    with _connect(path, create=False, verb="read") as con:
        con.execute("BEGIN")  # one consistent snapshot
        version = _schema(con, path)
        if version == 0:
            return None
        meta = _meta(con, path)
        if meta["state_version"] not in (1, STATE_VERSION):
            raise _unreadable(path, f"holds registry state version {meta['state_version']}, this version "
                                    f"reads {STATE_VERSION}")
        idents = []
        cams_col = "cameras" if version >= 2 else "'[]'"
        for gid, age, cam, n, dim, blob, cams in con.execute(
                f"SELECT gid, age, last_camera, rows, dim, gallery, {cams_col} FROM identities ORDER BY gid"):
            if n < 0 or dim < 0 or not isinstance(blob, bytes) or len(blob) != 4 * n * dim:
                raise _unreadable(path, f"is damaged: identity {gid} has a bad {n}x{dim} gallery")
            gallery = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(n, dim)
            try:
                cams = [str(c) for c in json.loads(cams)]
            except (ValueError, TypeError):
                raise _unreadable(path, f"is damaged: identity {gid} has bad cameras {cams!r}") from None
            idents.append({"gid": int(gid), "age": float(age), "last_camera": str(cam), "gallery": gallery,
                           "gallery_cameras": cams if len(cams) == n else [""] * n})
        site = {}
        if version >= 2:
            for key, value in con.execute("SELECT key, value FROM site ORDER BY key"):
                try:
                    site[str(key)] = json.loads(value)
                except ValueError:
                    raise _unreadable(path, f"is damaged: site entry {key!r} is not JSON") from None
        con.execute("COMMIT")
    return ({"version": STATE_VERSION, "next_id": meta["next_id"], "identities": idents, "site": site},
            meta["saved_at"])


def age_state(state: dict, saved_at: float, now: float | None = None) -> dict:
    """A copy of ``state`` whose ages include the time since ``saved_at`` (the tracker was down).

    A wall clock that went backwards adds nothing (never makes anyone younger).
    """
    down = max(0.0, (time.time() if now is None else now) - saved_at)
    return {**state, "identities": [{**r, "age": float(r["age"]) + down} for r in state["identities"]]}


def store_info(path: str | Path) -> dict:
    """``{"saved_at", "next_id", "identities", "purged_pending"}`` of an existing store (no galleries read).

    An empty file (nothing saved yet) gives ``saved_at`` None and zeros.

    Raises:
        UserError: missing, unreadable or not a registry store.
    """
    path = Path(path)
    with _connect(path, create=False, verb="read") as con:
        con.execute("BEGIN")
        if not _check_schema(con, path):
            return {"saved_at": None, "next_id": 0, "identities": 0, "purged_pending": 0}
        meta = _meta(con, path)
        n = con.execute("SELECT COUNT(*) FROM identities").fetchone()[0]
        pending = con.execute("SELECT COUNT(*) FROM purged").fetchone()[0]
    return {"saved_at": meta["saved_at"], "next_id": meta["next_id"], "identities": n, "purged_pending": pending}


def list_identities(path: str | Path, now: float | None = None) -> list[dict]:
    """Every stored identity, by id: ``{"gid", "age", "last_camera", "summaries", "dim"}``.

    ``age`` is seconds since the identity was last seen as of ``now`` (wall clock, default now):
    its age at the save plus the time since.

    Raises:
        UserError: missing, unreadable or not a registry store.
    """
    path = Path(path)
    now = time.time() if now is None else now
    with _connect(path, create=False, verb="read") as con:
        con.execute("BEGIN")
        if not _check_schema(con, path):
            return []
        down = max(0.0, now - _meta(con, path)["saved_at"])
        return [{"gid": int(g), "age": float(a) + down, "last_camera": str(c), "summaries": int(n), "dim": int(d)}
                for g, a, c, n, d in con.execute(
                    "SELECT gid, age, last_camera, rows, dim FROM identities ORDER BY gid")]


def purge_identity(path: str | Path, gid: int) -> bool:
    """Delete one identity and its appearance summaries from the store; False when it holds no such id.

    A pipeline running on this store drops the identity at its next save (``save_registry``) instead
    of writing it back, and forgets it then.

    Raises:
        UserError: missing, unreadable or not a registry store, or cannot be written.
    """
    path = Path(path)
    with _connect(path, create=False, verb="written") as con:
        con.execute("BEGIN IMMEDIATE")
        if not _check_schema(con, path):
            return False
        found = con.execute("DELETE FROM identities WHERE gid = ?", (int(gid),)).rowcount > 0
        if found:
            con.execute("INSERT OR REPLACE INTO purged VALUES (?, ?)", (int(gid), time.time()))
        con.execute("COMMIT")
    return found


class StoreSaver:
    """Saves registry snapshots to one store for the live loop: periodic saves on a background thread.

    The loop takes a snapshot (``IdentityRegistry.export_state``, a private copy) on its own thread
    and hands it over; the SQLite write, which takes ~0.2 s for 1000 identities with full galleries,
    happens on a daemon thread, at most one at a time. Ids purged from the store that a save
    dropped are collected for the loop to forget (``take_purged``), before its next snapshot.

    Failures never raise: each is logged once (again only when the reason changes) and kept in ``error``.

    Attributes:
        error: the reason the last save failed, or None after a successful one.
        saved: identities written by the last successful save (None before the first).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.error: str | None = None
        self.saved: int | None = None
        self._thread: threading.Thread | None = None
        self._purged: list[int] = []
        self._logged: str | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background save in progress; False when it is still running after ``timeout``."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy()

    def take_purged(self) -> list[int]:
        """Ids that finished saves dropped because they were purged from the store (each returned once)."""
        out, self._purged = self._purged, []
        return out

    def save_in_background(self, state: dict) -> bool:
        """Start saving ``state`` on a daemon thread; False (nothing started) while a save is running."""
        if self.busy():
            return False
        self._thread = threading.Thread(target=self._save, args=(state, False), name="mctrack-registry-save",
                                        daemon=True)
        self._thread.start()
        return True

    def save(self, state: dict) -> bool:
        """Save ``state`` now on this thread (call ``wait`` first); True when it was written."""
        return self._save(state, True)

    def _save(self, state: dict, final: bool) -> bool:
        try:
            dropped = save_registry(self.path, state)
        except Exception as exc:  # noqa: BLE001 - a failed save must never stop the tracker
            if isinstance(exc, UserError):
                reason = str(exc)
            else:
                log.debug("registry save failed", exc_info=True)
                reason = f"registry store {self.path} cannot be written: {type(exc).__name__}: {exc}"
            self.error = reason
            if final or reason != self._logged:
                log.error("%s%s", reason, "; identities were not saved at shutdown" if final else
                          "; still tracking, retrying at the next save")
                self._logged = reason
            return False
        self._purged.extend(sorted(dropped))
        self.saved = len(state["identities"]) - len(dropped)
        if self.error is not None and not final:
            log.info("registry: saving to %s works again", self.path)
        self.error = self._logged = None
        return True
