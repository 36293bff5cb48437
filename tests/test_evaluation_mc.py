"""tracker.scoring.multicam: per-camera and cross-camera scoring of PETS09-MC (global ids)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tracker.commands.eval_mc import register
from tracker.errors import UserError
from tracker.scoring.mot import evaluate_files
from tracker.scoring.multicam import evaluate_multicam, format_multicam

CAMS = ("cam1", "cam2", "cam3")
PERFECT = ("HOTA", "DetA", "AssA", "IDF1", "MOTA")


@pytest.fixture(scope="module")
def mc(data_dir):
    d = data_dir / "PETS09-MC"
    if not all((d / c / "gt" / "gt.txt").is_file() for c in CAMS):
        pytest.skip(f"PETS09-MC ground truth not found in {d}")
    return d


def _gt(mc, cam) -> np.ndarray:
    return np.loadtxt(mc / cam / "gt" / "gt.txt", delimiter=",", ndmin=2)


def _write(path, rows: np.ndarray):
    np.savetxt(path, rows, delimiter=",", fmt="%g")
    return path


@pytest.fixture(scope="module")
def gt_results(mc, tmp_path_factory):
    """Ground truth as results: ids exactly as in the gt (global over cameras)."""
    d = tmp_path_factory.mktemp("gt_results")
    for cam in CAMS:
        _write(d / f"{cam}.txt", _gt(mc, cam)[:, :6])
    return d


@pytest.fixture(scope="module")
def camera_unique_results(mc, tmp_path_factory):
    """Ground truth boxes, ids made camera-unique (id * 10 + camera index): perfect per camera, never linked."""
    d = tmp_path_factory.mktemp("unique_results")
    for k, cam in enumerate(CAMS, 1):
        rows = _gt(mc, cam)[:, :6].copy()
        rows[:, 1] = rows[:, 1] * 10 + k
        _write(d / f"{cam}.txt", rows)
    return d


def _assert_perfect(r: dict, where: str) -> None:
    for key in PERFECT:
        assert r[key] == pytest.approx(100.0), (where, key)
    assert r["IDSW"] == 0, where


def test_gt_against_itself_is_100_everywhere(mc, gt_results):
    res = evaluate_multicam(mc, gt_results)
    assert res["cameras"] == list(CAMS)
    for cam in CAMS:
        _assert_perfect(res["per_camera"][cam], cam)
    _assert_perfect(res["per_camera_combined"], "combined")
    _assert_perfect(res["cross_camera"], "cross")
    assert res["identities"] == {"predicted": 19, "true": 19, "ratio": 1.0}
    # Camera k is shifted by the lengths (seqLength) of the cameras before it.
    assert res["frame_offsets"] == {"cam1": 0, "cam2": 795, "cam3": 1590}


def test_camera_unique_ids_lose_cross_camera_identity_only(mc, camera_unique_results):
    res = evaluate_multicam(mc, camera_unique_results)
    for cam in CAMS:
        _assert_perfect(res["per_camera"][cam], cam)
    _assert_perfect(res["per_camera_combined"], "combined")
    cross = res["cross_camera"]
    assert cross["DetA"] == pytest.approx(100.0)  # every box is still found
    assert cross["IDF1"] < 65.0 and cross["HOTA"] < 80.0 and cross["AssA"] < 60.0
    assert cross["IDSW"] > 0
    ids = res["identities"]
    assert ids["true"] == 19
    assert ids["predicted"] == sum(res["per_camera"][c]["Pred_IDs"] for c in CAMS) == 53
    assert 2.5 < ids["ratio"] < 3.0


def test_cross_camera_equals_scoring_a_hand_concatenated_file(mc, camera_unique_results, tmp_path):
    """The cross-camera row is plain evaluate_files on one file with frames offset per camera."""
    res = evaluate_multicam(mc, camera_unique_results)
    gt, pred = [], []
    for cam in CAMS:
        off = res["frame_offsets"][cam]
        g = _gt(mc, cam)
        p = np.loadtxt(camera_unique_results / f"{cam}.txt", delimiter=",", ndmin=2)
        g[:, 0] += off
        p[:, 0] += off
        gt.append(g)
        pred.append(p)
    ref = evaluate_files({"all": _write(tmp_path / "gt.txt", np.concatenate(gt))},
                         {"all": _write(tmp_path / "res.txt", np.concatenate(pred))})["all"]
    assert res["cross_camera"] == pytest.approx(ref)


def test_camera_subset_and_order(mc, gt_results):
    res = evaluate_multicam(mc, gt_results, ["cam3", "cam1"])
    assert res["cameras"] == ["cam3", "cam1"]
    assert res["frame_offsets"] == {"cam3": 0, "cam1": 398}
    assert res["identities"]["true"] == len(np.unique(np.concatenate([_gt(mc, c)[:, 1] for c in ("cam1", "cam3")])))


def test_missing_inputs_are_user_errors(mc, gt_results, tmp_path):
    with pytest.raises(UserError, match="result file for camera 'cam9' not found"):
        evaluate_multicam(mc, gt_results, ["cam1", "cam9"])
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "cam1.txt").write_text((gt_results / "cam1.txt").read_text())
    with pytest.raises(UserError, match="result file for camera 'cam2' not found"):
        evaluate_multicam(mc, partial, ["cam1", "cam2"])
    with pytest.raises(UserError, match="results folder not found"):
        evaluate_multicam(mc, tmp_path / "nope")
    with pytest.raises(UserError, match="ground-truth folder not found"):
        evaluate_multicam(tmp_path / "nope", gt_results)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no result file"):
        evaluate_multicam(mc, empty)


def test_cli_prints_table(mc, camera_unique_results, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval-mc", "--gt-root", str(mc), "--results", str(camera_unique_results)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "HOTA" in lines[0] and "IDF1" in lines[0]
    rows = {name: next(ln for ln in lines if ln.startswith(name)) for name in (*CAMS, "per-camera combined",
                                                                                "cross-camera")}
    for cam in CAMS:
        assert rows[cam].split()[1:6] == ["100.00"] * 5
    assert rows["per-camera combined"].split()[2:7] == ["100.00"] * 5
    assert float(rows["cross-camera"].split()[1]) < 80.0
    assert "identities: 53 predicted over all cameras vs 19 true" in out
    assert out.strip() == format_multicam(evaluate_multicam(mc, camera_unique_results)).strip()
