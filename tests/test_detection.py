"""YOLO detector: letterbox/decode/NMS tables, then the real shared models on bus.jpg and PETS09 frames."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from tracker.core.boxes import iou_matrix
from tracker.errors import UserError
from tracker.models.detection import Detector, FrameDetections, decode_yolo, letterbox_batch, nms, undo_letterbox

ROOT = Path(__file__).resolve().parents[1]
PETS_FRAMES = list(range(1, 795, 79))[:10]  # 10 frames spread over the sequence
RECALL_FLOOR = 0.90  # measured 0.929 (52 of 56 people) with yolov8n_from_int8_dynamic.onnx at conf 0.1, IoU 0.5
HAVE_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None and importlib.util.find_spec("torch") is not None


# ------------------------------------------------------------------------------------ pure functions


@pytest.mark.parametrize("frame_hw,imgsz,rect,canvas_hw", [
    ((576, 768), (640, 640), True, (480, 640)),    # 4:3 -> rect 640x480
    ((576, 768), (640, 640), False, (640, 640)),   # fixed-size model
    ((1080, 810), (640, 640), True, (640, 480)),   # portrait
    ((1080, 1920), (640, 640), True, (384, 640)),  # 16:9, padded to a stride multiple
    ((100, 1000), (320, 320), True, (32, 320)),    # extreme aspect
    ((240, 320), (640, 640), True, (480, 640)),    # small frames are scaled up
])
def test_letterbox_places_and_undoes(frame_hw, imgsz, rect, canvas_hw):
    h, w = frame_hw
    frame = np.zeros((h, w, 3), np.uint8)
    box = np.array([[0.2 * w, 0.3 * h, 0.6 * w, 0.9 * h]])
    x0, y0, x1, y1 = box[0].round().astype(int)
    frame[y0:y1, x0:x1] = (0, 0, 255)  # red in BGR
    x, geometry = letterbox_batch([frame], imgsz, 32, rect)
    assert x.shape == (1, 3, *canvas_hw) and x.dtype == np.float32
    red = x[0, 0] > 0.5  # channel 0 is R after the BGR->RGB swap
    ys, xs = np.nonzero(red)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
    back = undo_letterbox(found, geometry[0])
    assert np.abs(back - [[x0, y0, x1, y1]]).max() <= 1.5 / min(geometry[0, 2:4]) + 1e-6
    left, top, sx, sy = geometry[0, :4]
    nw, nh = round(w * sx), round(h * sy)
    inside = np.zeros(canvas_hw, bool)
    inside[int(top):int(top) + nh, int(left):int(left) + nw] = True
    assert inside.sum() == nw * nh  # the scaled frame fits the canvas
    assert np.allclose(x[0][:, ~inside] * 255, 114, atol=1e-3)  # grey padding everywhere else


def test_undo_letterbox_clips_to_frame():
    geometry = np.array([0, 80, 0.5, 0.5, 100, 50])  # 100x50 frame scaled by 0.5, 80 px top padding
    out = undo_letterbox(np.array([[-10.0, 70, 60, 120]]), geometry)
    assert out.dtype == np.float32
    assert np.allclose(out, [[0, 0, 100, 50]])


@pytest.mark.parametrize("boxes,scores,thr,kept", [
    ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], 0.7, [0]),              # duplicates
    ([[0, 0, 10, 10], [20, 20, 30, 30]], [0.5, 0.9], 0.7, [1, 0]),         # disjoint, highest score first
    ([[0, 0, 10, 10], [0, 0, 10, 8]], [0.9, 0.8], 0.79, [0]),              # IoU 0.8 > 0.79: dropped
    ([[0, 0, 10, 10], [0, 0, 10, 8]], [0.9, 0.8], 0.81, [0, 1]),           # IoU 0.8 <= 0.81: both kept
    ([[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10]], [0.9, 0.8, 0.7], 0.7, [0, 2]),  # 0 hides 1 (0.82), not 2 (0.67)
    ([], [], 0.7, []),
])
def test_nms_table(boxes, scores, thr, kept):
    got = nms(np.array(boxes, np.float64).reshape(-1, 4), np.array(scores), thr)
    assert got.tolist() == kept


def _pred(rows):
    """(4 + C, A) head output from rows of (cx, cy, w, h, score_class0, score_class1)."""
    return np.array(rows, np.float32).T


def test_decode_filters_classes_and_runs_nms_per_class():
    pred = _pred([
        (50, 50, 20, 40, 0.9, 0.0),   # person
        (51, 50, 20, 40, 0.8, 0.0),   # duplicate person -> suppressed
        (50, 50, 20, 40, 0.0, 0.85),  # class 1 on the same spot: kept with all classes
        (200, 80, 10, 10, 0.05, 0.0),  # below conf
    ])
    tlbr, scores, cls = decode_yolo(pred, 0.1, 0.7, (0,), 300)
    assert np.allclose(tlbr, [[40, 30, 60, 70]]) and np.allclose(scores, [0.9]) and cls.tolist() == [0]
    tlbr, scores, cls = decode_yolo(pred, 0.1, 0.7, None, 300)
    assert cls.tolist() == [0, 1] and np.allclose(scores, [0.9, 0.85])
    tlbr, scores, cls = decode_yolo(pred, 0.1, 0.7, (1,), 300)
    assert cls.tolist() == [1] and scores.dtype == np.float32 and cls.dtype == np.int64
    assert len(decode_yolo(pred, 0.1, 0.7, None, 1)[0]) == 1  # max_det
    assert len(decode_yolo(pred, 0.95, 0.7, None, 300)[0]) == 0


def test_frame_detections_is_checked_and_read_only():
    fd = FrameDetections(np.zeros((2, 4)), np.ones(2), np.zeros(2))
    assert fd.tlbr.dtype == np.float32 and fd.class_ids.dtype == np.int64 and len(fd) == 2
    with pytest.raises(ValueError):
        fd.tlbr[0, 0] = 1
    with pytest.raises(ValueError):
        FrameDetections(np.zeros((2, 4)), np.ones(3), np.zeros(2))


# ------------------------------------------------------------------------------------ real models


@pytest.fixture(scope="module")
def detector_dir(model_dir) -> Path:
    d = model_dir / "detector"
    if not (d / "yolov8n_from_int8_dynamic.onnx").is_file():
        pytest.skip(f"shared detector models not present in {d}")
    return d


@pytest.fixture(scope="module")
def dynamic(detector_dir) -> Detector:
    return Detector(detector_dir / "yolov8n_from_int8_dynamic.onnx", providers=("cpu",))


@pytest.fixture(scope="module")
def int8(detector_dir) -> Detector:
    return Detector(detector_dir / "yolov8n_int8.onnx", providers=("cpu",))


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    spec = importlib.util.find_spec("ultralytics")
    if spec is None:
        pytest.skip("ultralytics (which ships bus.jpg) is not installed")
    img = cv2.imread(str(Path(spec.submodule_search_locations[0]) / "assets" / "bus.jpg"))
    assert img is not None
    return img


@pytest.fixture(scope="module")
def pets_frames(pets) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(pets / "video" / "vtest.avi"))
    frames, index = {}, 0
    while len(frames) < len(PETS_FRAMES):
        ok, img = cap.read()
        assert ok, "PETS09 video ended early"
        index += 1
        if index in PETS_FRAMES:
            frames[index] = img
    cap.release()
    return frames


def _matched(a_tlbr: np.ndarray, b_tlbr: np.ndarray, min_iou: float) -> int:
    if not len(a_tlbr) or not len(b_tlbr):
        return 0
    iou = iou_matrix(a_tlbr, b_tlbr)
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= min_iou).sum())


def _assert_same(a: FrameDetections, b: FrameDetections, atol: float):
    assert len(a) == len(b)
    assert np.abs(a.tlbr - b.tlbr).max(initial=0) <= atol
    assert np.abs(a.scores - b.scores).max(initial=0) <= 1e-4
    assert (a.class_ids == b.class_ids).all()


def test_reads_model_metadata(dynamic, int8):
    assert dynamic.fixed_batch is None and dynamic.dynamic_size and dynamic.imgsz == (640, 640)
    assert int8.fixed_batch == 1 and not int8.dynamic_size and int8.imgsz == (640, 640)
    assert dynamic.names[0] == "person" and len(dynamic.names) == 80 and dynamic.stride == 32


def test_finds_the_four_people_on_bus(int8, bus):
    out = int8.detect([bus])
    assert len(out) == 1
    people = out[0].tlbr[out[0].scores >= 0.25]
    assert len(people) == 4
    assert (out[0].class_ids == 0).all()
    h, w = bus.shape[:2]
    assert (people[:, [0, 2]] <= w).all() and (people[:, [1, 3]] <= h).all()
    heights = people[:, 3] - people[:, 1]
    assert (heights[:3] > 400).all()  # three full-height people in front (the fourth is cut by the border)


def test_pets_recall_above_floor(dynamic, pets_frames, pets):
    gt = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",")
    out = dynamic.detect([pets_frames[f] for f in PETS_FRAMES])
    hits = total = 0
    for f, det in zip(PETS_FRAMES, out, strict=True):
        g = gt[gt[:, 0] == f][:, 2:6].copy()
        g[:, 2:] += g[:, :2]
        hits += _matched(g, det.tlbr, 0.5)
        total += len(g)
    assert total > 40
    assert hits / total >= RECALL_FLOOR, f"recall {hits}/{total} = {hits / total:.3f} < {RECALL_FLOOR}"


def test_batched_equals_single_dynamic(dynamic, pets_frames):
    frames = [pets_frames[f] for f in PETS_FRAMES[:3]]
    batched = dynamic.detect(frames)
    for frame, b in zip(frames, batched, strict=True):
        _assert_same(dynamic.detect([frame])[0], b, atol=1e-3)
    dynamic.max_batch = 2  # 3 frames -> chunks of 2 + 1
    try:
        chunked = dynamic.detect(frames)
    finally:
        dynamic.max_batch = 32
    for a, b in zip(chunked, batched, strict=True):
        _assert_same(a, b, atol=1e-3)


def test_fixed_batch_model_runs_in_chunks(int8, pets_frames):
    frames = [pets_frames[f] for f in PETS_FRAMES[:3]]
    batched = int8.detect(frames)  # batch-1 model: three runs
    assert len(batched) == 3 and int8.last_timing_ms["infer"] > 0
    for frame, b in zip(frames, batched, strict=True):
        _assert_same(int8.detect([frame])[0], b, atol=1e-3)


def test_frames_of_different_sizes_in_one_batch(dynamic, int8, pets_frames, bus):
    small = cv2.resize(pets_frames[1], (384, 288))
    frames = [pets_frames[1], bus, small]
    for det in (int8, dynamic):
        batched = det.detect(frames)
        singles = [det.detect([f])[0] for f in frames]
        for frame, b, s in zip(frames, batched, singles, strict=True):
            h, w = frame.shape[:2]
            assert (b.tlbr >= 0).all() and (b.tlbr[:, [0, 2]] <= w).all() and (b.tlbr[:, [1, 3]] <= h).all()
            if det is int8:  # fixed 640x640 canvas: each frame is processed exactly as alone
                _assert_same(b, s, atol=1e-3)
            else:  # dynamic: the batch canvas is larger than a frame's own, so borders differ slightly
                confident_b, confident_s = b.tlbr[b.scores > 0.5], s.tlbr[s.scores > 0.5]
                assert len(confident_b) == len(confident_s) > 0
                assert _matched(confident_b, confident_s, 0.9) == len(confident_s)
    # The small copy finds the same people as the full frame, scaled.
    full, low = batched[0], batched[2]
    assert _matched(full.tlbr[full.scores > 0.5] / 2, low.tlbr[low.scores > 0.5], 0.7) >= 3


def test_empty_and_invalid_input(dynamic):
    assert dynamic.detect([]) == []
    empty = dynamic.detect([np.full((240, 320, 3), 114, np.uint8)])[0]
    assert len(empty) == 0 and empty.tlbr.shape == (0, 4)
    with pytest.raises(ValueError):
        dynamic.detect([np.zeros((240, 320), np.uint8)])


def test_imgsz_override_on_dynamic_model(detector_dir, pets_frames):
    det = Detector(detector_dir / "yolov8n_from_int8_dynamic.onnx", providers=("cpu",), imgsz=320)
    assert det.imgsz == (320, 320)
    low = det.detect([pets_frames[1]])[0]
    assert det.last_timing_ms["infer"] > 0
    high = Detector(detector_dir / "yolov8n_from_int8_dynamic.onnx", providers=("cpu",)).detect([pets_frames[1]])[0]
    # Same people, in original-frame pixels at either input size.
    assert _matched(low.tlbr[low.scores > 0.5], high.tlbr[high.scores > 0.5], 0.5) >= 2


def test_provider_fallback_to_cpu_is_logged(detector_dir, caplog):
    with caplog.at_level(logging.INFO):
        det = Detector(detector_dir / "yolov8n_from_int8_dynamic.onnx", providers=("tensorrt", "cuda", "cpu"))
    if not Path("/dev/nvidia0").exists():
        assert det.provider == "CPUExecutionProvider"
    assert f"running on {det.provider}" in caplog.text
    assert len(det.detect([np.zeros((64, 64, 3), np.uint8)])) == 1


@pytest.mark.parametrize("kind,match", [
    ("missing", "not found"),
    ("junk", "cannot load ONNX model"),
    ("reid", "not a YOLO"),  # a real ONNX model with a [B, 512] output
    pytest.param("junk_pt", "cannot load", marks=pytest.mark.slow),  # Ultralytics backend (torch): slow to import
])
def test_user_errors_for_bad_models(detector_dir, reid_model, tmp_path, kind, match):
    path = {"missing": tmp_path / "missing.onnx", "junk": tmp_path / "junk.onnx", "reid": reid_model,
            "junk_pt": tmp_path / "junk.pt"}[kind]
    if kind.startswith("junk"):
        path.write_bytes(b"not a model")
    if kind == "reid" and not path.is_file():
        pytest.skip(f"{path} not present")
    if kind == "junk_pt" and not HAVE_ULTRALYTICS:
        pytest.skip("ultralytics/torch not installed")
    with pytest.raises(UserError, match=match):
        Detector(path, providers=("cpu",))


MALICIOUS_PT = """
import os, sys, torch

class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))

torch.save({"model": Payload(), "train_args": {"task": "detect"}}, sys.argv[1])
"""


@pytest.mark.slow  # imports torch and Ultralytics (seconds per process)
@pytest.mark.skipif(not HAVE_ULTRALYTICS, reason="ultralytics/torch not installed")
def test_a_pt_checkpoint_cannot_run_code_when_loaded(tmp_path):
    from tracker.models.detection import safe_ultralytics_load

    if not safe_ultralytics_load():
        pytest.skip("this Ultralytics/torch version has no restricted loading (a warning says so at load)")
    pt, marker = tmp_path / "evil.pt", tmp_path / "code-ran"
    subprocess.run([sys.executable, "-c", MALICIOUS_PT, str(pt), str(marker)], check=True, timeout=120)
    with pytest.raises(UserError, match="cannot load"):
        Detector(pt, providers=("cpu",))
    assert not marker.exists(), "loading the .pt file ran code from it"


def test_user_errors_for_bad_settings(detector_dir):
    model = detector_dir / "yolov8n_int8.onnx"
    with pytest.raises(UserError, match="backend"):
        Detector(model, backend="tflite")
    with pytest.raises(UserError, match="conf"):
        Detector(model, conf=1.5)
    with pytest.raises(UserError, match="fixed"):
        Detector(model, providers=("cpu",), imgsz=320)
    with pytest.raises(UserError, match="class"):
        Detector(model, providers=("cpu",), classes=(80,))
    with pytest.raises(UserError, match="classes"):
        Detector(model, providers=("cpu",), classes=())


def test_onnx_path_never_imports_torch(detector_dir):
    code = (
        "import sys, numpy as np\n"
        "from tracker.models.detection import Detector\n"
        f"d = Detector({str(detector_dir / 'yolov8n_from_int8_dynamic.onnx')!r}, providers=('cpu',))\n"
        "d.detect([np.zeros((240, 320, 3), np.uint8)])\n"
        "bad = [m for m in ('torch', 'ultralytics') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.slow  # imports torch and Ultralytics (seconds per process)
@pytest.mark.skipif(not HAVE_ULTRALYTICS, reason="ultralytics/torch not installed")
def test_onnx_and_ultralytics_backends_agree(detector_dir, bus, pets_frames):
    ul = Detector(detector_dir / "yolov8n_from_int8.pt", providers=("cpu",), conf=0.25)
    ox = Detector(detector_dir / "yolov8n_from_int8_dynamic.onnx", providers=("cpu",), conf=0.25)
    assert ul.backend == "ultralytics" and ox.backend == "onnx" and ul.provider == "torch:cpu"
    frames = [bus, pets_frames[1]]
    for a, b in zip(ul.detect(frames), ox.detect(frames), strict=True):
        assert len(a) == len(b) > 0
        assert _matched(a.tlbr, b.tlbr, 0.9) == len(a)
        iou = iou_matrix(a.tlbr, b.tlbr)
        assert np.abs(a.tlbr - b.tlbr[iou.argmax(1)]).max() < 2.0  # pixels
        assert np.abs(a.scores - b.scores[iou.argmax(1)]).max() < 0.02


# ------------------------------------------------------------------------------------ export command


def _export_parser() -> argparse.ArgumentParser:
    from tracker.commands.detector import register

    p = argparse.ArgumentParser(prog="run.py")
    register(p.add_subparsers(dest="command", required=True))
    return p


@pytest.mark.slow  # imports torch and Ultralytics (seconds per process)
@pytest.mark.skipif(not HAVE_ULTRALYTICS, reason="ultralytics/torch not installed")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter, used by Ultralytics
def test_export_round_trip(detector_dir, tmp_path, bus, capsys):
    out = tmp_path / "exported" / "yolo_dynamic.onnx"
    args = _export_parser().parse_args(["export-detector", "--weights", str(detector_dir / "yolov8n_from_int8.pt"),
                                        "--dynamic", "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "fp32" in printed
    assert out.is_file() and not list(out.parent.glob(".*.part"))
    det = Detector(out, providers=("cpu",), conf=0.25)
    assert det.fixed_batch is None and det.dynamic_size
    mine, ref = det.detect([bus])[0], Detector(detector_dir / "yolov8n_from_int8_dynamic.onnx",
                                               providers=("cpu",), conf=0.25).detect([bus])[0]
    assert len(mine) == len(ref) == 4
    assert np.abs(mine.tlbr - ref.tlbr).max() < 0.5


@pytest.mark.slow  # imports torch and Ultralytics (seconds per process)
@pytest.mark.skipif(not HAVE_ULTRALYTICS, reason="ultralytics/torch not installed")
def test_export_user_errors(detector_dir, tmp_path, monkeypatch):
    from tracker.commands.detector import export_detector

    monkeypatch.setenv("MCTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MCTRACK_MODEL_DIR", raising=False)
    with pytest.raises(UserError, match="not found"):
        export_detector("no_such_model", out=tmp_path / "x.onnx")
    with pytest.raises(UserError, match=r"\.pt checkpoint"):
        export_detector(str(detector_dir / "yolov8n_int8.onnx"), out=tmp_path / "x.onnx")
    with pytest.raises(UserError, match="imgsz"):
        export_detector(str(detector_dir / "yolov8n_from_int8.pt"), out=tmp_path / "x.onnx", imgsz=8)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot load"):
        export_detector(str(junk), out=tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_export_weights_lookup_and_default_output(tmp_path, monkeypatch):
    from tracker.commands.detector import _default_out, _resolve_weights

    monkeypatch.setenv("MCTRACK_CACHE", str(tmp_path / "cache"))
    # A bare name resolves to the checkpoint even when an ONNX file of that name is found first.
    models = tmp_path / "models"
    (models / "detector").mkdir(parents=True)
    (models / "detector" / "mine.onnx").write_bytes(b"onnx")
    (models / "detector" / "mine.pt").write_bytes(b"pt")
    assert _resolve_weights("mine", str(models)) == models / "detector" / "mine.pt"
    with pytest.raises(UserError, match=r"\.pt checkpoint"):
        _resolve_weights("mine.onnx", str(models))
    # Beside weights given as a path in a writable folder; else (names, read-only folders) the cache.
    own = tmp_path / "own" / "w.pt"
    own.parent.mkdir()
    own.write_bytes(b"pt")
    assert _default_out(str(own), own) == own.with_suffix(".onnx")
    assert _default_out("mine", models / "detector" / "mine.pt") == tmp_path / "cache" / "mine.onnx"
    own.parent.chmod(0o555)
    try:
        assert _default_out(str(own), own) == tmp_path / "cache" / "w.onnx"
    finally:
        own.parent.chmod(0o755)
