"""``export-reid``: torchreid state dict (.pth) -> ONNX model that ``ReIDEncoder`` reads.

    python run.py export-reid --arch osnet_x0_25 --weights osnet_x0_25_msmt17.pth --out osnet.onnx \\
        [--num-classes N] [--height 256 --width 128] [--opset 17]

The network is built from the model definitions of the PyPI package ``torchreid`` (0.2.5). Its
model files need only torch, but ``import torchreid`` also imports its training stack (gdown,
tensorboard, ...), so the model definition file that defines ``--arch`` is loaded on its own
from the installed package; ``pip install torchreid==0.2.5`` (it declares no dependencies) is
all that is needed besides torch and onnx.

Weights are read with ``torch.load(weights_only=True)`` (tensors only, no arbitrary pickled
code); ``module.`` prefixes (DataParallel) are stripped; the identity classifier is dropped,
since inference returns the feature vector before it, so any ``--num-classes`` fits. The export
has a dynamic batch axis, input ``images`` [B,3,H,W] (RGB, /255, ImageNet mean/std: written to
the model's metadata as ``mean``/``std``/``color``) and output ``output`` [B,D] (not normalised).
Before the file is written, ONNX Runtime's output is compared with torch's on random crops;
below cosine 0.999 the export fails and nothing is written.

torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import warnings
from pathlib import Path

import numpy as np

from tracker.errors import UserError
from tracker.io.atomic import atomic_path

MIN_COSINE = 0.999  # ONNX vs torch, per crop; float32 exports agree to about 1e-6


def _torchreid_models_dir() -> Path:
    """The folder of torchreid's model definition files, without importing the package."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("export-reid needs the torchreid package: pip install torchreid==0.2.5")
    root = Path(next(iter(spec.submodule_search_locations)))
    for sub in ("reid/models", "models"):  # PyPI torchreid 0.2.5 layout, then upstream deep-person-reid's
        if (root / sub / "osnet.py").is_file():
            return root / sub
    raise UserError(f"no model definitions found in the torchreid package at {root} (expected reid/models/osnet.py)")


def build_torchreid_model(arch: str, num_classes: int):
    """Build torchreid's ``arch`` (e.g. osnet_x0_25) without pretrained weights, in eval mode.

    The model file that defines ``def <arch>(`` is loaded alone (it imports only torch).
    """
    models_dir = _torchreid_models_dir()
    pattern = re.compile(rf"^def {re.escape(arch)}\(", re.M)
    found = [p for p in sorted(models_dir.glob("*.py")) if p.name != "__init__.py" and pattern.search(p.read_text())]
    if not found:
        names = sorted({m for p in models_dir.glob("*.py") if p.name != "__init__.py"
                        for m in re.findall(r"^def ((?:osnet|resnet|mobilenet|shufflenet)\w*)\(", p.read_text(), re.M)})
        raise UserError(f"unknown torchreid architecture '{arch}' (known include: {', '.join(names)})")
    path = found[0]
    spec = importlib.util.spec_from_file_location(f"_torchreid_models_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        model = getattr(module, arch)(num_classes=num_classes, loss="softmax", pretrained=False)
    except TypeError as exc:  # a builder with another signature (e.g. a class, not a model function)
        raise UserError(f"torchreid '{arch}' cannot be built as a model function: {exc}") from None
    return model.eval()


def load_state_dict(path: Path) -> dict:
    """Tensors of a torchreid checkpoint or state dict, ``module.`` prefixes stripped."""
    import pickle

    import torch

    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UserError(f"cannot read weights {path} as a torch state dict (weights_only): "
                        f"{str(exc).splitlines()[0]}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # torchreid training checkpoint
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _is_classifier(key: str) -> bool:
    return key.split(".")[0] == "classifier"


def _export(model, out: Path, height: int, width: int, opset: int) -> None:
    import torch

    dummy = torch.zeros(2, 3, height, width)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation notes of the TorchScript exporter
            torch.onnx.export(model, (dummy,), str(out), dynamo=False, input_names=["images"],
                              output_names=["output"], dynamic_axes={"images": {0: "batch"}, "output": {0: "batch"}},
                              opset_version=opset, do_constant_folding=True)
    except Exception as exc:  # the exporter's errors are many and deep
        raise UserError(f"ONNX export failed: {str(exc).splitlines()[0]}") from None


def _add_metadata(path: Path, meta: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise UserError("export-reid needs the onnx package to write model metadata: pip install onnx") from None
    model = onnx.load(str(path))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def compare_with_torch(model, onnx_path: Path, height: int, width: int, n: int = 4, seed: int = 0) -> float:
    """Smallest cosine between torch and ONNX Runtime (CPU) features of ``n`` random crops.

    The crops are random uint8 images normalised as the encoder does, run as one batch (and the
    first one alone, which checks the dynamic batch axis).
    """
    import onnxruntime as ort
    import torch

    from tracker.models.reid import IMAGENET_MEAN, IMAGENET_STD

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, height, width, 3)).astype(np.float32) / 255.0
    x = ((pixels - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32))
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    try:
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"images": x})[0]
        one = sess.run(None, {"images": x[:1]})[0]
    except Exception as exc:  # onnxruntime's own exception types
        raise UserError(f"ONNX Runtime cannot run the exported model: {str(exc).splitlines()[0]}") from None
    got = np.concatenate([got, one])
    ref = np.concatenate([ref, ref[:1]])
    if got.shape != ref.shape:
        raise UserError(f"ONNX output shape {got.shape} differs from torch's {ref.shape}")
    cos = np.sum(ref * got, axis=1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1), 1e-12)
    return float(cos.min())


def export_reid(arch: str, weights: Path, out: Path, num_classes: int | None = None, height: int = 256,
                width: int = 128, opset: int = 17) -> float:
    """Export torchreid ``arch`` with ``weights`` to ``out`` (written only if it agrees with torch).

    Returns:
        the smallest torch-vs-ONNX cosine over the check crops (>= MIN_COSINE).
    """
    from tracker.models.reid import IMAGENET_MEAN, IMAGENET_STD

    weights = Path(weights)
    if not weights.is_file():
        raise UserError(f"weights file not found: {weights}")
    if height < 16 or width < 16:
        raise UserError(f"--height/--width must be at least 16 px, got {height}x{width}")
    if importlib.util.find_spec("torch") is None:
        raise UserError("export-reid needs torch (pip install torch)")
    _torchreid_models_dir()  # fail on a missing torchreid before the weights are read
    state = load_state_dict(weights)
    if num_classes is None:
        cls = state.get("classifier.weight")
        num_classes = int(cls.shape[0]) if cls is not None and cls.ndim == 2 else 1000
    model = build_torchreid_model(arch, num_classes)
    features = {k: v for k, v in state.items() if not _is_classifier(k)}
    expected = {k for k in model.state_dict() if not _is_classifier(k)}
    missing, unexpected = sorted(expected - set(features)), sorted(set(features) - expected)
    if missing or unexpected:
        raise UserError(f"{weights} does not fit {arch}: {len(missing)} missing keys (e.g. {missing[:3]}), "
                        f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    try:
        model.load_state_dict(features, strict=False)
    except RuntimeError as exc:  # shape mismatches
        lines = [s.strip() for s in str(exc).splitlines() if "size mismatch" in s]
        raise UserError(f"{weights} does not fit {arch}: {lines[0] if lines else str(exc).splitlines()[0]}") from None
    model.eval()

    out = Path(out)
    with atomic_path(out) as tmp:  # renamed onto out only after the check
        _export(model, tmp, height, width, opset)
        _add_metadata(tmp, {
            "mean": json.dumps(list(IMAGENET_MEAN)), "std": json.dumps(list(IMAGENET_STD)), "color": "rgb",
            "arch": arch, "weights": Path(weights).name, "num_classes": str(num_classes),
        })
        cos = compare_with_torch(model, tmp, height, width)
        if not cos >= MIN_COSINE:
            raise UserError(f"exported model disagrees with torch: min cosine {cos:.5f} < {MIN_COSINE} "
                            f"(try another --opset); nothing written")
    return cos


def cmd_export_reid(args: argparse.Namespace) -> int:
    cos = export_reid(args.arch, Path(args.weights), Path(args.out), args.num_classes, args.height, args.width,
                      args.opset)
    print(f"wrote {args.out} ({args.arch}, input images [B,3,{args.height},{args.width}], output [B,D]); "
          f"ONNX vs torch min cosine {cos:.6f}")
    return 0


def register(subparsers) -> None:
    """Add the ``export-reid`` subcommand to an argparse subparsers object."""
    e = subparsers.add_parser(
        "export-reid", help="export a torchreid ReID state dict (.pth) to ONNX for --reid",
        description="Build a torchreid architecture (PyPI torchreid 0.2.5 model definitions), load a state dict "
                    "(weights_only), export it with a dynamic batch axis (input 'images', output 'output', "
                    "normalisation in the metadata) and check ONNX Runtime against torch (cosine >= 0.999).")
    e.add_argument("--arch", default="osnet_x0_25", help="torchreid model name (default osnet_x0_25)")
    e.add_argument("--weights", required=True, help="state dict or torchreid checkpoint (.pth)")
    e.add_argument("--out", required=True, help="ONNX file to write (written only after the check passes)")
    e.add_argument("--num-classes", type=int,
                   help="training identities (default: from the state dict's classifier; unused at inference)")
    e.add_argument("--height", type=int, default=256, help="input height in px (default 256)")
    e.add_argument("--width", type=int, default=128, help="input width in px (default 128)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.set_defaults(func=cmd_export_reid)
