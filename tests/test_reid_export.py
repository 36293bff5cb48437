"""export-reid: torchreid state dict -> ONNX, on the shared OSNet-x0.25 weights and PETS09 crops.

The export tests are skipped only when torch, onnx or the torchreid package is not installed
(pip install torchreid==0.2.5); the rest need none of them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest

from tracker.commands import reid_export
from tracker.errors import UserError
from tracker.models.reid import ReIDEncoder

_MISSING = [m for m in ("torch", "onnx", "torchreid") if importlib.util.find_spec(m) is None]
_installed = pytest.mark.skipif(bool(_MISSING), reason=f"not installed: {', '.join(_MISSING)} "
                                                        "(pip install torchreid==0.2.5)")


def needs_export(test):
    """Needs torch, onnx and torchreid; slow: importing torch and exporting take seconds."""
    return pytest.mark.slow(_installed(test))


@pytest.fixture(scope="module")
def weights(model_dir):
    path = model_dir / "reid" / "osnet_x0_25_msmt17.pth"
    if not path.is_file():
        pytest.skip(f"state dict not present: {path}")
    return path


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "osnet_x0_25_msmt17.onnx"
    cos = reid_export.export_reid("osnet_x0_25", weights, out)
    return out, cos


@pytest.fixture(scope="module")
def torch_model(weights):
    state = reid_export.load_state_dict(weights)
    model = reid_export.build_torchreid_model("osnet_x0_25", 1041)
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="module")
def pets_crops(pets):
    """Two PETS09 frames (1 and 2) with their ground-truth tlbr boxes and ids."""
    import cv2

    gt = np.loadtxt(pets / "gt" / "gt.txt", delimiter=",")
    cap = cv2.VideoCapture(str(pets / "video" / "vtest.avi"))
    frames = [cap.read()[1] for _ in range(2)]
    cap.release()
    boxes, ids = [], []
    for f in (1, 2):
        rows = gt[gt[:, 0] == f]
        tlbr = rows[:, 2:6].astype(np.float32)
        tlbr[:, 2:] += tlbr[:, :2]
        boxes.append(tlbr)
        ids.append(rows[:, 1].astype(int))
    return frames, boxes, ids


@needs_export
def test_export_round_trip(exported):
    import onnx

    out, cos = exported
    assert out.is_file() and cos >= reid_export.MIN_COSINE
    assert not list(out.parent.glob("*.part"))  # the temporary file is gone
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["mean"]) == [0.485, 0.456, 0.406]
    assert json.loads(meta["std"]) == [0.229, 0.224, 0.225]
    assert meta["color"] == "rgb" and meta["arch"] == "osnet_x0_25" and meta["num_classes"] == "1041"
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert (inp.name, outp.name) == ("images", "output")
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 256, 128]  # dynamic batch


@needs_export
def test_exported_model_in_encoder_agrees_with_torch(exported, torch_model, pets_crops):
    import torch

    out, _ = exported
    frames, boxes, ids = pets_crops
    enc = ReIDEncoder(out, providers=("cpu",), cpu_threads=2)
    assert (enc.input_name, enc.height, enc.width, enc.fixed_batch, enc.dim) == ("images", 256, 128, None, 512)
    emb = enc.embed(frames, boxes)
    # torch on exactly the encoder's input tensor
    crops = np.concatenate([enc.crops(f, b) for f, b in zip(frames, boxes, strict=True)])
    x = np.empty((len(crops), 3, 256, 128), np.float32)
    _, planes, _ = enc._buffers(len(crops))
    enc._normalise(crops, planes, x)
    with torch.no_grad():
        ref = torch_model(torch.from_numpy(x)).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    cos = np.sum(ref * np.concatenate(emb), axis=1)
    assert cos.min() >= 0.999
    # and it is a working ReID model: the same people in consecutive frames are closest
    sim = emb[0] @ emb[1].T
    same = ids[0][:, None] == ids[1][None, :]
    assert same.any() and sim[same].min() > sim[~same].max()


@needs_export
def test_num_classes_ignored_for_features(weights, tmp_path):
    import onnx

    out = tmp_path / "m.onnx"
    cos = reid_export.export_reid("osnet_x0_25", weights, out, num_classes=10, height=128, width=64, opset=13)
    assert cos >= reid_export.MIN_COSINE
    enc = ReIDEncoder(out, providers=("cpu",))
    assert (enc.height, enc.width, enc.dim) == (128, 64, 512)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["num_classes"] == "10"


@needs_export
def test_state_dict_prefix_and_checkpoint_forms(weights, tmp_path):
    import torch

    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    wrapped = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    loaded = reid_export.load_state_dict(wrapped)
    assert loaded.keys() == state.keys()


@pytest.mark.parametrize("case, match", [
    ("garbage", "cannot read weights"),
    ("not_tensors", "not a state dict of tensors"),
    ("wrong_arch", "does not fit osnet_x0_5"),
    ("unknown_arch", "unknown torchreid architecture"),
])
@needs_export
def test_bad_inputs_are_user_errors(case, match, weights, tmp_path):
    import torch

    out = tmp_path / "out.onnx"
    path, arch = weights, "osnet_x0_25"
    if case == "garbage":
        path = tmp_path / "garbage.pth"
        path.write_bytes(b"definitely not a checkpoint")
    elif case == "not_tensors":
        path = tmp_path / "list.pth"
        torch.save([1, 2, 3], path)
    elif case == "wrong_arch":
        arch = "osnet_x0_5"
    else:
        arch = "osnet_x9"
    with pytest.raises(UserError, match=match):
        reid_export.export_reid(arch, path, out)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_missing_weights_is_user_error(tmp_path):
    """Needs neither torch nor torchreid: the path is checked first."""
    out = tmp_path / "out.onnx"
    with pytest.raises(UserError, match="weights file not found"):
        reid_export.export_reid("osnet_x0_25", tmp_path / "nope.pth", out)
    assert not out.exists()


def test_command_line(tmp_path):
    parser = argparse.ArgumentParser()
    reid_export.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export-reid", "--weights", str(tmp_path / "nope.pth"),
                              "--out", str(tmp_path / "o.onnx")])
    assert (args.arch, args.height, args.width, args.opset, args.num_classes) == ("osnet_x0_25", 256, 128, 17, None)
    with pytest.raises(UserError, match="weights file not found"):
        args.func(args)


# ---- encoder paths that a GPU machine takes, exercised on CPU (no GPU on the development machines)


def test_fp16_copy_close_to_fp32(reid_model, pets_crops):
    """ReIDEncoder(fp16=True) converts the model (what the CUDA path does by default); checked here on CPU."""
    pytest.importorskip("onnx")
    if not reid_model.is_file():
        pytest.skip(f"ReID model not present: {reid_model}")
    frames, boxes, _ = pets_crops
    e32 = ReIDEncoder(reid_model, providers=("cpu",))
    e16 = ReIDEncoder(reid_model, providers=("cpu",), fp16=True)
    assert e16.fp16 and not e32.fp16 and e16.input_dtype == np.float32  # float32 I/O kept
    a, b = np.concatenate(e32.embed(frames, boxes)), np.concatenate(e16.embed(frames, boxes))
    assert np.sum(a * b, axis=1).min() >= 0.999


def test_io_binding_call_sequence_on_cpu(reid_model):
    """The CUDA path's IOBinding calls, run against the CPU provider: same output as session.run."""
    if not reid_model.is_file():
        pytest.skip(f"ReID model not present: {reid_model}")
    enc = ReIDEncoder(reid_model, providers=("cpu",))
    x = np.random.default_rng(0).standard_normal((3, 3, 256, 128)).astype(np.float32)
    ref = enc.session.run(None, {enc.input_name: x})[0]
    assert np.allclose(enc._run_bound(x, "cpu"), ref, atol=1e-5)


@needs_export
@pytest.mark.parametrize(("arch", "dim"), [("resnet50", 2048), ("osnet_ain_x0_25", 512)])
def test_other_torchreid_architectures_plug_in_with_no_code_change(arch, dim, tmp_path, data_dir):
    """Any torchreid model exported with export-reid is a drop-in ReID model: here two other architectures (one
    with 2048-d features), with freshly initialised weights (no other pretrained weights can be fetched here),
    run two PETS09-MC cameras through ``MultiCameraTracker`` with the identity registry, as ``reid.model`` would."""
    import cv2
    import torch

    from tracker import MulticamConfig, MultiCameraTracker

    torch.manual_seed(0)
    weights = tmp_path / f"{arch}.pth"
    torch.save(reid_export.build_torchreid_model(arch, 10).state_dict(), weights)
    onnx_path = tmp_path / f"{arch}.onnx"
    assert reid_export.export_reid(arch, weights, onnx_path) >= reid_export.MIN_COSINE
    enc = ReIDEncoder(str(onnx_path), providers=["cpu"])
    mc = data_dir / "PETS09-MC"
    cams = ["cam1", "cam2"]
    dets = {c: np.loadtxt(mc / c / "det" / "det.txt", delimiter=",", ndmin=2) for c in cams}
    caps = {c: cv2.VideoCapture(str(mc / c / f"{c}.mp4")) for c in cams}
    tracker = MultiCameraTracker(cams, multicam=MulticamConfig(enabled=True, overlaps=(("cam1", "cam2"),)),
                                 encoder=enc, fps=7)
    seen = set()
    for f in range(1, 16):
        frames = {c: caps[c].read()[1] for c in cams}
        rows = {c: dets[c][dets[c][:, 0] == f] for c in cams}
        boxes = {c: np.column_stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5], r[:, 6]])
                 for c, r in rows.items()}
        out = tracker.update(boxes, frames=frames)
        for t in out.values():
            seen |= set(t.global_ids[t.global_ids >= 0].tolist())
    for cap in caps.values():
        cap.release()
    assert seen, "no global identity was given"
    sums = [t.emb_sum for t in tracker.registry.tracks.values() if t.emb_sum is not None]
    assert sums and all(v.shape == (dim,) for v in sums)  # the registry holds the new model's features
