"""Accuracy gate: the full offline path (crops from the video, OSNet, tracker, trackeval) on PETS09-S2L1
must stay at or above the stored floors for both detection sets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.scoring.mot import evaluate_files

ROOT = Path(__file__).resolve().parents[1]
FLOORS = json.loads((Path(__file__).parent / "accuracy_floors.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("dets", ["det.txt", "det_yolov8n.txt"])
def test_pets09_accuracy_floor(tmp_path, pets, reid_model, dets):
    out = tmp_path / "PETS09-S2L1.txt"
    cmd = [sys.executable, str(ROOT / "run.py"), "track", "--dets", str(pets / "det" / dets), "--video",
           str(pets / "video" / "vtest.avi"), "--fps", "7", "--reid", str(reid_model), "--providers", "cpu",
           "--out", str(out), "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = evaluate_files({"PETS09-S2L1": pets / "gt" / "gt.txt"}, {"PETS09-S2L1": out})["PETS09-S2L1"]
    print(f"{dets}: HOTA {res['HOTA']:.2f} IDF1 {res['IDF1']:.2f} MOTA {res['MOTA']:.2f} IDSW {res['IDSW']}")
    floor = FLOORS[dets]
    assert res["HOTA"] >= floor["HOTA"], f"HOTA {res['HOTA']:.2f} below floor {floor['HOTA']}"
    assert res["IDF1"] >= floor["IDF1"], f"IDF1 {res['IDF1']:.2f} below floor {floor['IDF1']}"
