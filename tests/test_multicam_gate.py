"""Accuracy gate for cross-camera identities: ``run.py run`` on PETS09-MC (public detections, OSNet, the
identity registry on) scored with ``eval-mc`` must stay at or above the stored floors: with the site's
topology written (``pets09_mc_public.yaml``) and with nothing of the site written
(``pets09_mc_public_notopo.yaml``: topology learned, appearance adapted while running)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.scoring.multicam import evaluate_multicam

ROOT = Path(__file__).resolve().parents[1]
ALL_FLOORS = json.loads((Path(__file__).parent / "accuracy_floors.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(("config", "floors"), [("pets09_mc_public.yaml", "PETS09-MC public"),
                                                 ("pets09_mc_public_notopo.yaml", "PETS09-MC public, no topology")])
def test_pets09_mc_cross_camera_floor(tmp_path, data_dir, model_dir, config, floors):
    FLOORS = ALL_FLOORS[floors]
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "run.py"), "run", "--config", str(ROOT / "configs" / config),
           "--set", "multicam.enabled=true", "--set", f"output.dir={out}", "--set", "output.video=false",
           "--set", f"pipeline.model_dir={model_dir}", "--set", "reid.providers=[cpu]", "-q"]
    env = {**os.environ, "MCTRACK_DATA_DIR": str(data_dir)}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    res = evaluate_multicam(data_dir / "PETS09-MC", out)
    pc, cc, ids = res["per_camera_combined"], res["cross_camera"], res["identities"]
    print(f"per-camera HOTA {pc['HOTA']:.2f} IDF1 {pc['IDF1']:.2f}; cross-camera HOTA {cc['HOTA']:.2f} "
          f"IDF1 {cc['IDF1']:.2f}; identities {ids['predicted']} (true {ids['true']})")
    assert cc["IDF1"] >= FLOORS["cross_IDF1"], f"cross-camera IDF1 {cc['IDF1']:.2f} below {FLOORS['cross_IDF1']}"
    assert cc["HOTA"] >= FLOORS["cross_HOTA"], f"cross-camera HOTA {cc['HOTA']:.2f} below {FLOORS['cross_HOTA']}"
    assert pc["HOTA"] >= FLOORS["per_camera_HOTA"], f"per-camera HOTA {pc['HOTA']:.2f} below floor"
    assert ids["predicted"] <= FLOORS["max_identities"], f"{ids['predicted']} identities for {ids['true']} people"
