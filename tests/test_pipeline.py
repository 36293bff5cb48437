"""The live multi-camera pipeline end to end: files, bad inputs, and a real RTSP outage."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import wait_for
from tests.rtsp_server import decode_counter
from tests.test_rtsp import GST, INSTALL_HINT, RtspServer
from tracker.config import RunConfig
from tracker.core.config import from_dict
from tracker.models.detection import FrameDetections
from tracker.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]


def mc_config(data_dir: Path, out: Path, reid: bool = False, **extra) -> RunConfig:
    cams = [{"id": c, "source": str(data_dir / "PETS09-MC" / c / f"{c}.mp4"),
             "detections": str(data_dir / "PETS09-MC" / c / "det" / "det.txt")} for c in ("cam1", "cam2", "cam3")]
    return from_dict(RunConfig, {"cameras": cams, "reid": {"enabled": reid, "providers": ["cpu"]},
                                 "output": {"dir": str(out), **extra}})


def test_three_cameras_from_files_no_frame_lost(tmp_path, data_dir):
    summary = Pipeline(mc_config(data_dir, tmp_path)).run(progress=False)
    assert {c: v["frames"] for c, v in summary["cameras"].items()} == {"cam1": 795, "cam2": 795, "cam3": 398}
    assert all(v["dropped"] == 0 for v in summary["cameras"].values())
    for cam, last in (("cam1", 795), ("cam2", 795), ("cam3", 398)):
        rows = np.loadtxt(tmp_path / f"{cam}.txt", delimiter=",")
        assert rows.shape[1] == 10 and rows[:, 0].max() <= last and len(rows) > 500
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    types = {e["type"] for e in events}
    assert {"track_started", "track_ended", "identity_seen"} <= types
    # Cameras at 7 and 3.5 fps stay aligned in stream time: cam3's frame k is at (k-1)/3.5 s.
    cam3 = [e for e in events if e["camera"] == "cam3"]
    assert all(abs(e["time"] - (e["frame"] - 1) / 3.5) < 1e-6 for e in cam3)


def test_run_command_prints_outputs(tmp_path, data_dir):
    cfg = tmp_path / "mc.yaml"
    mc = data_dir / "PETS09-MC"
    cams = "".join(f"  - {{id: {c}, source: '{mc}/{c}/{c}.mp4', detections: '{mc}/{c}/det/det.txt'}}\n"
                   for c in ("cam1", "cam2"))
    cfg.write_text("cameras:\n" + cams + "reid: {enabled: false}\n")
    r = subprocess.run([sys.executable, str(ROOT / "run.py"), "run", "--config", str(cfg), "--set",
                        f"output.dir={tmp_path / 'out'}", "--max-ticks", "30", "-q"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "cam1: 30 frames" in r.stdout and f"outputs in {tmp_path / 'out'}" in r.stdout
    assert (tmp_path / "out" / "cam1.txt").is_file() and (tmp_path / "out" / "events.jsonl").is_file()


@pytest.mark.parametrize(
    "cams,extra,message",
    [
        ([("a", "{tmp}/missing.mp4")], "", "video file not found"),
        ([("a", "{tmp}/corrupt.mp4")], "", "corrupt"),
        ([("a", "{video}"), ("a", "{video}")], "", "camera id 'a' is used twice"),
        ([("a", "{video}")], "outputz: {{}}\n", "unknown config key(s) 'outputz'"),
        ([("a", "{video}")], "tracker: {{max_age: -1}}\n", "'tracker.max_age': -1.0 is out of range"),
    ],
)
def test_bad_inputs_are_one_clear_line(tmp_path, data_dir, cams, extra, message):
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x01garbage" * 100)
    video = data_dir / "PETS09-MC" / "cam1" / "cam1.mp4"
    fill = {"tmp": tmp_path, "video": video}
    body = "cameras:\n" + "".join(f"  - {{id: {i}, source: '{s.format(**fill)}'}}\n" for i, s in cams)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body + extra.format(**fill))
    cmd = [sys.executable, str(ROOT / "run.py"), "run", "--config", str(cfg), "--set", "reid.enabled=false",
           "--set", "detector.model=/nonexistent.onnx"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr


def test_unreachable_camera_does_not_stop_the_others(tmp_path, data_dir):
    cams = [{"id": "good", "source": str(data_dir / "PETS09-MC" / "cam1" / "cam1.mp4"),
             "detections": str(data_dir / "PETS09-MC" / "cam1" / "det" / "det.txt")},
            {"id": "dead", "source": "rtsp://user:secret@127.0.0.1:9/none", "detections": str(tmp_path / "none.txt"),
             "open_timeout": 0.5, "read_timeout": 0.5}]
    (tmp_path / "none.txt").write_text("")
    cfg = from_dict(RunConfig, {"cameras": cams, "reid": {"enabled": False}, "output": {"dir": str(tmp_path / "o")}})
    summary = Pipeline(cfg).run(progress=False, max_ticks=40)
    assert summary["cameras"]["good"]["frames"] == 40
    assert summary["cameras"]["dead"]["frames"] == 0
    assert "secret" not in (tmp_path / "o" / "events.jsonl").read_text()


class CounterDetector:
    """Test detector for the RTSP server's frames: one 'person' whose box moves with the frame counter.

    Also records every frame it sees, so the test can check that no made-up frame reached it.
    """

    def __init__(self):
        self.counters: list[int | None] = []

    def detect(self, frames):
        out = []
        for img in frames:
            c = decode_counter(img)
            self.counters.append(c)
            x = 40 + (c or 0) % 100
            out.append(FrameDetections(np.array([[x, 100, x + 40, 220]], np.float32), np.array([0.9], np.float32),
                                       np.zeros(1, np.int64)))
        return out


@pytest.mark.slow
@pytest.mark.skipif(not GST, reason=INSTALL_HINT)
def test_rtsp_outage_pipeline_keeps_running(tmp_path):
    server = RtspServer().start()
    try:
        cfg = from_dict(RunConfig, {
            "cameras": [{"id": "live", "source": server.url("admin:hunter2"), "read_timeout": 1.0,
                         "open_timeout": 2.0}],
            "reid": {"enabled": False}, "output": {"dir": str(tmp_path)}, "pipeline": {"status_interval": 0.5}})
        det = CounterDetector()
        pipe = Pipeline(cfg, detector=det)
        reader = pipe.cameras["live"].reader
        result = {}
        t = threading.Thread(target=lambda: result.update(pipe.run(progress=False)))
        t.start()
        try:
            wait_for(lambda: len(det.counters) > 15, 20)
            before = len(det.counters)
            server.kill()
            # Not about how long the outage lasts: down until the reader has seen it and failed to reconnect.
            wait_for(lambda: reader.health().state == "reconnecting" and reader.health().connect_failures >= 1, 20)
            server.start()
            wait_for(lambda: len(det.counters) >= before + 20, 20)
        finally:
            pipe.stop()
            t.join(15)
        assert not t.is_alive()
    finally:
        server.kill()
    assert before > 10, "no frames before the outage"
    assert len(det.counters) >= before + 20, "frames did not resume after the server came back"
    assert None not in det.counters, "a black or damaged frame reached the detector"
    assert len(set(det.counters)) == len(det.counters), "a repeated frame reached the detector"
    assert result["cameras"]["live"]["reconnects"] >= 1
    rows = np.loadtxt(tmp_path / "live.txt", delimiter=",", ndmin=2)
    assert rows[:, 0].max() > before + 10  # tracks were written after the outage too
    assert "hunter2" not in (tmp_path / "events.jsonl").read_text()
