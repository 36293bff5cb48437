"""Sinks: MOT files, events, annotated video, back-pressure and disk errors, on synthetic ticks."""

from __future__ import annotations

import errno
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import tracker.io.sinks.annotate as sink_annotate
import tracker.io.sinks.files as sink_files
from streams.frame import Frame
from tracker.config import OutputConfig
from tracker.core.types import TrackOutput
from tracker.errors import UserError
from tracker.io.sinks import CameraResult, CameraStats, Sinks
from tracker.io.sinks.annotate import annotate_frame, update_trails
from tracker.io.sinks.records import snapshot

H, W = 96, 128


def tracks(ts: float, rows: list[tuple]) -> TrackOutput:
    """rows: (track_id, global_id, left, top, right, bottom, score, det_index, confirmed)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 9)
    return TrackOutput(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6].astype(np.float32),
                       a[:, 6].astype(np.float32), a[:, 7].astype(np.int64), a[:, 8].astype(bool), ts)


def result(cam: str, index: int, ts: float, rows: list[tuple], image: bool = True) -> CameraResult:
    img = np.full((H, W, 3), 40 * index % 255, np.uint8) if image else None
    return CameraResult(cam, Frame(cam, index, ts, img), tracks(ts, rows), time.monotonic())


def stat(cam: str, n: int = 0) -> CameraStats:
    return CameraStats(cam, f"file://{cam}.mp4", 10.0, n, 0, 0, 0.01, 12.0, 30.0, "running")


def lines(p: Path) -> list[str]:
    return p.read_text().splitlines()


def count_frames(p: Path) -> int:
    cap = cv2.VideoCapture(str(p))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# Camera "a": track 1 is tentative at frame 1, confirmed unresolved at 2, resolved to global 7 at 3,
# predicted-only at 4 and removed at 5; track 2 (global 8) starts at 3 and is still active at close.
# Camera "cam/b": track 5, global 7, frames 1-3, then the camera has no results (still active at close).
TICKS = [
    [result("a", 1, 0.0, [(1, -1, 10, 20, 30, 60, 0.9, 0, 0)]),
     result("cam/b", 1, 0.0, [(5, 7, 1, 2, 11, 42, 0.8, 0, 1)])],
    [result("a", 2, 0.1, [(1, -1, 11, 20, 31, 60, 0.91, 0, 1)]),
     result("cam/b", 2, 0.1, [(5, 7, 2, 2, 12, 42, 0.81, 0, 1)])],
    [result("a", 3, 0.2, [(1, 7, 12, 20, 32, 60, 0.92, 1, 1), (2, 8, 50, 10, 70, 50, 0.7, 0, 1)]),
     result("cam/b", 3, 0.2, [(5, 7, 3, 2, 13, 42, 0.82, 0, 1)])],
    [result("a", 4, 0.3, [(1, 7, 13, 20, 33, 60, 0.0, -1, 1), (2, 8, 51, 10, 71, 50, 0.75, 0, 1)])],
    [result("a", 5, 0.4, [(2, 8, 52, 10, 72, 50, 0.76, 0, 1)])],
]


def run_ticks(sinks: Sinks, ticks=TICKS) -> None:
    sinks.start()
    for tick in ticks:
        sinks.submit(tick, [stat(r.camera_id) for r in tick])
    sinks.close()


def test_mot_files_exact_content(tmp_path):
    s = Sinks(OutputConfig(dir=str(tmp_path / "out"), mot_delay=0.0), ["a", "cam/b"])
    run_ticks(s)
    assert lines(tmp_path / "out" / "a.txt") == [
        "2,1,11.00,20.00,20.00,40.00,0.910,-1,-1,-1",
        "3,7,12.00,20.00,20.00,40.00,0.920,-1,-1,-1",
        "3,8,50.00,10.00,20.00,40.00,0.700,-1,-1,-1",
        "4,8,51.00,10.00,20.00,40.00,0.750,-1,-1,-1",
        "5,8,52.00,10.00,20.00,40.00,0.760,-1,-1,-1",
    ]
    assert lines(tmp_path / "out" / "cam_b.txt") == [
        f"{f},7,{f:.2f},2.00,10.00,40.00,{0.79 + 0.01 * f:.3f},-1,-1,-1" for f in (1, 2, 3)
    ]
    assert set(s.paths()) == {"mot:a", "mot:cam/b", "events"}
    assert s.paths()["mot:cam/b"] == tmp_path / "out" / "cam_b.txt"


def test_show_ids_local(tmp_path):
    run_ticks(Sinks(OutputConfig(dir=str(tmp_path), events=False), ["a", "cam/b"], show_ids="local"))
    assert [ln.split(",")[1] for ln in lines(tmp_path / "a.txt")] == ["1", "1", "2", "2", "2"]
    with pytest.raises(UserError, match="show_ids"):
        Sinks(OutputConfig(dir=str(tmp_path)), ["a"], show_ids="nope")


def test_events_sequence(tmp_path):
    run_ticks(Sinks(OutputConfig(dir=str(tmp_path), mot=False), ["a", "cam/b"]))
    ev = [json.loads(ln) for ln in lines(tmp_path / "events.jsonl")]
    brief = [(e["type"], e["camera"], e["frame"], e["track_id"], e["identity"], e.get("reason")) for e in ev]
    assert brief == [
        ("track_started", "cam/b", 1, 5, 7, None),
        ("identity_seen", "cam/b", 1, 5, 7, None),
        ("track_started", "a", 2, 1, 1, None),
        ("identity_seen", "a", 2, 1, 1, None),  # unresolved: seen under its local id
        ("track_started", "a", 3, 2, 8, None),
        ("identity_seen", "a", 3, 1, 7, None),  # resolved: now seen under global 7
        ("identity_seen", "a", 3, 2, 8, None),
        ("track_ended", "a", 5, 1, 7, "removed"),
        ("track_ended", "a", 5, 2, 8, "shutdown"),
        ("track_ended", "cam/b", 3, 5, 7, "shutdown"),
    ]
    removed = ev[7]
    assert removed["time"] == pytest.approx(0.4) and removed["last_seen_frame"] == 3
    assert removed["last_seen_time"] == pytest.approx(0.2) and removed["global_id"] == 7
    assert ev[0]["time"] == 0.0 and ev[2]["global_id"] == -1


def test_video_files_decode_with_every_frame(tmp_path):
    s = Sinks(OutputConfig(dir=str(tmp_path), mot=False, events=False, video=True), ["a", "cam/b"],
              video_fps={"a": 5.0})
    run_ticks(s)
    assert s.dropped_video_frames == 0
    assert count_frames(tmp_path / "a.mp4") == 5
    assert count_frames(tmp_path / "cam_b.mp4") == 3
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    ok, img = cap.read()
    assert ok and img.shape == (H, W, 3)
    assert set(s.paths()) == {"video:a", "video:cam/b"}


def test_annotation_draws_boxes_on_a_copy():
    img = np.zeros((H, W, 3), np.uint8)
    t = tracks(0.0, [(1, 3, 10, 20, 40, 80, 0.9, 0, 1), (2, -1, 60, 20, 90, 80, 0.9, 0, 0)])
    rows = snapshot(t, "global_or_local")
    trails = {}
    update_trails(trails, rows, 0.0)
    assert list(trails) == [1]  # tentative tracks get no trail
    out = annotate_frame(img, rows, trails, "both", "a")
    assert img.max() == 0 and out.max() > 0
    assert out[50, 10].any() and not out[50, 60].any()  # confirmed box drawn, tentative not


def test_close_idempotent_and_before_start(tmp_path):
    s = Sinks(OutputConfig(dir=str(tmp_path / "x")), ["a"])
    s.close()
    s.close()
    s.submit([result("a", 1, 0.0, [])], [])  # after close: ignored
    s2 = Sinks(OutputConfig(dir=str(tmp_path / "y")), ["a"])
    s2.start()
    s2.submit([result("a", 1, 0.0, [(1, 1, 0, 0, 5, 5, 0.5, 0, 1)])], [stat("a")])
    s2.close()
    s2.close()
    assert lines(tmp_path / "y" / "a.txt") == ["1,1,0.00,0.00,5.00,5.00,0.500,-1,-1,-1"]
    with pytest.raises(ValueError, match="unknown camera"):
        s3 = Sinks(OutputConfig(dir=str(tmp_path / "z")), ["a"])
        s3.start()
        try:
            s3.submit([result("nope", 1, 0.0, [])], [])
        finally:
            s3.close()


def test_slow_annotation_does_not_block_submit(tmp_path, monkeypatch):
    real = sink_annotate.annotate_frame

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(sink_annotate, "annotate_frame", slow)
    n = 30
    s = Sinks(OutputConfig(dir=str(tmp_path), video=True, queue_size=2), ["a", "b"])
    s.start()
    worst = 0.0
    saw_behind = False
    for f in range(1, n + 1):
        tick = [result(c, f, f / 10, [(1, 1 + k, 10, 10, 40, 70, 0.9, 0, 1)]) for k, c in enumerate("ab")]
        t0 = time.perf_counter()
        s.submit(tick, [])
        worst = max(worst, time.perf_counter() - t0)
        saw_behind = saw_behind or s.behind
        time.sleep(0.002)  # about time: ticks arrive faster than the slow annotation
    s.close()
    assert worst < 0.05, f"submit took {worst * 1000:.1f} ms"
    assert saw_behind
    assert s.dropped_video_frames > 0
    for k, c in enumerate("ab"):
        assert count_frames(tmp_path / f"{c}.mp4") + s.dropped_by_camera[c] == n
        assert [ln.split(",")[:2] for ln in lines(tmp_path / f"{c}.txt")] == [[str(f), str(1 + k)]
                                                                             for f in range(1, n + 1)]


def _submit_until_error(s: Sinks, start: int, timeout: float = 5.0) -> UserError:
    deadline = time.monotonic() + timeout
    f = start
    while time.monotonic() < deadline:
        try:
            s.submit([result("a", f, f / 10, [(1, 1, 0, 0, 5, 5, 0.5, 0, 1)])], [])
        except UserError as exc:
            return exc
        f += 1
        time.sleep(0.02)
    raise AssertionError("no error surfaced on submit")


def _wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("video", [False, True])
def test_output_folder_removed_surfaces_on_submit(tmp_path, video):
    out = tmp_path / "out"
    s = Sinks(OutputConfig(dir=str(out), video=video, mot_delay=0.0), ["a"])
    s.start()
    s.submit([result("a", 1, 0.0, [(1, 1, 0, 0, 5, 5, 0.5, 0, 1)])], [])
    _wait_for(lambda: (out / "a.txt").stat().st_size > 0 and (not video or (out / "a.mp4").exists()))
    shutil.rmtree(out)
    exc = _submit_until_error(s, 2)
    assert "cannot be written" in str(exc) and str(out) in str(exc)
    assert s.error is exc
    with pytest.raises(UserError):
        s.submit([], [])
    s.close()  # does not raise


def test_disk_full_keeps_whole_lines(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = sink_files._os_write

    def flaky(fd, data):
        calls["n"] += 1
        if calls["n"] <= 4:
            return real(fd, data)
        real(fd, bytes(data[: max(1, len(data) // 2)]))  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sink_files, "_os_write", flaky)
    s = Sinks(OutputConfig(dir=str(tmp_path), events=False), ["a"])
    s.start()
    exc = _submit_until_error(s, 1)
    assert "No space left on device" in str(exc) and "a.txt" in str(exc)
    s.close()
    text = (tmp_path / "a.txt").read_text()
    assert text.endswith("\n") and len(lines(tmp_path / "a.txt")) >= 1
    assert all(len(ln.split(",")) == 10 for ln in lines(tmp_path / "a.txt"))


def test_unwritable_output_folder_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot be written"):
        Sinks(OutputConfig(dir=str(tmp_path / "file" / "out")), ["a"]).start()


def test_mot_rows_wait_and_take_the_identity_their_track_holds_then(tmp_path):
    """With a delay, a row is written with the identity its track holds ``mot_delay`` seconds later (here: track 1
    shown by its local id at frame 2, resolved to 7 at frame 3); what is still waiting is written on close."""
    s = Sinks(OutputConfig(dir=str(tmp_path / "out"), mot_delay=0.15), ["a", "cam/b"])
    run_ticks(s)
    assert lines(tmp_path / "out" / "a.txt") == [
        "2,7,11.00,20.00,20.00,40.00,0.910,-1,-1,-1",
        "3,7,12.00,20.00,20.00,40.00,0.920,-1,-1,-1",
        "3,8,50.00,10.00,20.00,40.00,0.700,-1,-1,-1",
        "4,8,51.00,10.00,20.00,40.00,0.750,-1,-1,-1",
        "5,8,52.00,10.00,20.00,40.00,0.760,-1,-1,-1",
    ]
    assert len(lines(tmp_path / "out" / "cam_b.txt")) == 3


def test_delayed_identities_follow_merges_and_never_duplicate_an_id_in_a_frame():
    from tracker.io.sinks.mot import DelayedIdentities
    from tracker.io.sinks.records import Rows

    def rows(tids, gids):
        n = len(tids)
        return Rows(np.array(tids), np.array(gids), np.array(gids), np.tile(np.float32([0, 0, 10, 20]), (n, 1)),
                    np.full(n, 0.9, np.float32), np.arange(n), np.ones(n, bool))

    d = DelayedIdentities(1.0)
    assert d.add(1, 0.0, rows([1, 2], [10, 11])) == ""  # held back
    assert d.add(2, 0.5, rows([1, 2], [10, 11])) == ""
    out = d.add(3, 1.2, rows([1, 2], [10, 10]))  # merged: both tracks hold 10 now (two cameras in real life)
    # frame 1 is due: its two rows would both read 10, so they keep what they showed
    assert [ln.split(",")[:2] for ln in out.splitlines()] == [["1", "10"], ["1", "11"]]
    d = DelayedIdentities(1.0)
    d.add(1, 0.0, rows([1], [11]))
    out = d.add(2, 1.5, rows([1], [10]))  # track 1 was merged into identity 10 before its row was due
    assert out.splitlines()[0].split(",")[:2] == ["1", "10"]
    assert d.flush().splitlines()[0].split(",")[:2] == ["2", "10"]
    assert d.flush() == "" and not d.latest
    d.add(1, 50.0, rows([3], [12]))
    assert d.add(2, 0.5, rows([3], [12])).splitlines()[0].split(",")[:2] == ["1", "12"]  # the clock went back
    assert len(d.pending) == 1
