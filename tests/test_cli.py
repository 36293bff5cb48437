"""The command-line interface as a user meets it: outputs, progress, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_track_motion_only_and_eval(tmp_path, pets, data_dir):
    out = tmp_path / "res" / "PETS09-S2L1.txt"
    r = run_cli("track", "--dets", str(pets / "det" / "det_yolov8n.txt"), "--out", str(out), "--fps", "7", "-q")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and str(out) in r.stdout
    rows = np.loadtxt(out, delimiter=",")
    assert rows.shape[1] == 10 and (rows[:, 7:] == -1).all()
    assert rows[:, 0].min() >= 1 and rows[:, 0].max() <= 795
    r = run_cli("eval", "--gt-root", str(data_dir), "--results", str(out.parent))
    assert r.returncode == 0, r.stderr
    assert "PETS09-S2L1" in r.stdout and "COMBINED" in r.stdout and "HOTA" in r.stdout


def test_track_runs_the_pipeline_and_matches_the_in_process_replay(tmp_path, pets):
    """One engine: `track` (the live pipeline on one camera) and the benchmarks' in-process replay write the
    same rows (same CameraTracker, same timestamps (f - 1) / fps)."""
    from tracker.core.config import TrackerConfig
    from tracker.io.motio import read_mot_detections, write_mot_results
    from tracker.offline import track_sequence

    dets = pets / "det" / "det.txt"
    out = tmp_path / "cli.txt"
    r = run_cli("track", "--dets", str(dets), "--out", str(out), "--fps", "7", "-q")
    assert r.returncode == 0, r.stderr
    write_mot_results(tmp_path / "replay.txt", track_sequence(read_mot_detections(dets), 7.0, TrackerConfig()))
    assert out.read_text() == (tmp_path / "replay.txt").read_text()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind


def test_eval_gt_against_itself_is_100(tmp_path, pets, data_dir):
    res = tmp_path / "res"
    res.mkdir()
    (res / "PETS09-S2L1.txt").write_text((pets / "gt" / "gt.txt").read_text())
    r = run_cli("eval", "--gt-root", str(data_dir), "--results", str(res), "--seqs", "PETS09-S2L1")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("PETS09-S2L1"))
    assert line.split()[1:6] == ["100.00"] * 5


def test_track_with_reid_on_frames_folder(tmp_path, data_dir, reid_model):
    seq = data_dir / "MOT17-mini" / "MOT17-04-FRCNN"
    out = tmp_path / "MOT17-04-FRCNN.txt"
    r = run_cli("track", "--dets", str(seq / "det" / "det.txt"), "--frames", str(seq / "img1"), "--fps", "30",
                "--reid", str(reid_model), "--out", str(out), "--providers", "cpu")
    assert r.returncode == 0, r.stderr
    assert "CPUExecutionProvider" in r.stderr and "embedded" in r.stderr
    assert out.read_text().count("\n") > 10


@pytest.mark.parametrize(
    "args,message",
    [
        (["track", "--dets", "nope.txt", "--out", "x.txt", "--fps", "7"], "detection file not found: nope.txt"),
        (["track", "--dets", "{det}", "--out", "{tmp}/x.txt", "--fps", "0"], "--fps must be positive"),
        (["track", "--dets", "{det}", "--out", "{tmp}/x.txt", "--fps", "7", "--video", "missing.avi",
          "--reid", "{reid}"], "video file not found: missing.avi"),
        (["track", "--dets", "{det}", "--out", "{tmp}/x.txt", "--fps", "7", "--video", "{video}",
          "--reid", "no_such_model"], "model 'no_such_model' not found"),
        (["track", "--dets", "{det}", "--out", "{tmp}/x.txt", "--fps", "7", "--config", "{tmp}/bad.yaml"],
         "unknown config key(s) 'max_agee'"),
        (["eval", "--gt-root", "{data}", "--results", "{tmp}", "--seqs", "PETS09-S2L1"], "not found"),
    ],
)
def test_user_errors_are_one_line(tmp_path, pets, data_dir, reid_model, args, message):
    (tmp_path / "bad.yaml").write_text("tracker:\n  max_agee: 3\n")
    fill = {"det": pets / "det" / "det.txt", "tmp": tmp_path, "reid": reid_model, "video": pets / "video" / "vtest.avi",
            "data": data_dir}
    r = run_cli(*[a.format(**fill) for a in args])
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and message in err[0], r.stderr


def test_config_command_lists_every_option():
    r = run_cli("config", "--config", str(ROOT / "configs" / "default.yaml"))
    assert r.returncode == 0, r.stderr
    assert "tracker.kalman.std_measurement" in r.stdout and "tracker.max_age" in r.stdout


def test_config_command_never_prints_secrets(tmp_path):
    cfg = tmp_path / "site.yaml"
    cfg.write_text('cameras:\n  - {id: a, source: "rtsp://bob:hunter2@10.0.0.1/stream"}\n'
                   "output: {http_token: tok123, http_user: admin, http_password: pw999}\n")
    r = run_cli("config", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    for secret in ("hunter2", "tok123", "pw999"):
        assert secret not in r.stdout + r.stderr
    assert "rtsp://***@10.0.0.1/stream" in r.stdout
