"""``events.jsonl``: track started / ended, identity seen in a camera, and events given as they are.

One JSON object per line with ``type``, ``camera``, ``time`` (stream timestamp, s), ``frame``,
``track_id``, ``identity`` and ``global_id`` (-1 when unresolved):

- ``track_started``: the first tick a confirmed track is reported.
- ``identity_seen``: the first time an identity is seen (matched to a detection) in a camera;
  an unresolved track counts under its local id and again under its global id once resolved.
- ``track_ended``: a confirmed track left the tracker's output (``"reason": "removed"``;
  ``time``/``frame`` of that tick), or was still active at close (``"reason": "shutdown"``;
  ``time``/``frame`` of the camera's last tick). Both carry ``last_seen_time`` and
  ``last_seen_frame``, the last tick it was matched to a detection (null if never).

On a fleet edge (``provisional``) the events of a track whose global id has not arrived yet carry
``"provisional": true`` (``identity`` is then the local track id).

Per tick and camera the order is: ended, started, identity_seen, each by track id. Other events
(the identity registry's corrections, e.g. ``identity_merged``) are written as given, in the
order submitted relative to the ticks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker.io.sinks.base import TextOutput
from tracker.io.sinks.files import AppendFile
from tracker.io.sinks.records import EventLines, TextItem

#: seconds (stream time) after which an identity not seen again in a camera is forgotten by the event
#: writer: when it shows up there again, ``identity_seen`` is emitted again (a return after a long
#: absence is news). Keeps the writer's memory bounded by the rate of identities, not the run's length.
SEEN_RETENTION = 600.0


@dataclass
class _TrackState:
    identity: int
    global_id: int
    last_seen_time: float | None = None
    last_seen_frame: int | None = None


@dataclass
class _CameraText:
    active: dict[int, _TrackState] = field(default_factory=dict)
    seen: dict[tuple[str, int], float] = field(default_factory=dict)  # identity key -> last stream time seen
    last_prune: float = 0.0
    last_time: float = 0.0
    last_frame: int = 0


def _event(kind: str, cam: str, ts: float, frame: int, tid: int, st: _TrackState, provisional: bool = False,
           **extra) -> str:
    obj = {"type": kind, "camera": cam, "time": round(ts, 6), "frame": frame, "track_id": tid,
           "identity": st.identity, "global_id": st.global_id}
    if provisional and st.global_id < 0:
        obj["provisional"] = True
    if kind == "track_ended":
        obj["last_seen_time"] = None if st.last_seen_time is None else round(st.last_seen_time, 6)
        obj["last_seen_frame"] = st.last_seen_frame
    obj.update(extra)
    return json.dumps(obj) + "\n"


class EventOutput(TextOutput):
    """Derives lifecycle events from the ticks and writes them to ``events.jsonl``.

    Args:
        path: the file, or None to keep the bookkeeping without writing (no output).
        camera_ids: every camera.
        local_only: identities are local track ids (``show_ids == 'local'``).
        provisional: mark events of tracks without a global id (fleet edges).
    """

    def __init__(self, path: Path | None, camera_ids: list[str], local_only: bool = False,
                 provisional: bool = False):
        self.path = path
        self.provisional = provisional
        self.camera_ids = list(camera_ids)
        self.local_only = local_only
        self.states = {cam: _CameraText() for cam in self.camera_ids}
        self.file: AppendFile | None = None

    def open(self) -> None:
        if self.path is not None:
            self.file = AppendFile(self.path)

    def write(self, batch: list[TextItem | EventLines], shutdown: bool = False) -> None:
        lines: list[str] = []
        for item in batch:
            if isinstance(item, EventLines):
                lines.append(item.text)
            else:
                lines.extend(self._events_for(item, self.states[item.camera_id]))
        if shutdown:
            for cam in self.camera_ids:
                st = self.states[cam]
                for tid in sorted(st.active):
                    lines.append(_event("track_ended", cam, st.last_time, st.last_frame, tid, st.active[tid],
                                        self.provisional, reason="shutdown"))
        if self.file is not None:
            self.file.write("".join(lines))
            self.file.check()

    def close(self, sync: bool = True) -> None:
        if self.file is not None:
            self.file.close(sync=sync)

    def paths(self) -> dict[str, Path]:
        return {"events": self.path} if self.path is not None else {}

    def _events_for(self, item: TextItem, st: _CameraText) -> list[str]:
        """Update the camera's track/identity state with one tick; return its event lines."""
        rows, cam, ts, fi = item.rows, item.camera_id, item.timestamp, item.frame_index
        st.last_time, st.last_frame = ts, fi
        conf = np.flatnonzero(rows.confirmed)
        current = {int(rows.track_ids[i]): i for i in conf}
        out: list[str] = []
        for tid in sorted(set(st.active) - set(current)):
            out.append(_event("track_ended", cam, ts, fi, tid, st.active.pop(tid), self.provisional,
                              reason="removed"))
            st.seen.pop(("local", tid), None)  # local ids are never reused: forget it with its track
        if ts - st.last_prune > 60.0:  # bounded memory: identities unseen here for SEEN_RETENTION are forgotten
            st.last_prune = ts
            for key in [k for k, t in st.seen.items() if ts - t > SEEN_RETENTION]:
                del st.seen[key]
        started: list[int] = []
        seen: list[tuple[int, _TrackState]] = []
        for tid in sorted(current):
            i = current[tid]
            state = st.active.get(tid)
            if state is None:
                state = st.active[tid] = _TrackState(int(rows.identity[i]), int(rows.global_ids[i]))
                started.append(tid)
            state.identity, state.global_id = int(rows.identity[i]), int(rows.global_ids[i])
            if rows.det_index[i] >= 0:
                state.last_seen_time, state.last_seen_frame = ts, fi
                key = ("global" if state.global_id >= 0 and not self.local_only else "local", state.identity)
                if key not in st.seen:
                    seen.append((tid, state))
                st.seen[key] = ts
        out.extend(_event("track_started", cam, ts, fi, tid, st.active[tid], self.provisional) for tid in started)
        out.extend(_event("identity_seen", cam, ts, fi, tid, s, self.provisional) for tid, s in seen)
        return out
