"""tracker.scoring.mot: MOTChallenge scoring of result files (HOTA / CLEAR / Identity via trackeval)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tracker.errors import UserError
from tracker.scoring.mot import COMBINED, evaluate_dirs, evaluate_files, format_table

DATA = Path(os.environ.get("MCTRACK_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared test data not found at {DATA}")

PETS_GT = DATA / "PETS09-S2L1" / "gt" / "gt.txt"
MOT17_02_GT = DATA / "MOT17-mini" / "MOT17-02-FRCNN" / "gt" / "gt.txt"
MOT17_04_GT = DATA / "MOT17-mini" / "MOT17-04-FRCNN" / "gt" / "gt.txt"


def _load(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def _write_results(path: Path, rows: np.ndarray) -> Path:
    """Write ``frame,id,left,top,w,h`` rows as a MOTChallenge result file (score 1, -1 padding)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    out = np.column_stack([rows, np.ones(len(rows)), -np.ones((len(rows), 3))])
    np.savetxt(path, out, delimiter=",", fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.1f", "%d", "%d", "%d"])
    return path


def _pedestrians_mot17(gt: np.ndarray) -> np.ndarray:
    """Rows of a MOT17 gt a perfect tracker reports: class 1 with consider flag set."""
    return gt[(gt[:, 7] == 1) & (gt[:, 6] == 1), :6]


def _score(gt_path: Path, result_path: Path, seq: str = "seq") -> dict[str, float]:
    return evaluate_files({seq: gt_path}, {seq: result_path})[seq]


def _synthetic_mot15_gt(path: Path) -> Path:
    """10 frames, persons 1 and 2 walking apart, person 3 present but marked conf 0 (ignore)."""
    rows = []
    for f in range(1, 11):
        rows.append([f, 1, 10 + 5 * f, 20, 40, 100, 1, -1, -1, -1])
        rows.append([f, 2, 300 - 5 * f, 20, 40, 100, 1, -1, -1, -1])
        rows.append([f, 3, 500, 300, 40, 100, 0, -1, -1, -1])
    np.savetxt(path, np.array(rows), delimiter=",", fmt="%g")
    return path


# --------------------------------------------------------------------------------------------------------------------
# Real ground truth


@needs_data
def test_gt_against_itself_is_perfect(tmp_path):
    mot17 = _write_results(tmp_path / "mot17.txt", _pedestrians_mot17(_load(MOT17_04_GT)))
    res = evaluate_files({"PETS09-S2L1": PETS_GT, "MOT17-04-FRCNN": MOT17_04_GT},
                         {"PETS09-S2L1": PETS_GT, "MOT17-04-FRCNN": mot17})
    assert list(res) == ["PETS09-S2L1", "MOT17-04-FRCNN", COMBINED]
    for seq, r in res.items():
        for key in ("HOTA", "DetA", "AssA", "IDF1", "MOTA"):
            assert r[key] == pytest.approx(100.0), (seq, key)
        assert r["IDSW"] == 0
        assert r["GT_IDs"] == r["Pred_IDs"]
    assert res["PETS09-S2L1"]["GT_IDs"] == 19
    assert res[COMBINED]["GT_IDs"] == res["PETS09-S2L1"]["GT_IDs"] + res["MOT17-04-FRCNN"]["GT_IDs"]


@needs_data
def test_id_swap_lowers_identity_scores(tmp_path):
    gt = _load(PETS_GT)
    mid = 400
    a, b = np.intersect1d(gt[gt[:, 0] == mid, 1], gt[gt[:, 0] == mid + 1, 1])[:2]
    swapped = gt[:, :6].copy()
    late = swapped[:, 0] > mid
    swapped[late & (gt[:, 1] == a), 1] = b
    swapped[late & (gt[:, 1] == b), 1] = a
    r = _score(PETS_GT, _write_results(tmp_path / "swap.txt", swapped))
    assert r["IDF1"] < 100.0
    assert r["IDSW"] >= 2
    assert r["AssA"] < 100.0 and r["HOTA"] < 100.0
    assert r["DetA"] == pytest.approx(100.0)  # every box still found


@needs_data
def test_dropping_rows_lowers_detection_scores(tmp_path):
    gt = _load(PETS_GT)
    r = _score(PETS_GT, _write_results(tmp_path / "half.txt", gt[::2, :6]))
    assert r["DetA"] < 60.0
    assert r["MOTA"] == pytest.approx(100.0 * len(gt[::2]) / len(gt), abs=0.1)
    assert r["IDSW"] == 0


@needs_data
def test_mot17_distractor_predictions_are_not_false_positives(tmp_path):
    gt = _load(MOT17_02_GT)
    base = _pedestrians_mot17(gt)
    distractors = gt[np.isin(gt[:, 7], (7, 8)), :6].copy()
    assert len(distractors) > 0
    distractors[:, 1] += 10_000  # their own track ids
    free = base[base[:, 0] == 1][:1].copy()
    free[:, 1], free[:, 2:4] = 20_000, (5, 5)  # a box on empty background

    clean = _score(MOT17_02_GT, _write_results(tmp_path / "clean.txt", base))
    on_distractors = _score(MOT17_02_GT, _write_results(tmp_path / "dis.txt", np.vstack([base, distractors])))
    with_fp = _score(MOT17_02_GT, _write_results(tmp_path / "fp.txt", np.vstack([base, free])))
    assert clean["MOTA"] == pytest.approx(100.0)
    assert on_distractors["MOTA"] == pytest.approx(clean["MOTA"])
    assert on_distractors["HOTA"] == pytest.approx(clean["HOTA"])
    assert on_distractors["Pred_IDs"] == clean["Pred_IDs"]
    assert with_fp["MOTA"] < clean["MOTA"]  # control: a prediction elsewhere does count


@needs_data
def test_evaluate_dirs_finds_sequences_and_format_table(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for cam in ("cam1", "cam2"):
        _write_results(results / f"{cam}.txt", _load(DATA / "PETS09-MC" / cam / "gt" / "gt.txt")[:, :6])
    (results / "not-a-sequence.txt").write_text("")  # no gt: skipped by discovery
    res = evaluate_dirs(DATA / "PETS09-MC", results)
    assert list(res) == ["cam1", "cam2", COMBINED]
    assert res[COMBINED]["IDF1"] == pytest.approx(100.0)
    table = format_table(res)
    for name in ("cam1", "cam2", COMBINED, "HOTA", "IDF1", "MOTA"):
        assert name in table
    assert len(table.splitlines()) == 2 + 3
    with pytest.raises(UserError, match="cam3"):
        evaluate_dirs(DATA / "PETS09-MC", results, seqs=["cam1", "cam3"])


# --------------------------------------------------------------------------------------------------------------------
# Synthetic files


def test_mot15_conf_zero_rows_leave_the_gt_and_predictions_on_them_are_false_positives(tmp_path):
    gt_path = _synthetic_mot15_gt(tmp_path / "gt.txt")
    gt = _load(gt_path)
    people = gt[gt[:, 6] == 1, :6]
    r = _score(gt_path, _write_results(tmp_path / "people.txt", people))
    assert r["HOTA"] == pytest.approx(100.0) and r["MOTA"] == pytest.approx(100.0)
    assert r["GT_IDs"] == 2
    # As trackeval's MOT15 evaluation: nothing is removed from the predictions, so boxes on the conf-0 person
    # are false positives (10 FP against 20 gt boxes: MOTA 50).
    r_all = _score(gt_path, _write_results(tmp_path / "all.txt", gt[:, :6]))
    assert r_all["MOTA"] == pytest.approx(50.0) and r_all["Pred_IDs"] == 3


def test_empty_result_scores_zero(tmp_path):
    gt_path = _synthetic_mot15_gt(tmp_path / "gt.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    res = evaluate_files({"s": gt_path}, {"s": empty})
    for key in ("HOTA", "DetA", "IDF1", "MOTA"):
        assert res["s"][key] == 0.0
        assert res[COMBINED][key] == 0.0
    assert res["s"]["Pred_IDs"] == 0 and res["s"]["GT_IDs"] == 2


def test_missing_files_raise_user_error(tmp_path):
    gt_root = tmp_path / "gt"
    (gt_root / "seqA" / "gt").mkdir(parents=True)
    _synthetic_mot15_gt(gt_root / "seqA" / "gt" / "gt.txt")
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(UserError, match="result file for sequence 'seqA' not found"):
        evaluate_dirs(gt_root, results, seqs=["seqA"])
    with pytest.raises(UserError, match="no result file"):
        evaluate_dirs(gt_root, results)
    (results / "seqB.txt").write_text("")
    with pytest.raises(UserError, match="ground-truth file for sequence 'seqB' not found"):
        evaluate_dirs(gt_root, results, seqs=["seqB"])
    with pytest.raises(UserError, match="not found"):
        evaluate_files({"s": tmp_path / "nope.txt"}, {"s": results / "seqB.txt"})
    with pytest.raises(UserError, match="no result file given"):
        evaluate_files({"s": gt_root / "seqA" / "gt" / "gt.txt"}, {})


@pytest.mark.parametrize(
    "text",
    [
        "1,1,10,10,5\n",  # too few columns
        "1,1,10,10,5,5,1\n1,2,10,10\n",  # ragged
        "1,1,a,10,5,5,1\n",  # not numeric
        "0,1,10,10,5,5,1\n",  # frame 0
        "1,1,10,10,5,5,1\n1,1,30,30,5,5,1\n",  # id twice in one frame
    ],
)
def test_malformed_result_raises_user_error_naming_path(tmp_path, text):
    gt_path = _synthetic_mot15_gt(tmp_path / "gt.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    with pytest.raises(UserError, match="bad.txt"):
        _score(gt_path, bad)


def test_mot17_style_synthetic_classes(tmp_path):
    """consider==0 pedestrians and non-person classes are not gt; distractor classes swallow matched predictions."""
    rows = []
    for f in range(1, 6):
        rows += [[f, 1, 0, 0, 50, 100, 1, 1, 1.0],  # pedestrian, scored
                 [f, 2, 200, 0, 50, 100, 0, 7, 1.0],  # static person (distractor)
                 [f, 3, 400, 0, 50, 100, 0, 3, 1.0],  # car: not gt, not a distractor
                 [f, 4, 600, 0, 50, 100, 0, 1, 1.0]]  # pedestrian marked not-consider
    gt_path = tmp_path / "gt.txt"
    np.savetxt(gt_path, np.array(rows), delimiter=",", fmt="%g")
    gt = np.array(rows)
    r = _score(gt_path, _write_results(tmp_path / "a.txt", gt[np.isin(gt[:, 1], (1, 2)), :6]))
    assert r["MOTA"] == pytest.approx(100.0) and r["GT_IDs"] == 1 and r["Pred_IDs"] == 1
    r = _score(gt_path, _write_results(tmp_path / "b.txt", gt[np.isin(gt[:, 1], (1, 3)), :6]))
    assert r["MOTA"] == pytest.approx(0.0)  # 5 TP, 5 FP on the car, 5 gt


def test_format_table_layout():
    row = {"HOTA": 50.0, "DetA": 40.0, "AssA": 62.5, "IDF1": 55.5, "MOTA": -3.25, "IDSW": 7, "GT_IDs": 3, "Pred_IDs": 4}
    table = format_table({"a-long-sequence-name": row, COMBINED: row, "b": row})
    lines = table.splitlines()
    assert lines[-1].startswith(COMBINED) and lines[2].startswith("a-long-sequence-name")
    assert len({len(line) for line in lines}) == 1  # aligned
    assert "-3.25" in table and " 7 " in table


# --------------------------------------------------------------------------------------------------------------------
# Against trackeval's own folder-based evaluation


def _trackeval_folder_scores(tmp_path: Path, benchmark: str, gt_files: dict[str, Path], results: dict[str, Path],
                             lengths: dict[str, int]) -> dict[str, dict[str, float]]:
    """Score with ``trackeval.Evaluator`` + ``MotChallenge2DBox`` on a temporary folder in trackeval's layout."""
    import shutil

    import trackeval

    gt_root, tr_root = tmp_path / f"te-{benchmark}" / "gt", tmp_path / f"te-{benchmark}" / "trackers"
    split = f"{benchmark}-train"
    for seq, gt in gt_files.items():
        d = gt_root / split / seq
        (d / "gt").mkdir(parents=True)
        shutil.copy(gt, d / "gt" / "gt.txt")
        (d / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={lengths[seq]}\n")
        out = tr_root / split / "ours" / "data"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(results[seq], out / f"{seq}.txt")
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(tr_root), "BENCHMARK": benchmark, "SPLIT_TO_EVAL": "train",
        "TRACKERS_TO_EVAL": ["ours"], "SEQ_INFO": dict(lengths), "PRINT_CONFIG": False})
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                     "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                                     "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True,
                                     "OUTPUT_EMPTY_CLASSES": False})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False})]
    res, _ = evaluator.evaluate([dataset], metrics)
    out = {}
    for seq, r in res["MotChallenge2DBox"]["ours"].items():
        p = r["pedestrian"]
        out[COMBINED if seq == "COMBINED_SEQ" else seq] = {
            "HOTA": 100 * float(np.mean(p["HOTA"]["HOTA"])), "DetA": 100 * float(np.mean(p["HOTA"]["DetA"])),
            "AssA": 100 * float(np.mean(p["HOTA"]["AssA"])), "IDF1": 100 * float(p["Identity"]["IDF1"]),
            "MOTA": 100 * float(p["CLEAR"]["MOTA"]), "IDSW": int(p["CLEAR"]["IDSW"])}
    return out


def _track(dets: Path, fps: float, out: Path) -> Path:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "run.py"), "track", "--dets", str(dets), "--fps", str(fps),
                        "--out", str(out), "-q"], capture_output=True, text=True, timeout=300, cwd=root)
    assert r.returncode == 0, r.stderr
    return out


@needs_data
@pytest.mark.parametrize("benchmark, seqs", [
    ("MOT15", ["ETH-Bahnhof", "ETH-Pedcross2", "Venice-2"]),  # the ETH ones have conf == 0 rows
    ("MOT17", ["MOT17-02-FRCNN", "MOT17-04-FRCNN"]),
])
@pytest.mark.slow
def test_scores_equal_trackevals_own_evaluation(tmp_path, benchmark, seqs):
    import configparser

    folder = DATA / ("MOT15-dev" if benchmark == "MOT15" else "MOT17-mini")
    gt_files, results, lengths = {}, {}, {}
    for seq in seqs:
        ini = configparser.ConfigParser()
        ini.read(folder / seq / "seqinfo.ini")
        gt_files[seq] = folder / seq / "gt" / "gt.txt"
        results[seq] = _track(folder / seq / "det" / "det.txt", float(ini["Sequence"]["frameRate"]),
                              tmp_path / "ours" / f"{seq}.txt")
        gt_frames = int(np.loadtxt(gt_files[seq], delimiter=",", ndmin=2)[:, 0].max())
        lengths[seq] = max(int(ini["Sequence"]["seqLength"]), gt_frames)
    if benchmark == "MOT15":
        assert any((np.loadtxt(g, delimiter=",")[:, 6] == 0).any() for g in gt_files.values())
    ours = evaluate_files(gt_files, results)
    theirs = _trackeval_folder_scores(tmp_path, benchmark, gt_files, results, lengths)
    assert set(theirs) == set(ours)
    for seq in ours:
        for key in ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW"):
            assert ours[seq][key] == pytest.approx(theirs[seq][key], abs=1e-9), (seq, key, ours[seq][key],
                                                                                   theirs[seq][key])
