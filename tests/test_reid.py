"""ReID encoder on the real shared OSNet model and PETS09 frames."""

import numpy as np
import pytest

from streams import SourceReader
from tracker.errors import UserError
from tracker.io.motio import read_mot_detections
from tracker.models.reid import ReIDEncoder


@pytest.fixture(scope="module")
def encoder(reid_model):
    if not reid_model.is_file():
        pytest.skip(f"ReID model not present: {reid_model}")
    return ReIDEncoder(reid_model, providers=("cpu",), cpu_threads=2)


@pytest.fixture(scope="module")
def pets_frames(pets):
    gt = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",")
    want = {1, 2, 400}
    frames = {}
    with SourceReader("pets", str(pets / "video" / "vtest.avi"), fps=7) as src:
        for f in src:
            if f.index in want:
                frames[f.index] = f.image
            if f.index >= max(want):
                break
    return frames, gt


def gt_boxes(gt, frame):
    rows = gt[gt[:, 0] == frame]
    tlbr = rows[:, 2:6].astype(np.float32).copy()
    tlbr[:, 2:] += tlbr[:, :2]
    return tlbr, rows[:, 1].astype(int)


def test_reads_model_io(encoder):
    assert encoder.input_name == "images"
    assert (encoder.height, encoder.width) == (256, 128)
    assert encoder.fixed_batch is None and encoder.dim == 512


def test_batched_equals_single_and_unit_norm(encoder, pets_frames):
    frames, gt = pets_frames
    boxes = [gt_boxes(gt, f)[0] for f in (1, 400)]
    batched = encoder.embed([frames[1], frames[400]], boxes)
    assert [len(b) for b in batched] == [len(b) for b in boxes]
    for img, bx, emb in zip([frames[1], frames[400]], boxes, batched, strict=False):
        assert emb.dtype == np.float32
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
        for i in range(len(bx)):
            single = encoder.embed([img], [bx[i:i + 1]])[0][0]
            assert float(single @ emb[i]) >= 0.9999


def test_fixed_batch_chunking_matches(encoder, pets_frames):
    frames, gt = pets_frames
    boxes, _ = gt_boxes(gt, 1)
    ref = encoder.embed([frames[1]], [boxes])[0]
    encoder.max_batch = 2  # force several chunks
    try:
        chunked = encoder.embed([frames[1]], [boxes])[0]
    finally:
        encoder.max_batch = 256
    assert np.allclose(ref, chunked, atol=1e-5)


def test_same_person_closer_than_different(encoder, pets_frames):
    frames, gt = pets_frames
    b1, ids1 = gt_boxes(gt, 1)
    b2, ids2 = gt_boxes(gt, 2)
    e1, e2 = encoder.embed([frames[1], frames[2]], [b1, b2])
    sim = e1 @ e2.T
    same = ids1[:, None] == ids2[None, :]
    assert same.any()
    assert sim[same].min() > sim[~same].max()


def test_empty_and_edge_boxes(encoder, pets_frames):
    frames, _ = pets_frames
    out = encoder.embed([frames[1]], [np.zeros((0, 4), np.float32)])
    assert out[0].shape == (0, 512)
    h, w = frames[1].shape[:2]
    edge = np.array([[-20, -20, 10, 30], [w - 5, h - 5, w + 40, h + 80]], np.float32)
    e = encoder.embed([frames[1]], [edge])[0]
    assert np.isfinite(e).all() and e.shape == (2, 512)


def test_missing_and_corrupt_model(tmp_path):
    with pytest.raises(UserError, match="ReID model not found"):
        ReIDEncoder(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot load ONNX model"):
        ReIDEncoder(bad, providers=("cpu",))


def test_detection_reader(tmp_path, pets):
    dets = read_mot_detections(pets / "det" / "det.txt")
    assert len(dets) == 795 and dets[1][0].shape[1] == 4
    bad = tmp_path / "bad.txt"
    bad.write_text("1,-1,10,10,nan,20,0.9\n1,-1,10,10,-5,20,0.9\n1,-1,10,10,5,20,1.5\n")
    d = read_mot_detections(bad)
    assert len(d[1][0]) == 1 and d[1][1][0] == 1.0  # NaN and negative rows dropped, score clipped
    with pytest.raises(UserError, match="detection file not found"):
        read_mot_detections(tmp_path / "missing.txt")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello,world\n")
    with pytest.raises(UserError, match="malformed detection file"):
        read_mot_detections(garbage)
