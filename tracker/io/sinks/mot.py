"""``<camera>.txt``: MOTChallenge rows of confirmed tracks matched to a detection in that frame."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from tracker.core.boxes import tlbr_to_tlwh
from tracker.io.motio import mot_result_lines
from tracker.io.sinks.base import TextOutput
from tracker.io.sinks.files import AppendFile
from tracker.io.sinks.records import EventLines, Rows, TextItem


def mot_lines(frame_index: int, rows: Rows) -> str:
    """MOTChallenge lines for rows confirmed and matched this frame (``frame,id,l,t,w,h,score,-1,-1,-1``)."""
    keep = np.flatnonzero(rows.confirmed & (rows.det_index >= 0))
    tlwh = tlbr_to_tlwh(rows.tlbr[keep].astype(np.float64))
    return mot_result_lines(frame_index, rows.identity[keep], tlwh, rows.scores[keep])


class MotOutput(TextOutput):
    """One MOTChallenge file per camera (``frame`` = the source's frame index, ``id`` = the identity shown)."""

    def __init__(self, out_dir: Path, names: dict[str, str]):
        self.paths_by_camera = {cam: Path(out_dir) / f"{name}.txt" for cam, name in names.items()}
        self.files: dict[str, AppendFile] = {}

    def open(self) -> None:
        for cam, path in self.paths_by_camera.items():
            self.files[cam] = AppendFile(path)

    def write(self, batch: list[TextItem | EventLines], shutdown: bool = False) -> None:
        chunks: dict[str, list[str]] = collections.defaultdict(list)
        for item in batch:
            if isinstance(item, TextItem):
                chunks[item.camera_id].append(mot_lines(item.frame_index, item.rows))
        for cam, parts in chunks.items():
            self.files[cam].write("".join(parts))
        for f in self.files.values():
            f.check()

    def close(self, sync: bool = True) -> None:
        first: OSError | None = None
        for f in self.files.values():
            try:
                f.close(sync=sync)
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first

    def paths(self) -> dict[str, Path]:
        return {f"mot:{cam}": p for cam, p in self.paths_by_camera.items()}
