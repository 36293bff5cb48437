"""Packaging: the wheel holds every subpackage, the configs and the `mctrack` command; the core installs alone."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

CORE_SCRIPT = """
import sys
import numpy as np
from tracker import CameraTracker, Detections, Tracker
t = Tracker(fps=10)
for k in range(10):
    out = t.update(np.array([[10 + 2 * k, 10, 50 + 2 * k, 110, 0.9], [200, 20, 240, 120, 0.8]]))
assert out.ids.tolist() == [1, 2], out
out = CameraTracker().update(Detections(np.array([[0, 0, 10, 20]]), np.array([0.9]), 0.0))
bad = [m for m in ("cv2", "onnxruntime", "torch", "yaml", "trackeval", "ultralytics") if m in sys.modules]
assert not bad, bad
print("core ok")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("mctrack-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_has_every_subpackage_the_configs_and_the_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in ("tracker/core", "tracker/models", "tracker/io", "tracker/io/sinks", "tracker/multicam",
                "tracker/scoring", "tracker/commands", "streams"):
        assert f"{pkg}/__init__.py" in names, pkg
    for src in (ROOT / "tracker").rglob("*.py"):
        assert str(src.relative_to(ROOT)) in names, src
    assert {"tracker/configs/default.yaml", "tracker/configs/pets09_mc.yaml"} <= names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mctrack = tracker.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    required = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert sorted(r.split()[1].split(">")[0].split("=")[0] for r in required) == ["lap", "numpy", "scipy"]


@pytest.mark.slow
def test_the_core_installs_alone_into_a_fresh_venv_and_tracks(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(py), "-c", CORE_SCRIPT], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "core ok" in r.stdout, r.stderr[-3000:]
    # The installed command tracks a detection file on the core alone (motion only, no video).
    dets = tmp_path / "det.txt"
    rows = [f"{f},-1,{10 + 3 * f},20,40,100,0.9,-1,-1,-1" for f in range(1, 31)]
    dets.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.txt"
    r = subprocess.run([str(env_dir / "bin" / "mctrack"), "track", "--dets", str(dets), "--fps", "10",
                        "--out", str(out), "-q"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = np.loadtxt(out, delimiter=",", ndmin=2)
    assert len(res) >= 25 and set(res[:, 1].astype(int)) == {1}
    # What needs an extra says which one, in one line.
    cfg = tmp_path / "run.yaml"
    cfg.write_text("cameras: [{id: a, source: x.mp4}]\n")
    r = subprocess.run([str(env_dir / "bin" / "mctrack"), "run", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "pip install" in r.stderr, r.stderr
