"""The library API: Tracker / MultiCameraTracker on numpy, supervision- and Ultralytics-shaped inputs."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import tracker
from tracker import CameraTracker, Detections, MulticamConfig, MultiCameraTracker, Tracker
from tracker.api import parse_detections


def walkers(k: int) -> np.ndarray:
    """Two people walking right, frame k: (2, 4) xyxy."""
    return np.array([[100 + 3 * k, 50, 140 + 3 * k, 150], [300 + 2 * k, 60, 345 + 2 * k, 170]], np.float32)


def test_public_names_load_lazily_and_core_needs_no_opencv():
    code = ("import sys\nfrom tracker import CameraTracker, Detections, Tracker, MultiCameraTracker, IdentityRegistry\n"
            "from tracker import TrackerConfig, MulticamConfig\n"
            "bad = [m for m in ('cv2', 'onnxruntime', 'torch', 'yaml', 'trackeval') if m in sys.modules]\n"
            "assert not bad, bad\n")
    import subprocess

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert set(tracker.__all__) >= {"CameraTracker", "Detections", "ReIDEncoder", "IdentityRegistry", "Tracker",
                                    "MultiCameraTracker", "TrackerConfig", "MulticamConfig"}
    with pytest.raises(AttributeError):
        tracker.NoSuchThing  # noqa: B018


@pytest.mark.parametrize("form", ["boxes+scores", "rows5", "rows6", "supervision", "ultralytics", "list"])
def test_every_input_form_gives_the_same_tracks(form):
    classes = np.array([0, 2])

    def convert(k):
        b, s = walkers(k), np.array([0.9, 0.8], np.float32)
        if form == "boxes+scores":
            return (b,), {"scores": s, "class_ids": classes}
        if form == "rows5":
            return (np.column_stack([b, s]),), {"class_ids": classes}
        if form == "rows6":
            return (np.column_stack([b, s, classes]),), {}
        if form == "supervision":  # the attribute names of supervision.Detections
            return (types.SimpleNamespace(xyxy=b, confidence=s, class_id=classes),), {}
        boxes = types.SimpleNamespace(xyxy=b, conf=s, cls=classes.astype(np.float32))  # Results.boxes' names
        res = types.SimpleNamespace(boxes=boxes)
        return ([res] if form == "list" else res,), {}

    ref, got = Tracker(fps=25), Tracker(fps=25)
    for k in range(20):
        a = ref.update(walkers(k), np.array([0.9, 0.8]), class_ids=classes)
        args, kw = convert(k)
        b = got.update(*args, **kw)
    assert a.ids.tolist() == b.ids.tolist() == [1, 2]
    assert np.array_equal(a.xyxy, b.xyxy) and b.det_index.tolist() == [0, 1] and b.class_ids.tolist() == [0, 2]


@pytest.mark.slow
def test_real_ultralytics_results_are_accepted():
    torch = pytest.importorskip("torch")
    results_mod = pytest.importorskip("ultralytics.engine.results")
    t = Tracker(fps=10)
    for k in range(10):
        data = torch.tensor(np.column_stack([walkers(k), [0.9, 0.8], [0, 0]]), dtype=torch.float32)
        res = results_mod.Results(np.zeros((240, 480, 3), np.uint8), path="x.jpg", names={0: "person"}, boxes=data)
        out = t.update([res])
    assert out.ids.tolist() == [1, 2] and out.class_ids.tolist() == [0, 0]


def test_same_tracks_as_the_camera_tracker_and_class_kept_through_prediction():
    t, raw = Tracker(fps=10, include_predicted=True), CameraTracker()
    for k in range(12):
        out = t.update(walkers(k), np.array([0.9, 0.8]), class_ids=np.array([5, 7]))
        ref = raw.update(Detections(walkers(k), np.array([0.9, 0.8]), k / 10))
    keep = ref.confirmed
    assert np.array_equal(out.ids, ref.track_ids[keep]) and np.array_equal(out.xyxy, ref.tlbr[keep])
    out = t.update(None)  # nobody detected: confirmed tracks are predicted, and keep their class
    assert out.det_index.tolist() == [-1, -1] and out.class_ids.tolist() == [5, 7]
    assert len(Tracker(fps=10).update(np.zeros((0, 4)), np.zeros(0))) == 0


def test_timestamps_from_fps_from_the_caller_or_the_clock():
    t = Tracker(fps=4)
    assert [t.update(None).timestamp for _ in range(3)] == [0.0, 0.25, 0.5]
    assert Tracker().update(None, timestamp=12.5).timestamp == 12.5
    wall = Tracker()
    first, second = wall.update(None).timestamp, wall.update(None).timestamp
    assert first == 0.0 and second >= 0.0
    with pytest.raises(ValueError, match="fps"):
        Tracker(fps=0)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 3)), "expected"),
    (np.zeros((2, 4)), "without scores"),
])
def test_bad_inputs_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_detections(bad)
    with pytest.raises(ValueError, match="2 boxes but 3 scores"):
        parse_detections(np.zeros((2, 4)), np.ones(3))


class CountingEncoder:
    """A real ReID encoder, counting its calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def embed(self, frames, boxes):
        self.calls.append(len(frames))
        return self.inner.embed(frames, boxes)


def test_tracker_with_an_encoder_needs_the_frame(reid_model):
    from tracker import ReIDEncoder

    t = Tracker(encoder=ReIDEncoder(reid_model, providers=("cpu",)), fps=10)
    with pytest.raises(ValueError, match="frame="):
        t.update(walkers(0), np.array([0.9, 0.8]))
    out = t.update(walkers(0), np.array([0.9, 0.8]), frame=np.full((240, 480, 3), 90, np.uint8))
    assert out.det_index.tolist() == [0, 1] and out.timestamp == 0.0  # the refused call did not count as a frame


def test_multicamera_embeds_all_cameras_in_one_call_and_links_identities(reid_model, data_dir):
    import cv2

    from tracker import ReIDEncoder

    cams = ["cam1", "cam2"]
    caps = {c: cv2.VideoCapture(str(data_dir / "PETS09-MC" / c / f"{c}.mp4")) for c in cams}
    gts = {c: np.loadtxt(data_dir / "PETS09-MC" / c / "gt" / "gt.txt", delimiter=",") for c in cams}
    enc = CountingEncoder(ReIDEncoder(reid_model, providers=("cpu",)))
    mc = MultiCameraTracker(cams, multicam=MulticamConfig(enabled=True, overlaps=(("cam1", "cam2"),)), encoder=enc,
                            fps=7)
    for f in range(1, 31):
        frames, dets = {}, {}
        for c in cams:
            frames[c] = caps[c].read()[1]
            rows = gts[c][gts[c][:, 0] == f]
            dets[c] = (np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]), np.full(len(rows), 0.9))
        out = mc.update(dets, frames=frames)
        rows = [t for t in out.values() if len(t)]
        assert rows and all((t.global_ids >= 1).all() for t in rows)  # every reported track has a global id
    assert enc.calls == [2] * 30  # one batched call per tick, both cameras in it
    with pytest.raises(ValueError, match="unknown camera"):
        mc.update({"cam9": None})
