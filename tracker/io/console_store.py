"""Thumbnails of the identity console, stored beside the registry store: ``<multicam.store>.console``.

Only where the registry is stored (thumbnails are biometric data like the appearance summaries):
an SQLite file, owner-only (0600), ``secure_delete`` on so deleted thumbnails are overwritten.

Tables:

- ``console_identities(gid, seen_at, data)``: ``seen_at`` wall clock (Unix seconds) of the last
  sighting; ``data`` JSON (first/last time, cameras visited with times, sightings, ground-plane path).
- ``console_thumbnails(gid, idx, jpeg)``: one small JPEG per visit.
- ``console_purged(gid)``: ids ``run.py registry purge`` removed; a running console forgets them
  (and its open pages drop the card) within a second, then clears the row.

Identities unseen for ``multicam.memory_seconds`` are deleted at every save (the registry's retention).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

_BUSY_TIMEOUT_S = 10.0


@contextlib.contextmanager
def _connect(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    os.chmod(path, 0o600)
    con = sqlite3.connect(str(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        con.execute("PRAGMA secure_delete = ON")
        con.execute("CREATE TABLE IF NOT EXISTS console_identities (gid INTEGER PRIMARY KEY, seen_at REAL NOT NULL, "
                    "data TEXT NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS console_thumbnails (gid INTEGER NOT NULL, idx INTEGER NOT NULL, "
                    "jpeg BLOB NOT NULL, PRIMARY KEY (gid, idx))")
        con.execute("CREATE TABLE IF NOT EXISTS console_purged (gid INTEGER PRIMARY KEY)")
        yield con
    finally:
        if con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        con.close()


def _delete(con: sqlite3.Connection, gids) -> None:
    gids = [(int(g),) for g in gids]
    con.executemany("DELETE FROM console_identities WHERE gid = ?", gids)
    con.executemany("DELETE FROM console_thumbnails WHERE gid = ?", gids)


def save_identities(path: Path, rows: list[tuple[int, float, str, list[bytes | None]]], deleted, expire_before: float
                    ) -> None:
    """Write changed identities ``(gid, seen_at, data json, per-visit JPEG or None)``, delete ``deleted`` ones
    and those last seen before ``expire_before`` (wall clock), in one transaction."""
    with _connect(Path(path)) as con:
        con.execute("BEGIN IMMEDIATE")
        _delete(con, [r[0] for r in rows] + list(deleted))
        purged = {r[0] for r in con.execute("SELECT gid FROM console_purged")}
        for gid, seen_at, data, thumbs in rows:
            if gid in purged:
                continue
            con.execute("INSERT INTO console_identities VALUES (?, ?, ?)", (int(gid), float(seen_at), data))
            con.executemany("INSERT INTO console_thumbnails VALUES (?, ?, ?)",
                            [(int(gid), k, j) for k, j in enumerate(thumbs) if j is not None])
        old = [r[0] for r in con.execute("SELECT gid FROM console_identities WHERE seen_at < ?", (expire_before,))]
        _delete(con, old)
        con.execute("COMMIT")


def load_identities(path: Path, expire_before: float) -> list[tuple[int, float, str, list[bytes | None]]]:
    """Saved identities seen at or after ``expire_before``: ``(gid, seen_at, data json, per-visit JPEG or None)``."""
    with _connect(Path(path)) as con:
        out = []
        for gid, seen_at, data in con.execute(
                "SELECT gid, seen_at, data FROM console_identities WHERE seen_at >= ? ORDER BY gid", (expire_before,)):
            thumbs = dict(con.execute("SELECT idx, jpeg FROM console_thumbnails WHERE gid = ?", (gid,)).fetchall())
            n = max(thumbs, default=-1) + 1
            out.append((int(gid), float(seen_at), data, [thumbs.get(k) for k in range(n)]))
        return out


def purge(path: Path, gid: int) -> int:
    """Delete one identity's thumbnails now and tell a running console to forget it; thumbnails deleted."""
    with _connect(Path(path)) as con:
        con.execute("BEGIN IMMEDIATE")
        n = con.execute("SELECT COUNT(*) FROM console_thumbnails WHERE gid = ?", (int(gid),)).fetchone()[0]
        _delete(con, [gid])
        con.execute("INSERT OR REPLACE INTO console_purged VALUES (?)", (int(gid),))
        con.execute("COMMIT")
    return int(n)


def take_purged(path: Path) -> list[int]:
    """Ids purged since the last call (each returned once)."""
    with _connect(Path(path)) as con:
        con.execute("BEGIN IMMEDIATE")
        gids = [r[0] for r in con.execute("SELECT gid FROM console_purged")]
        con.execute("DELETE FROM console_purged")
        con.execute("COMMIT")
    return gids
