"""``similarity`` and ``reid-table`` through their real argparse wiring, on PETS09 crops and the shared OSNet."""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.commands.similarity import pair_scores, parse_box_tlwh, rank1, register
from tracker.errors import UserError
from tracker.models.reid import ReIDEncoder

ROOT = Path(__file__).resolve().parents[1]
VIDEO = "${DATA}/PETS09-S2L1/video/vtest.avi"
# PETS09-S2L1 ground-truth boxes (tlwh px), unoccluded and >= 100 frames apart within an identity.
ID1_A = (376, "512.14,167.93,25.94,71.31")
ID1_B = (664, "464.40,201.02,26.57,77.35")
ID4_A = (585, "220.27,425.96,53.71,148.73")
ID4_B = (686, "132.41,319.54,45.99,120.21")
ID2 = (661, "174.75,150.23,26.10,72.34")
ID6 = (616, "36.34,178.99,25.15,69.71")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py")
    register(p.add_subparsers(dest="command", required=True))
    return p


def run(argv: list[str], capsys) -> str:
    args = parser().parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


def similarity(a, b, data_dir, reid_model, capsys) -> dict[str, float]:
    out = run(["similarity", f"{VIDEO}@{a[0]}", f"{VIDEO}@{b[0]}", "--boxes", a[1], b[1], "--model", str(reid_model),
               "--data-dir", str(data_dir), "--providers", "cpu"], capsys)
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+)\s+(-?\d+\.\d+)\s", out, re.M)}


def test_same_person_far_apart_scores_higher_than_different_people(data_dir, reid_model, capsys):
    same = [similarity(ID1_A, ID1_B, data_dir, reid_model, capsys)["cosine_similarity"],
            similarity(ID4_A, ID4_B, data_dir, reid_model, capsys)["cosine_similarity"]]
    diff = [similarity(ID1_A, ID2, data_dir, reid_model, capsys)["cosine_similarity"],
            similarity(ID4_B, ID6, data_dir, reid_model, capsys)["cosine_similarity"]]
    assert min(same) > max(diff), (same, diff)


def test_printed_scores_obey_euclidean_cosine_relation(data_dir, reid_model, capsys):
    s = similarity(ID1_A, ID2, data_dir, reid_model, capsys)
    cos, d, dsim = s["cosine_similarity"], s["euclidean_distance"], s["distance_similarity"]
    assert -1 <= cos <= 1 and 0 <= d <= 2
    assert d == pytest.approx(math.sqrt(2 - 2 * cos), abs=2e-4)
    assert dsim == pytest.approx(1 / (1 + d), abs=2e-4)


@pytest.mark.parametrize("seed", range(5))
def test_pair_scores_relation_exact(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, 512)).astype(np.float32)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    cos, d, dsim = pair_scores(a, b)
    assert d == pytest.approx(math.sqrt(2 - 2 * cos), abs=1e-5)
    assert dsim == pytest.approx(1 / (1 + d))
    assert pair_scores(a, a)[:2] == pytest.approx((1.0, 0.0), abs=1e-5)


def test_whole_image_crop_equals_box_in_frame(tmp_path, data_dir, reid_model, capsys):
    """A crop saved as an image (no box) embeds like the same box cut from the frame."""
    cap = cv2.VideoCapture(str(data_dir / "PETS09-S2L1" / "video" / "vtest.avi"))
    ok, frame = cap.read()  # frame 1
    cap.release()
    assert ok
    box = "633.19,241.93,42.34,81.07"  # id 19 in frame 1
    l, t, w, h = (float(v) for v in box.split(","))
    crop = frame[math.floor(t):math.ceil(t + h), math.floor(l):math.ceil(l + w)]
    cv2.imwrite(str(tmp_path / "crop.png"), crop)
    out = run(["similarity", str(tmp_path / "crop.png"), f"{VIDEO}@1", "--boxes", "-", box, "--model",
               str(reid_model), "--data-dir", str(data_dir), "--providers", "cpu"], capsys)
    cos = float(re.search(r"^cosine_similarity\s+(\S+)", out, re.M).group(1))
    assert cos > 0.999
    assert "1 / (1 + euclidean_distance)" in out


@pytest.mark.parametrize("text,expected", [
    ("1,2,3,4", [1, 2, 3, 4]), (" 1.5,2,30,40 ", [1.5, 2, 30, 40]), ("-", None), ("", None),
])
def test_parse_box_ok(text, expected):
    box = parse_box_tlwh(text)
    assert (box is None and expected is None) or box.tolist() == expected


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1,2,0,4", "1,2,3,-4", "1,2,3,4,5", "1;2;3;4", "nan,1,2,3"])
def test_parse_box_bad(text):
    with pytest.raises(UserError, match="bad box"):
        parse_box_tlwh(text)


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "not_an_image.png").write_text("hello")
    ok = f"{VIDEO}@1"
    return [
        (["missing.png", ok], "image file not found"),
        ([str(tmp / "not_an_image.png"), ok], "cannot read image"),
        ([f"{VIDEO}@0", ok], "numbered from 1"),
        ([f"{VIDEO}@900", ok], "795 frames"),
        (["${DATA}/nowhere.avi@3", ok], "video file not found"),
        ([ok, ok, "--boxes", "1,2,3", "-"], "bad box"),
        ([ok, ok, "--boxes", "700,10,100,50", "-"], "outside"),
        ([ok, ok, "--boxes", "10,500,20,100", "-"], "outside"),
        ([ok, ok, "--model", "no_such_reid_model"], "not found"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_similarity_bad_inputs_are_user_errors(case, tmp_path, data_dir, model_dir, capsys):
    argv, message = _bad_inputs(tmp_path)[case]
    args = parser().parse_args(["similarity", *argv, "--data-dir", str(data_dir), "--model-dir", str(model_dir),
                                "--providers", "cpu"])
    with pytest.raises(UserError, match=message):
        args.func(args)


PAIRS_4 = """# four pairs: two of the same person far apart in time, two of different people
name,image1,box1,image2,box2,id1,id2
s1,{v}@{a[0]},{a1},{v}@{b[0]},{b1},1,1
s2,{v}@{c[0]},{c1},{v}@{d[0]},{d1},4,4
d1,{v}@{a[0]},{a1},{v}@{e[0]},{e1},1,2
d2,{v}@{d[0]},{d1},{v}@{f[0]},{f1},4,6
"""


def _semi(box: tuple[int, str]) -> str:
    return box[1].replace(",", ";")


def _pairs_csv(tmp_path: Path) -> Path:
    text = PAIRS_4.format(v=VIDEO, a=ID1_A, a1=_semi(ID1_A), b=ID1_B, b1=_semi(ID1_B), c=ID4_A, c1=_semi(ID4_A),
                          d=ID4_B, d1=_semi(ID4_B), e=ID2, e1=_semi(ID2), f=ID6, f1=_semi(ID6))
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    return path


def test_reid_table_rows_per_model_and_rank1(tmp_path, data_dir, reid_model, capsys, monkeypatch):
    models = tmp_path / "models"
    (models / "reid").mkdir(parents=True)
    (models / "reid" / "osnet_x0_25_msmt17.onnx").symlink_to(reid_model)
    (models / "osnet_copy.onnx").symlink_to(reid_model)
    calls = []
    real_embed = ReIDEncoder.embed

    def counting_embed(self, frames, boxes):
        calls.append(sum(len(b) for b in boxes))
        return real_embed(self, frames, boxes)

    monkeypatch.setattr(ReIDEncoder, "embed", counting_embed)
    out = run(["reid-table", "--pairs", str(_pairs_csv(tmp_path)), "--models", "osnet_x0_25_msmt17", "osnet_copy",
               "--model-dir", str(models), "--data-dir", str(data_dir), "--providers", "cpu"], capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["model", "s1", "s2", "d1", "d2", "mean_same", "mean_diff", "rank1"]
    rows = [line.split() for line in lines[1:3]]
    assert [r[0] for r in rows] == ["osnet_x0_25_msmt17", "osnet_copy"]
    assert calls == [6, 6]  # 6 distinct crops, one batched call per model
    vals = np.asarray([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(vals[0], vals[1], atol=1e-3)  # same weights, same numbers
    cos, mean_same, mean_diff, r1 = vals[0, :4], vals[0, 4], vals[0, 5], vals[0, 6]
    assert mean_same == pytest.approx(cos[:2].mean(), abs=1e-3) and mean_diff == pytest.approx(cos[2:].mean(), abs=1e-3)
    assert mean_same > mean_diff
    assert 0 <= r1 <= 1 and "rank1: fraction of the 4 queries" in out  # the crops of ids 1 and 4


def test_reid_table_without_ids_and_relative_still_image(tmp_path, data_dir, reid_model, capsys):
    cap = cv2.VideoCapture(str(data_dir / "PETS09-S2L1" / "video" / "vtest.avi"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(tmp_path / "person.png"), frame[241:323, 633:676])
    (tmp_path / "p.csv").write_text(f"name,image1,box1,image2,box2\n"
                                    f"x,person.png,,{VIDEO}@1,633.19;241.93;42.34;81.07\n")
    out = run(["reid-table", "--pairs", str(tmp_path / "p.csv"), "--models", str(reid_model), "--data-dir",
               str(data_dir), "--providers", "cpu"], capsys)
    header, row = out.splitlines()[:2]
    assert header.split() == ["model", "x"] and row.split()[0] == "osnet_x0_25_msmt17"
    assert float(row.split()[1]) > 0.95


@pytest.mark.parametrize("body,message", [
    ("name,image1,box2\n", "missing column"),
    ("", "empty pairs file"),
    ("name,image1,box1,image2,box2\n", "no pairs"),
    ("name,image1,box1,image2,box2,id1,id2\na,{v}@1,1;2;3,{v}@2,,1,1\n", r"p\.csv:2: bad box"),
    ("name,image1,box1,image2,box2,id1,id2\na,{v}@1,,{v}@2,,x,1\n", "not an integer"),
    ("name,image1,box1,image2,box2\na,{v}@1,,{v}@2,\na,{v}@1,,{v}@3,\n", "duplicate pair name"),
    ("name,image1,box1,image2,box2\na,{v}@1,760;2;30;40,{v}@2,\n", "outside"),
    ("name,image1,box1,image2,box2,id1,id2\na,{v}@1,,{v}@2,,1,1\nb,{v}@1,,{v}@3,,2,2\n", "has ids 1 and 2"),
])
def test_reid_table_bad_files_are_user_errors(body, message, tmp_path, data_dir, reid_model):
    (tmp_path / "p.csv").write_text(body.format(v=VIDEO))
    args = parser().parse_args(["reid-table", "--pairs", str(tmp_path / "p.csv"), "--models", str(reid_model),
                                "--data-dir", str(data_dir), "--providers", "cpu"])
    with pytest.raises(UserError, match=message):
        args.func(args)


def test_rank1_definition():
    e = np.eye(4, dtype=np.float32)
    e[1] = e[0]  # crops 0 and 1 identical: nearest neighbours of each other
    e[3] = (e[2] + e[0]) / np.sqrt(2)
    ids = [7, 7, 8, 8]
    r, n = rank1(e, ids)
    # 0 -> 1 (hit), 1 -> 0 (hit), 2 -> 3 (hit), 3 -> 0 (cos .71 ties with 2; first wins: miss)
    assert n == 4 and r == pytest.approx(0.75)
    assert rank1(e, [7, 8, 9, None]) == (None, 0)  # nobody has a second crop


def test_make_pairs_is_deterministic_and_clean(tmp_path, data_dir):
    spec = importlib.util.spec_from_file_location("make_pairs", ROOT / "bench" / "make_pairs.py")
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    out = tmp_path / "pairs.csv"
    assert mp.main(["--data-dir", str(data_dir), "--out", str(out)]) == 0
    assert out.read_text() == (ROOT / "bench" / "results" / "pets09_pairs.csv").read_text()
    gt = mp.load_gt(data_dir / "PETS09-S2L1" / "gt" / "gt.txt")
    pairs = mp.make_pairs(gt, 768, 576)
    same = [(a, b) for name, a, b in pairs if name.startswith("same")]
    diff = [(a, b) for name, a, b in pairs if name.startswith("diff")]
    assert len(same) == 12 and len(diff) == 12
    assert all(a[1] == b[1] and abs(a[0] - b[0]) >= 100 for a, b in same)
    assert all(a[1] != b[1] for a, b in diff)
    crops = np.asarray([r for _, a, b in pairs for r in (a, b)])
    assert len(np.unique(crops[:, 1])) == 8 and (crops[:, 5] >= 60).all()
    assert (crops[:, 2] >= 0).all() and (crops[:, 2] + crops[:, 4] <= 768).all()
