"""Fault injection for long unattended runs ("Runs for weeks"): outages, frozen cameras, bad input, dead sinks.

Each test injects one fault into a real run and checks that the pipeline survives it, reports it
once and leaves complete outputs. RTSP faults use the GStreamer server of ``tests/rtsp_server.py``
(skipped, with the install hint, only where it is missing). Outages are 1 s and 10 s (the person
in view keeps their identity) and 60 s (about a minute of the suite's time: the reader retries
every second, its backoff cap, and a file camera beside it must not slow down meanwhile). The
outages and the freeze are marked ``slow``: they are about time and cannot be shortened.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from streams import SourceReader, open_source
from tests.conftest import wait_until
from tests.rtsp_server import MjpegServer, decode_counter, draw
from tests.test_rtsp import FPS, GST, INSTALL_HINT, RtspServer
from tracker.config import RunConfig
from tracker.core.config import TrackerConfig, from_dict
from tracker.core.ids import IdAllocator
from tracker.core.tracker import CameraTracker
from tracker.core.types import Detections
from tracker.models.detection import FrameDetections
from tracker.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
needs_gst = pytest.mark.skipif(not GST, reason=INSTALL_HINT)
RECONNECT_WITHIN = 2.0  # s from the server's return to the first frame reaching the tracker (the bound)


class StillPersonDetector:
    """One 'person' standing almost still (drifting 0.05 px per served frame) on every real server frame.

    Records, per call, the decoded frame counter and when the frame reached the detector.
    """

    def __init__(self):
        self.counters: list[int | None] = []
        self.times: list[float] = []

    def detect(self, frames):
        out = []
        for img in frames:
            c = decode_counter(img)
            self.counters.append(c)
            self.times.append(time.monotonic())
            x = 100.0 + 0.05 * ((c or 0) % 1000)
            out.append(FrameDetections(np.array([[x, 90, x + 40, 210]], np.float32), np.array([0.9], np.float32),
                                       np.zeros(1, np.int64)))
        return out


def _wait(cond, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _start(pipe: Pipeline) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def target():
        try:
            result.update(pipe.run(progress=False))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            result["exception"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, result


def _mot_rows(path: Path) -> np.ndarray:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"{path.name}: last line incomplete"
    rows = np.loadtxt(path, delimiter=",", ndmin=2) if text else np.zeros((0, 10))
    assert rows.shape[1] == 10, rows.shape
    return rows


def _events(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "events.jsonl: last line incomplete"
    return [json.loads(line) for line in text.splitlines()]  # every line valid JSON


def _check_boxes(rows: np.ndarray) -> None:
    assert np.isfinite(rows).all(), "NaN or inf in the tracker output"
    assert (rows[:, 4] > 0).all() and (rows[:, 5] > 0).all(), "a box of non-positive size in the output"


# ---------------------------------------------------------------------------------------------
# 1. RTSP server down for 1 s / 10 s, then back on the same port


@needs_gst
@pytest.mark.slow  # about time: an outage of 1 s / 10 s, then a reconnect within 2 s
@pytest.mark.parametrize("outage", [1.0, 10.0], ids=["1s", "10s"])
def test_rtsp_server_restart_reconnects_within_2s_and_keeps_identity(tmp_path, outage):
    server = RtspServer().start()
    det = StillPersonDetector()
    # Camera timeouts and the reader's backoff are the defaults a deployment gets.
    cfg = from_dict(RunConfig, {"cameras": [{"id": "live", "source": server.url()}], "reid": {"enabled": False},
                                "output": {"dir": str(tmp_path)}, "pipeline": {"status_interval": 0}})
    pipe = Pipeline(cfg, detector=det)
    reader = pipe.cameras["live"].reader
    t, result = _start(pipe)
    try:
        assert _wait(lambda: len(det.times) >= 30, 20), f"no frames before the outage: {reader.health()}"
        index_before = reader.health().frames_in
        server.kill()
        killed = time.monotonic()
        time.sleep(outage)  # about time: the server stays down this long
        server.start()
        restarted = time.monotonic()
        index_restart = reader.health().frames_in
        n_restart = len(det.times)
        came_back = _wait(lambda: len(det.times) > n_restart, 25)
        _wait(lambda: len(det.times) >= n_restart + 20, 5)  # some frames after the outage for the identity check
        alive = t.is_alive()
    finally:
        pipe.stop()
        t.join(20)
        server.kill()
    assert alive and not t.is_alive() and "exception" not in result, result
    assert came_back, f"no frame within 25 s of the server's return: {reader.health()}"
    delay = det.times[n_restart] - restarted
    down = restarted - killed
    assert None not in det.counters, "a blank or damaged frame reached the detector"
    assert result["cameras"]["live"]["reconnects"] >= 1
    rows = _mot_rows(tmp_path / "live.txt")
    before = set(rows[rows[:, 0] <= index_before, 1].astype(int).tolist())
    after = set(rows[rows[:, 0] > index_restart, 1].astype(int).tolist())
    facts = (f"outage {down:.1f} s (kill to server ready), first frame {delay:.2f} s after the server was back, "
             f"ids before {sorted(before)}, after {sorted(after)}")
    print(facts)
    assert len(before) == 1 and after == before, f"the person's identity changed over the outage: {facts}"
    assert delay <= RECONNECT_WITHIN, f"reconnect too slow: {facts}"


@needs_gst
@pytest.mark.slow  # a 60 s outage: about time
def test_rtsp_server_down_60s_reconnects_within_2s_while_a_file_camera_runs(tmp_path, data_dir, caplog):
    caplog.set_level(logging.INFO)
    server = RtspServer().start()
    det = StillPersonDetector()
    cam1 = data_dir / "PETS09-MC" / "cam1"  # 795 frames at 7 fps: plays for 113 s
    cfg = from_dict(RunConfig, {
        "cameras": [{"id": "live", "source": server.url()},
                    {"id": "file", "source": str(cam1 / "cam1.mp4"), "detections": str(cam1 / "det" / "det.txt"),
                     "pace": True}],
        "reid": {"enabled": False}, "output": {"dir": str(tmp_path)}, "pipeline": {"status_interval": 0}})
    pipe = Pipeline(cfg, detector=det)
    live, file_cam = pipe.cameras["live"], pipe.cameras["file"]
    t, result = _start(pipe)
    outage = 60.0
    samples: list[tuple[float, int]] = []
    try:
        assert _wait(lambda: len(det.times) >= 30, 20), f"no frames before the outage: {live.reader.health()}"
        server.kill()
        killed = time.monotonic()
        while time.monotonic() - killed < outage:  # about time: the file camera's rate over the outage
            samples.append((time.monotonic(), file_cam.frames_done))
            time.sleep(0.05)
        down_health = live.reader.health()
        server.start()
        restarted = time.monotonic()
        n_restart = len(det.times)
        came_back = _wait(lambda: len(det.times) > n_restart, 25)
        alive = t.is_alive()
    finally:
        pipe.stop()
        t.join(20)
        server.kill()
    assert alive and not t.is_alive() and "exception" not in result, result
    assert came_back, f"no frame within 25 s of the server's return: {live.reader.health()}"
    delay = det.times[n_restart] - restarted
    times = np.array([s[0] for s in samples])
    done = np.array([s[1] for s in samples])
    changes = times[np.flatnonzero(np.diff(done) > 0) + 1]
    longest = float(np.diff(np.concatenate([[times[0]], changes, [times[-1]]])).max())
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and r.getMessage().startswith("camera live")]
    print(f"outage {restarted - killed:.1f} s: {down_health.reconnects} reconnection attempts, "
          f"{len(warnings)} warning lines; first frame {delay:.2f} s after the server was back; file camera "
          f"{int(done[-1] - done[0])} frames during the outage (7 fps paced), longest gap {longest:.2f} s")
    assert None not in det.counters, "a blank or damaged frame reached the detector"
    assert down_health.state == "reconnecting" and down_health.reconnects >= 30, down_health
    assert 1 <= len(warnings) <= 2, f"the outage should be logged once (and once a minute): {warnings}"
    assert done[-1] - done[0] >= 0.8 * 7 * outage, "the file camera slowed down during the outage"
    assert longest < 1.0, f"the file camera stalled for {longest:.2f} s"
    assert delay <= RECONNECT_WITHIN, f"reconnect too slow: {delay:.2f} s"


# ---------------------------------------------------------------------------------------------
# 2. A frozen camera (connection open, no frames) next to a file camera


@needs_gst
@pytest.mark.slow  # about time: a 4 s freeze, and the paced file camera's rate over it
def test_frozen_rtsp_camera_does_not_stall_the_file_camera(tmp_path, data_dir, caplog):
    caplog.set_level(logging.INFO)
    server = RtspServer().start()
    cam1 = data_dir / "PETS09-MC" / "cam1"
    cfg = from_dict(RunConfig, {
        "cameras": [{"id": "file", "source": str(cam1 / "cam1.mp4"), "detections": str(cam1 / "det" / "det.txt"),
                     "pace": True},
                    {"id": "frozen", "source": server.url(), "read_timeout": 1.0, "open_timeout": 1.0}],
        "reid": {"enabled": False}, "output": {"dir": str(tmp_path)}, "pipeline": {"status_interval": 0}})
    pipe = Pipeline(cfg, detector=StillPersonDetector())
    file_cam, frozen = pipe.cameras["file"], pipe.cameras["frozen"]
    t, result = _start(pipe)
    freeze_for = 4.0
    samples: list[tuple[float, int]] = []
    states: set[str] = set()
    errors: set[str] = set()
    try:
        assert _wait(lambda: frozen.frames_done >= 15, 20), frozen.reader.health()
        caplog.clear()
        server.freeze()
        frozen_at = time.monotonic()
        frozen_frames = frozen.frames_done
        while time.monotonic() - frozen_at < freeze_for:  # about time: the file camera's rate over the freeze
            samples.append((time.monotonic(), file_cam.frames_done))
            h = frozen.reader.health()
            states.add(str(h.state))
            errors.add(h.last_error or "")
            time.sleep(0.02)
        health = frozen.reader.health()
        warnings = [r.getMessage() for r in caplog.records
                    if r.levelno >= logging.WARNING and "frozen" in r.getMessage()]
        server.thaw()
        recovered = _wait(lambda: frozen.frames_done > frozen_frames + 5, 20)
    finally:
        pipe.stop()
        t.join(20)
        server.kill()
    assert not t.is_alive() and "exception" not in result, result
    times = np.array([s[0] for s in samples])
    done = np.array([s[1] for s in samples])
    ticks = int(done[-1] - done[0])
    changes = times[np.flatnonzero(np.diff(done) > 0) + 1]
    longest = float(np.diff(np.concatenate([[times[0]], changes, [times[-1]]])).max())
    print(f"file camera: {ticks} frames in the {freeze_for:.0f} s freeze (7 fps paced), longest gap {longest:.2f} s; "
          f"frozen camera: states {sorted(states)}, reconnects {health.reconnects}, warnings {warnings}")
    assert ticks >= 0.8 * 7 * freeze_for, f"the file camera slowed down: {ticks} frames in {freeze_for} s"
    assert longest < 0.6, f"the file camera stalled for {longest:.2f} s"
    assert "reconnecting" in states and health.reconnects >= 1, health
    assert any("stalled" in e for e in errors), errors
    assert len(warnings) == 1, f"one frozen camera, {len(warnings)} warning lines: {warnings}"
    assert recovered, "the camera did not come back after the server resumed"


# ---------------------------------------------------------------------------------------------
# 3. Timestamps jumping backwards (a camera clock reset), fed to the tracker directly


def test_timestamps_jumping_backwards_keep_tracks_and_warn_once(caplog):
    caplog.set_level(logging.WARNING, logger="tracker.core.tracker")
    cfg = TrackerConfig()
    trk = CameraTracker(cfg, IdAllocator())
    fps, jump = 10.0, 60.0
    walker_ids, ghost_rows_after = set(), []

    def step(t: float, k: int, ghost: bool):
        x = 100 + 2.0 * k  # 20 px/s to the right
        boxes = [[x, 100, x + 50, 220]] + ([[400, 100, 450, 220]] if ghost else [])
        out = trk.update(Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32), t, None, k))
        assert np.isfinite(out.tlbr).all()
        return out

    k = 0
    for i in range(30):  # 0 .. 2.9 s: a walker and a second person who then leaves
        out = step(i / fps, k, ghost=True)
        k += 1
    walker = int(out.track_ids[np.argmin(out.tlbr[:, 0])])
    ghost = int(out.track_ids[np.argmax(out.tlbr[:, 0])])
    t0 = 29 / fps - jump  # the camera clock jumps back by 60 s
    n_after = int((cfg.max_age + 2.0) * fps)
    for i in range(n_after):
        out = step(t0 + i / fps, k, ghost=False)
        k += 1
        matched = out.det_index >= 0
        walker_ids |= set(out.track_ids[matched & out.confirmed].tolist())
        if i / fps > cfg.max_age + 1.0:
            ghost_rows_after.extend(out.track_ids[out.track_ids == ghost].tolist())
    warnings = [r for r in caplog.records if "backwards" in r.getMessage()]
    print(f"{len(warnings)} warning lines for one {jump:.0f} s jump back over {n_after} frames; "
          f"the person who left before the jump still reported {len(ghost_rows_after)} times > max_age after it")
    problems = []
    if walker_ids != {walker}:
        problems.append(f"the walker's track did not continue: {walker_ids} vs {walker}")
    if len(warnings) != 1:
        problems.append(f"one jump back logged {len(warnings)} times (want once)")
    if ghost_rows_after:
        problems.append(f"a track lost before the jump is still reported {len(ghost_rows_after)} times "
                        f"more than max_age={cfg.max_age:g} s after it")
    assert not problems, "; ".join(problems)


# ---------------------------------------------------------------------------------------------
# 4. Detection files with bad rows

# One good person on frames 1..40, plus bad rows: (frame, left, top, w, h, score, kind)
BAD_ROWS = [
    (3, "nan", 100, 40, 100, 0.9, "invalid"),
    (4, 100, 100, 40, 100, "nan", "invalid"),
    (5, 100, 100, -40, 100, 0.9, "invalid"),
    (6, 100, 100, 40, 0, 0.9, "invalid"),
    (7, 100, 100, "inf", 100, 0.9, "invalid"),
    (1, 1e39, 100, 40, 100, 0.9, "invalid"),  # finite as float64, inf as float32 (frame 1: born confirmed)
    (1, 3e38, 3e38, 3e38, 3e38, 0.9, "invalid"),  # right/bottom overflow float32
    (11, 150, 300, 40, 100, 1.7, "score"),
    (12, 150, 300, 40, 100, -0.3, "score"),
    (13, 150, 300, 40, 100, 42.0, "score"),
]
GHOST = (5000, 5000, 40, 100, 0.95)  # entirely outside the 352x576 frame, on every frame: would become a track


def _bad_detection_file(path: Path, ghost: bool) -> None:
    lines = []
    for f in range(1, 41):
        lines.append(f"{f},-1,{200 + f},{150},{40},{110},0.95,-1,-1,-1")
        if ghost:
            lines.append(f"{f},-1,{GHOST[0]},{GHOST[1]},{GHOST[2]},{GHOST[3]},{GHOST[4]},-1,-1,-1")
    for f, left, top, w, h, s, _ in BAD_ROWS:
        lines.append(f"{f},-1,{left},{top},{w},{h},{s},-1,-1,-1")
    path.write_text("\n".join(lines) + "\n")


N_INVALID = sum(r[-1] == "invalid" for r in BAD_ROWS)
N_SCORES = sum(r[-1] == "score" for r in BAD_ROWS)


def _bad_rows_problems(rows: np.ndarray, log_text: str) -> list[str]:
    """Everything wrong with a run over BAD_ROWS (empty when the rows were rejected or clipped and counted)."""
    problems = []
    if not np.isfinite(rows).all():
        problems.append(f"NaN/inf in the output: {rows[~np.isfinite(rows).all(axis=1)][:3].tolist()}")
    if not ((rows[:, 4] > 0) & (rows[:, 5] > 0)).all():
        problems.append("a box of non-positive size in the output")
    if len(rows) and not (0.0 <= np.nanmin(rows[:, 6]) and np.nanmax(rows[:, 6]) <= 1.0):
        problems.append("a score outside 0..1 in the output")
    warn = [line for line in log_text.splitlines() if "WARNING" in line]
    if not any(re.search(rf"\b{N_INVALID}\b", w) and "invalid" in w for w in warn):
        problems.append(f"no warning counting the {N_INVALID} invalid rows (NaN/inf incl. float32 overflow, "
                        f"non-positive size): {warn}")
    if not any(re.search(rf"\b{N_SCORES}\b", w) and "score" in w for w in warn):
        problems.append(f"no warning counting the {N_SCORES} scores outside 0..1 (clipped silently)")
    return problems


def test_bad_detection_rows_through_run_track(tmp_path):
    dets = tmp_path / "det.txt"
    _bad_detection_file(dets, ghost=False)
    out = tmp_path / "out.txt"
    r = subprocess.run([sys.executable, str(ROOT / "run.py"), "track", "--dets", str(dets), "--out", str(out),
                        "--fps", "7", "-q"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    print(r.stderr)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    rows = _mot_rows(out)
    assert len(rows) > 20
    problems = _bad_rows_problems(rows, r.stderr)
    assert not problems, "; ".join(problems)


def test_bad_detection_rows_through_the_pipeline(tmp_path, data_dir, caplog):
    caplog.set_level(logging.INFO)
    dets = tmp_path / "det.txt"
    _bad_detection_file(dets, ghost=True)
    video = data_dir / "PETS09-MC" / "cam1" / "cam1.mp4"  # 352x576
    cfg = from_dict(RunConfig, {"cameras": [{"id": "cam", "source": str(video), "detections": str(dets)}],
                                "reid": {"enabled": False}, "output": {"dir": str(tmp_path / "o")}})
    summary = Pipeline(cfg).run(progress=False, max_ticks=40)
    assert summary["cameras"]["cam"]["frames"] == 40
    rows = _mot_rows(tmp_path / "o" / "cam.txt")
    assert len(rows) > 20
    log_text = "\n".join(f"{r.levelname} {r.getMessage()}" for r in caplog.records)
    print(log_text)
    problems = _bad_rows_problems(rows, log_text)
    with np.errstate(invalid="ignore"):
        inside = (rows[:, 2] < 352) & (rows[:, 3] < 576) & (rows[:, 2] + rows[:, 4] > 0) & (rows[:, 3] + rows[:, 5] > 0)
    if not inside.all():
        problems.append(f"{int((~inside).sum())} rows with boxes entirely outside the 352x576 frame were written, "
                        f"e.g. {rows[~inside][:2].tolist()}")
    if not any("outside" in line and "WARNING" in line for line in log_text.splitlines()):
        problems.append("boxes outside the frame were not counted in the log")
    assert not problems, "; ".join(problems)


# ---------------------------------------------------------------------------------------------
# 5. A sink that cannot write; SIGTERM


def _cli_config(tmp_path: Path, data_dir: Path, cams=("cam1",)) -> Path:
    mc = data_dir / "PETS09-MC"
    body = "".join(f"  - {{id: {c}, source: '{mc}/{c}/{c}.mp4', detections: '{mc}/{c}/det/det.txt', pace: true}}\n"
                   for c in cams)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("cameras:\n" + body + "reid: {enabled: false}\npipeline: {status_interval: 0}\n")
    return cfg


def _written(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def test_output_folder_removed_mid_run_stops_with_one_error_line(tmp_path, data_dir):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "run.py"), "run", "--config", str(_cli_config(tmp_path, data_dir)),
           "--set", f"output.dir={out}", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_until(lambda: all(_written(out / name) for name in ("cam1.txt", "events.jsonl")), 60,
                   what="the run to start writing its outputs")

        removed = {}

        def remove():
            shutil.rmtree(out)
            removed["at"] = time.monotonic()

        th = threading.Thread(target=remove)
        th.start()
        th.join()
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - removed["at"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"exit {proc.returncode} {took:.1f} s after the folder was removed; stderr:\n{stderr}")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, (proc.returncode, stderr)
    assert len(errors) == 1 and "cannot be written" in errors[0], stderr
    assert "Traceback" not in stderr
    assert took < 10


def test_sigterm_exits_cleanly_with_complete_outputs(tmp_path, data_dir):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "run.py"), "run", "--config",
           str(_cli_config(tmp_path, data_dir, ("cam1", "cam3"))), "--set", f"output.dir={out}", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_until(lambda: all(_written(out / name) for name in ("cam1.txt", "cam3.txt", "events.jsonl")), 60,
                   what="the run to write rows for both cameras and events")
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"exit {proc.returncode} {took:.2f} s after SIGTERM\n{stdout}")
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert stdout.startswith("stopped:"), stdout
    assert took < 5
    for cam in ("cam1", "cam3"):
        rows = _mot_rows(out / f"{cam}.txt")
        assert len(rows) > 0
        _check_boxes(rows)
    events = _events(out / "events.jsonl")
    started = {(e["camera"], e["track_id"]) for e in events if e["type"] == "track_started"}
    ended = {(e["camera"], e["track_id"]) for e in events if e["type"] == "track_ended"}
    assert started and started == ended, "every started track ends (removed, or at shutdown)"
    assert any(e.get("reason") == "shutdown" for e in events)


# ---------------------------------------------------------------------------------------------
# 6. An exception inside one camera's source


def _raise_after(reader, n: int):
    real = reader.get
    calls = {"n": 0}

    def get(timeout=None):
        calls["n"] += 1
        if calls["n"] > n:
            raise RuntimeError("simulated decoder crash")
        return real(timeout)

    return get


def test_exception_in_one_camera_source_closes_outputs(tmp_path, data_dir, monkeypatch):
    mc = data_dir / "PETS09-MC"
    cams = [{"id": c, "source": str(mc / c / f"{c}.mp4"), "detections": str(mc / c / "det" / "det.txt")}
            for c in ("cam1", "cam3")]
    cfg = from_dict(RunConfig, {"cameras": cams, "reid": {"enabled": False}, "output": {"dir": str(tmp_path)}})
    pipe = Pipeline(cfg)
    reader = pipe.cameras["cam3"].reader
    monkeypatch.setattr(reader, "get", _raise_after(reader, 20))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any type, as long as the cause is reported
        pipe.run(progress=False)
    assert "simulated decoder crash" in f"{caught.value} {caught.value.__cause__}"
    # What was tracked before the error is flushed and closed, and every track ended.
    assert pipe.sinks._closed and all(f.fd == -1 for f in pipe.sinks.text_outputs[0].files.values())
    for c in ("cam1", "cam3"):
        _check_boxes(_mot_rows(tmp_path / f"{c}.txt"))
    events = _events(tmp_path / "events.jsonl")
    started = {(e["camera"], e["track_id"]) for e in events if e["type"] == "track_started"}
    ended = {(e["camera"], e["track_id"]) for e in events if e["type"] == "track_ended"}
    assert started and started == ended
    assert all(c.reader.health().state in ("finished", "failed") for c in pipe.cameras.values())


CRASH_WRAPPER = """
import sys
import run
import streams.reader as r

real = r.SourceReader.get
calls = {"n": 0}

def get(self, timeout=None):
    if self.camera_id == "cam3":
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("simulated decoder crash")
    return real(self, timeout)

r.SourceReader.get = get
sys.exit(run.main(sys.argv[1:]))
"""


def test_exception_in_one_camera_source_is_one_error_line_from_the_cli(tmp_path, data_dir):
    mc = data_dir / "PETS09-MC"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("cameras:\n" + "".join(
        f"  - {{id: {c}, source: '{mc}/{c}/{c}.mp4', detections: '{mc}/{c}/det/det.txt'}}\n" for c in ("cam1", "cam3"))
        + "reid: {enabled: false}\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", CRASH_WRAPPER, "run", "--config", str(cfg), "--set",
                        f"output.dir={out}", "-q"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    print(f"exit {r.returncode}; stderr:\n{r.stderr[-3000:]}")
    for c in ("cam1", "cam3"):  # outputs flushed and complete
        _check_boxes(_mot_rows(out / f"{c}.txt"))
    _events(out / "events.jsonl")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode != 0
    assert len(errors) == 1 and "cam3" in errors[0] and "simulated decoder crash" in errors[0], r.stderr
    assert "Traceback" not in r.stderr, "an error in one camera's source ends the run with a traceback"


# ---------------------------------------------------------------------------------------------
# 7. Corrupt data: an HTTP camera sending broken JPEGs, a server speaking garbage, a damaged video file


def _damage(counter: int, jpeg: bytes) -> bytes:
    """Every 4th frame broken, in turn: random bytes, the first 40 % of the JPEG (no end marker), an empty part."""
    if counter % 4 != 2:
        return jpeg
    kind = (counter // 4) % 3
    if kind == 0:
        return np.random.default_rng(counter).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    if kind == 1:
        return jpeg[: len(jpeg) * 2 // 5]
    return b""


@pytest.mark.slow
def test_http_camera_sending_corrupt_frames_keeps_running_and_logs_once(tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO)
    server = MjpegServer(fps=FPS, frames_per_connection=100_000, damage=_damage)
    det = StillPersonDetector()
    cfg = from_dict(RunConfig, {"cameras": [{"id": "shop", "source": server.url()}], "reid": {"enabled": False},
                                "output": {"dir": str(tmp_path)}, "pipeline": {"status_interval": 0}})
    pipe = Pipeline(cfg, detector=det)
    reader = pipe.cameras["shop"].reader
    t, result = _start(pipe)
    try:
        enough = _wait(lambda: len(det.counters) >= 30, 20)
        alive = t.is_alive()
        health = reader.health()
    finally:
        pipe.stop()
        t.join(20)
        server.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    err = capfd.readouterr().err
    print(f"{len(det.counters)} frames tracked, {health.frames_corrupt} corrupt frames skipped, "
          f"{health.reconnects} reconnects, warnings: {warnings}")
    assert alive and not t.is_alive() and "exception" not in result, result
    assert enough, f"too few good frames: {health}"
    assert None not in det.counters, "a damaged frame reached the detector"
    assert not [c for c in det.counters if c % 4 == 2], "a frame the camera broke reached the detector"
    assert health.frames_corrupt >= 8 and health.reconnects == 0, health
    assert len(warnings) == 1 and "corrupt" in warnings[0], warnings
    rows = _mot_rows(tmp_path / "shop.txt")
    assert len(rows) and set(rows[:, 1].astype(int).tolist()) == {int(rows[0, 1])}, "the person's id changed"
    assert "Corrupt JPEG" not in err  # truncated JPEGs never reach the JPEG decoder (libjpeg would print)


@pytest.mark.parametrize("scheme,reply", [
    ("rtsp", b"\x00\xffSPEAKING GARBAGE\r\n\r\n" * 20),
    ("http", b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
             b"--frame\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8garbage, not a picture\r\n" * 20),
], ids=["rtsp", "http"])
def test_server_speaking_garbage_is_retried_and_logged_once(scheme, reply, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    listener = socket.create_server(("127.0.0.1", 0))
    served = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                served.append(1)
                try:
                    conn.recv(4096)
                    conn.sendall(reply)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/cam"
    reader = open_source("junk", url, open_timeout=1, read_timeout=1, reconnect_max_backoff=0.2)
    try:
        tried = _wait(lambda: reader.health().reconnects >= 3, 10)
        health = reader.health()
        got = [reader.get(0.0) for _ in range(3)]
    finally:
        reader.close()
        listener.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    err = capfd.readouterr().err
    print(f"{health.reconnects} reconnects over {len(served)} connections: {health.last_error}; warnings {warnings}")
    assert tried, health
    assert health.frames_in == 0 and got == [None] * 3 and health.state == "reconnecting", health
    # One line for the failing connection (the retries log at DEBUG); the HTTP one also says its JPEG was corrupt.
    assert sum("reconnecting" in w for w in warnings) == 1 and len(warnings) == (2 if scheme == "http" else 1), \
        warnings
    assert "WARN" not in err and "cap.cpp" not in err, f"OpenCV/FFmpeg printed on every retry: {err[-500:]}"


def _counter_video(path: Path, frames: int, fps: float = 10.0) -> list[tuple[int, int]]:
    """An MJPEG AVI whose frame n (1-based) shows counter n - 1; returns (offset, size) of each frame's JPEG."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (320, 240))
    for c in range(frames):
        writer.write(cv2.cvtColor(np.frombuffer(draw(c, 320, 240), np.uint8).reshape(240, 320), cv2.COLOR_GRAY2BGR))
    writer.release()
    data = path.read_bytes()
    chunks, pos = [], data.find(b"movi")
    while (pos := data.find(b"00dc", pos + 4)) >= 0:
        if data[pos + 8:pos + 10] == b"\xff\xd8":
            chunks.append((pos + 8, int.from_bytes(data[pos + 4:pos + 8], "little")))
    assert len(chunks) == frames
    return chunks


def test_corrupt_and_truncated_video_file(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    path = tmp_path / "damaged.avi"
    chunks = _counter_video(path, 40)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for n in (13, 21):  # frames 13 and 21: their JPEG data overwritten with noise
        off, size = chunks[n - 1]
        data[off:off + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    off, size = chunks[33]  # cut in the middle of frame 34
    path.write_bytes(bytes(data[:off + size // 2]))
    reader = SourceReader("file", str(path)).open()
    frames = list(reader)
    health = reader.health()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    index = [f.index for f in frames]
    counters = [decode_counter(f.image) for f in frames]
    print(f"delivered frames {index}; {health.frames_corrupt} corrupt; warnings {warnings}")
    assert None not in counters, "a damaged frame was delivered"
    assert [c + 1 for c in counters] == index, "frame numbers no longer match the file's (detection files)"
    assert set(range(1, 34)) - set(index) == {13, 21}, "frames after a corrupt one were lost"
    assert max(index) <= 34 and health.frames_corrupt == 2 and health.state == "finished", health
    assert len(warnings) == 2, warnings  # the corrupt frames once, the truncation once
    assert "corrupt" in warnings[0] and "40" in warnings[1] and "truncated" in warnings[1], warnings

