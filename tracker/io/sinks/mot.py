"""``<camera>.txt``: MOTChallenge rows of confirmed tracks matched to a detection in that frame.

The identity registry corrects itself within seconds (two identities found to be one person are merged, a
track that is someone else is split off), but a row written is written. So rows wait ``delay`` seconds
(``output.mot_delay``) and are written with the identity their track holds then: corrections made in that
time reach the file too, and a newcomer merged a second later does not leave an identity of its own behind.
Everything waiting is written on shutdown."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from tracker.core.boxes import tlbr_to_tlwh
from tracker.io.motio import mot_result_lines
from tracker.io.sinks.base import TextOutput
from tracker.io.sinks.files import AppendFile
from tracker.io.sinks.records import EventLines, Rows, TextItem


def mot_lines(frame_index: int, rows: Rows, identity: np.ndarray | None = None) -> str:
    """MOTChallenge lines for rows confirmed and matched this frame (``frame,id,l,t,w,h,score,-1,-1,-1``);
    ``identity`` (one per row) replaces ``rows.identity`` when given."""
    keep = np.flatnonzero(rows.confirmed & (rows.det_index >= 0))
    tlwh = tlbr_to_tlwh(rows.tlbr[keep].astype(np.float64))
    ids = rows.identity if identity is None else identity
    return mot_result_lines(frame_index, ids[keep], tlwh, rows.scores[keep])


class DelayedIdentities:
    """One camera's rows held back ``delay`` seconds, then given the identity their track holds by then.

    ``add`` takes a tick's rows and returns the MOT lines that are due; ``flush`` returns the rest. Memory:
    the rows of the last ``delay`` seconds and one id per track seen in that time.
    """

    def __init__(self, delay: float):
        self.delay = float(delay)
        self.pending: collections.deque = collections.deque()  # (timestamp, frame index, Rows)
        self.latest: dict[int, tuple[int, float]] = {}  # local track id -> (identity shown, last time seen)

    def add(self, frame_index: int, timestamp: float, rows: Rows) -> str:
        if self.delay <= 0:
            return mot_lines(frame_index, rows)
        # a clock that went back (a source that restarted its timestamps): what waits is written now
        first = self.flush() if self.pending and timestamp < self.pending[-1][0] else ""
        for tid, ident in zip(rows.track_ids.tolist(), rows.identity.tolist(), strict=True):
            self.latest[tid] = (ident, timestamp)
        self.pending.append((timestamp, frame_index, rows))
        return first + self._due(timestamp - self.delay)

    def flush(self) -> str:
        return self._due(np.inf)

    def _due(self, until: float) -> str:
        out = []
        while self.pending and self.pending[0][0] <= until:
            _, fi, rows = self.pending.popleft()
            ids = np.array([self.latest[t][0] for t in rows.track_ids.tolist()], np.int64)
            _, first = np.unique(ids, return_index=True)
            if len(first) < len(ids):  # two tracks hold one identity now (rare): those rows keep what they showed
                dup = np.ones(len(ids), bool)
                dup[first] = False
                ids = np.where(dup | np.isin(ids, ids[dup]), rows.identity, ids)
            out.append(mot_lines(fi, rows, ids))
        if out:  # forget tracks no row still waiting can belong to
            oldest = self.pending[0][0] if self.pending else np.inf
            self.latest = {t: v for t, v in self.latest.items() if v[1] >= oldest}
        return "".join(out)


class MotOutput(TextOutput):
    """One MOTChallenge file per camera (``frame`` = the source's frame index, ``id`` = the identity shown)."""

    def __init__(self, out_dir: Path, names: dict[str, str], delay: float = 0.0):
        self.paths_by_camera = {cam: Path(out_dir) / f"{name}.txt" for cam, name in names.items()}
        self.files: dict[str, AppendFile] = {}
        self.delayed = {cam: DelayedIdentities(delay) for cam in names}

    def open(self) -> None:
        for cam, path in self.paths_by_camera.items():
            self.files[cam] = AppendFile(path)

    def write(self, batch: list[TextItem | EventLines], shutdown: bool = False) -> None:
        chunks: dict[str, list[str]] = collections.defaultdict(list)
        for item in batch:
            if isinstance(item, TextItem):
                chunks[item.camera_id].append(self.delayed[item.camera_id].add(item.frame_index, item.timestamp,
                                                                                item.rows))
        if shutdown:
            for cam, d in self.delayed.items():
                chunks[cam].append(d.flush())
        for cam, parts in chunks.items():
            self.files[cam].write("".join(parts))
        for f in self.files.values():
            f.check()

    def close(self, sync: bool = True) -> None:
        first: OSError | None = None
        for cam, d in self.delayed.items():  # rows still held back (a shutdown write flushes them earlier)
            rest = d.flush()
            if rest and cam in self.files:
                try:
                    self.files[cam].write(rest)
                except OSError as exc:
                    first = first or exc
        for f in self.files.values():
            try:
                f.close(sync=sync)
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first

    def paths(self) -> dict[str, Path]:
        return {f"mot:{cam}": p for cam, p in self.paths_by_camera.items()}
