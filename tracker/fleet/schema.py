"""Fleet messages: what edges publish and what the identity service sends back (version 1).

Each message is one stream entry with fields ``v`` (schema version), ``k`` (kind), ``m`` (a JSON
object) and, for observations with appearance, ``e`` (raw little-endian embedding bytes).

Edge -> service, on ``mctrack:<site>:obs``:

- ``hello``: ``{node, session, cameras, sent}``: an edge (re)started (``session`` is new every start).
- ``obs``: one camera's tick: ``{node, session, cam, seq, t, frame, sent, ids, tlbr, sc, det, conf,
  erows, dtype, dim}`` with ``t`` the frame time in the site's time base (seconds; stream time for
  files, Unix time for live cameras), ``seq`` 1, 2, ... per (camera, session), ``ids`` the local track
  ids, ``tlbr`` the boxes (pixels, flattened rows of 4), ``sc`` scores, ``det`` each row's detection
  index (-1: predicted only), ``conf`` confirmed flags, and ``e`` the embeddings of the detections rows
  point at (``erows``: which detection indices, ``dim`` x ``dtype``). Only detections that a track row
  points at travel, never the others; no images.
- ``end``: ``{node, session, cams}``: those cameras will publish nothing more in this session.

Service -> edge, on ``mctrack:<site>:ids:<node>``:

- ``ids``: ``{session, t, a: [[cam, local_id, global_id], ...]}``: new or changed global ids.

Anything else (another version, another kind, a malformed body) raises ``BadMessage``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from tracker.core.types import TrackOutput

VERSION = 1
KINDS = ("hello", "obs", "end", "ids")


class BadMessage(ValueError):
    """A stream entry that is not a fleet message of this version (skipped, counted, logged once)."""


def obs_stream(site: str) -> str:
    return f"mctrack:{site}:obs"


def ids_stream(site: str, node: str) -> str:
    return f"mctrack:{site}:ids:{node}"


def gid_counter(site: str) -> str:
    return f"mctrack:{site}:next_gid"


def encode(kind: str, body: dict, emb: bytes | None = None) -> dict:
    fields = {"v": str(VERSION), "k": kind, "m": json.dumps(body, separators=(",", ":"))}
    if emb:
        fields["e"] = emb
    return fields


def decode(fields: dict) -> tuple[str, dict, bytes | None]:
    """``(kind, body, embedding bytes)`` of one entry; raises ``BadMessage``."""
    try:
        v = fields.get(b"v")
        if v is None or int(v) != VERSION:
            raise BadMessage(f"schema version {v!r}, expected {VERSION}")
        kind = fields[b"k"].decode()
        if kind not in KINDS:
            raise BadMessage(f"unknown kind {kind!r}")
        body = json.loads(fields[b"m"])
        if not isinstance(body, dict):
            raise BadMessage("body is not an object")
        return kind, body, fields.get(b"e")
    except BadMessage:
        raise
    except (KeyError, ValueError, UnicodeDecodeError, TypeError) as exc:
        raise BadMessage(f"{type(exc).__name__}: {exc}") from None


@dataclass
class Observation:
    """One camera's tick as the service sees it."""

    node: str
    session: str
    camera: str
    seq: int
    t: float
    frame: int
    sent: float
    out: TrackOutput  # local ids as published
    embeddings: np.ndarray | None  # (max det index + 1, D) float32, rows the tracks point at filled


def encode_obs(node: str, session: str, camera: str, seq: int, t: float, frame: int, sent: float,
               out: TrackOutput, emb: np.ndarray | None, dtype: str = "float32") -> dict:
    """Stream fields of one camera's tick. ``emb``: (N, D) float32 embeddings of the frame's detections."""
    det = np.asarray(out.det_index, np.int64)
    body = {"node": node, "session": session, "cam": camera, "seq": int(seq), "t": float(t), "frame": int(frame),
            "sent": round(float(sent), 6), "ids": np.asarray(out.track_ids, np.int64).tolist(),
            "tlbr": np.asarray(out.tlbr, np.float32).reshape(-1).tolist(),
            "sc": np.asarray(out.scores, np.float32).tolist(), "det": det.tolist(),
            "conf": np.asarray(out.confirmed, bool).astype(int).tolist()}
    blob = None
    if emb is not None and len(emb):
        rows = sorted({int(d) for d in det if 0 <= d < len(emb)})
        if rows:
            body["erows"], body["dtype"], body["dim"] = rows, dtype, int(emb.shape[1])
            blob = np.ascontiguousarray(np.asarray(emb)[rows], dtype="<f4" if dtype == "float32" else "<f2").tobytes()
    return encode("obs", body, blob)


def decode_obs(body: dict, blob: bytes | None) -> Observation:
    try:
        n = len(body["ids"])
        tlbr = np.asarray(body["tlbr"], np.float32).reshape(n, 4)
        det = np.asarray(body["det"], np.int64).reshape(n)
        out = TrackOutput(np.asarray(body["ids"], np.int64).reshape(n), np.full(n, -1, np.int64), tlbr,
                          np.asarray(body["sc"], np.float32).reshape(n), det,
                          np.asarray(body["conf"], bool).reshape(n), float(body["t"]))
        emb = None
        if "erows" in body:
            rows = np.asarray(body["erows"], np.int64)
            dim = int(body["dim"])
            dt = {"float32": "<f4", "float16": "<f2"}[body["dtype"]]
            vec = np.frombuffer(blob or b"", dtype=dt)
            if vec.size != len(rows) * dim or (len(rows) and rows.min() < 0):
                raise BadMessage(f"embedding bytes do not match {len(rows)} rows of {dim}")
            emb = np.zeros((int(rows.max()) + 1 if len(rows) else 0, dim), np.float32)
            emb[rows] = vec.reshape(len(rows), dim)
        if not np.isfinite(out.timestamp) or not np.isfinite(tlbr).all():
            raise BadMessage("non-finite time or box")
        return Observation(str(body["node"]), str(body["session"]), str(body["cam"]), int(body["seq"]),
                           float(body["t"]), int(body["frame"]), float(body.get("sent", 0.0)), out, emb)
    except BadMessage:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise BadMessage(f"malformed observation: {type(exc).__name__}: {exc}") from None
