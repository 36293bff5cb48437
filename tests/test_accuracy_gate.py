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


MOT15_DEV_SEQS = ("ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "Venice-2")


def _fold_config(path: Path, params: dict) -> Path:
    """A ``run.py track`` YAML config holding one fold's chosen parameters (``kalman.x`` keys nested)."""
    import yaml

    tracker: dict = {}
    for key, value in params.items():
        if key.startswith("kalman."):
            tracker.setdefault("kalman", {})[key.split(".", 1)[1]] = value
        else:
            tracker[key] = value
    path.write_text(yaml.safe_dump({"tracker": tracker}))
    return path


@pytest.mark.slow
def test_mot15dev_held_out_accuracy_floor(tmp_path, data_dir):
    """Leave-one-sequence-out on MOT15-dev, motion only: each sequence is tracked with the parameters that
    bench/cv_tune.py chose on the other four (bench/results/cv_mot15dev_folds.json), so no sequence is scored
    with parameters fitted to it; the five held-out files are scored together (COMBINED)."""
    import configparser

    dev = data_dir / "MOT15-dev"
    if not dev.is_dir():
        pytest.skip(f"MOT15-dev not in {data_dir}")
    folds = json.loads((ROOT / "bench" / "results" / "cv_mot15dev_folds.json").read_text())["folds"]
    assert set(folds) == set(MOT15_DEV_SEQS)
    results = {}
    for seq in MOT15_DEV_SEQS:
        info = configparser.ConfigParser()
        info.read(dev / seq / "seqinfo.ini")
        results[seq] = tmp_path / f"{seq}.txt"
        cmd = [sys.executable, str(ROOT / "run.py"), "track", "--dets", str(dev / seq / "det" / "det.txt"),
               "--fps", info["Sequence"]["frameRate"], "--config", str(_fold_config(tmp_path / f"{seq}.yaml",
                                                                                   folds[seq])),
               "--out", str(results[seq]), "-q"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert r.returncode == 0, r.stderr
    res = evaluate_files({s: dev / s / "gt" / "gt.txt" for s in MOT15_DEV_SEQS}, results)["COMBINED"]
    print(f"MOT15-dev held-out COMBINED: HOTA {res['HOTA']:.2f} IDF1 {res['IDF1']:.2f} MOTA {res['MOTA']:.2f}")
    floor = FLOORS["MOT15-dev held-out"]
    assert res["HOTA"] >= floor["HOTA"], f"HOTA {res['HOTA']:.2f} below floor {floor['HOTA']}"
    assert res["IDF1"] >= floor["IDF1"], f"IDF1 {res['IDF1']:.2f} below floor {floor['IDF1']}"
