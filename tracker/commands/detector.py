"""``export-detector``: turn Ultralytics YOLO weights into an ONNX model for the detector.

    python run.py export-detector --weights yolov8n [--dynamic] [--half] [--imgsz 640] [--batch 1] [--out FILE]

``--weights`` is a ``.pt`` path or a model name looked up like every model (``--model-dir``,
``$MCTRACK_MODEL_DIR``, the user cache; the known names ``yolov8n`` / ``yolo11n`` are downloaded).
The export runs Ultralytics' own ``YOLO(weights).export(format="onnx")`` on a copy of the weights
in a temporary folder, so read-only model folders work and a failed export leaves nothing behind;
the finished file is moved to ``--out``. Default: ``<name>.onnx`` beside weights given as a path
in a writable folder; for weights given by name (or in a read-only folder) the user cache
(``$MCTRACK_CACHE`` or ``~/.cache/mctrack``), where model names find it.

The exported model has the raw YOLO head (no NMS inside): ``images`` [B,3,H,W] RGB/255 →
``output0`` [B, 4+classes, anchors], which ``tracker.models.detection.Detector`` decodes.
``--dynamic`` makes batch and input size free (one model for any number of cameras and any
``imgsz``); without it the batch is fixed at ``--batch`` and the size at ``--imgsz``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from tracker.errors import UserError
from tracker.io.atomic import atomic_path
from tracker.models.lookup import cache_dir, resolve_model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _resolve_weights(weights: str, model_dir: str | None) -> Path:
    raw = Path(weights).expanduser()
    if raw.is_file():
        path = raw
    else:
        # A bare name means the checkpoint: "yolov8n" must not resolve to an existing yolov8n.onnx.
        path = resolve_model(weights if raw.suffix else weights + ".pt", model_dir)
    if path.suffix.lower() != ".pt":
        raise UserError(f"--weights must be an Ultralytics .pt checkpoint, got {path}")
    return path


def _writable_dir(folder: Path) -> bool:
    """Writable, and not marked read-only by its mode bits (root's os.access ignores those)."""
    try:
        return bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)
    except OSError:
        return False


def _default_out(weights_arg: str, weights: Path) -> Path:
    """Beside weights given as a path in a writable folder; else (names, read-only folders) the user cache."""
    out = weights.with_suffix(".onnx")
    if Path(weights_arg).expanduser().is_file() and _writable_dir(out.parent):
        return out
    return cache_dir() / out.name


def _has_fp16_weights(onnx_path: Path) -> bool:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def export_detector(weights: str, out: str | os.PathLike | None = None, dynamic: bool = False, half: bool = False,
                    imgsz: int = 640, batch: int = 1, opset: int | None = None, device: str | None = None,
                    model_dir: str | None = None) -> Path:
    """Export YOLO weights to ONNX with Ultralytics; returns the written file.

    Args:
        weights: ``.pt`` path or model name (see the module docstring).
        out: destination ``.onnx`` file (default: see the module docstring).
        dynamic: free batch and input size. Costs nothing at run time on ONNX Runtime and lets one
            file serve any camera count and ``imgsz``; TensorRT builds prefer fixed shapes.
        half: fp16 weights. Halves the file and speeds up GPUs; no gain on the CPU provider.
        imgsz: export input size in pixels (the fixed size, or the default size with ``dynamic``).
        batch: fixed batch size when not ``dynamic``.
        opset: ONNX opset (default: Ultralytics' choice for the installed onnx/torch).
        device: torch device for the export ("cpu", "0"); default "0" for ``half`` when CUDA is
            available, else "cpu".
        model_dir: folder where model names are looked up first.
    Raises:
        UserError: missing weights or packages, a non-detection model, or a failed export.
    """
    if imgsz < 32:
        raise UserError(f"--imgsz must be at least 32 pixels, got {imgsz}")
    if batch < 1:
        raise UserError(f"--batch must be at least 1, got {batch}")
    try:
        import torch
        from ultralytics import YOLO
        from ultralytics.cfg import DEFAULT_CFG_DICT
    except ImportError as exc:
        raise UserError(f"export-detector needs the 'ultralytics' package (and torch): {exc}") from None
    if importlib.util.find_spec("onnx") is None:
        raise UserError("ONNX export needs the 'onnx' package: pip install 'onnx>=1.12' onnxslim")
    src = _resolve_weights(weights, model_dir)
    dest = Path(out).expanduser() if out else _default_out(weights, src)
    if dest.suffix.lower() != ".onnx":
        raise UserError(f"--out must end in .onnx, got {dest}")
    if dest.resolve() == src.resolve():
        raise UserError(f"--out {dest} would overwrite the weights")
    if device is None:
        device = "0" if half and torch.cuda.is_available() else "cpu"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {dest.parent}: {exc.strerror}") from None

    with tempfile.TemporaryDirectory(prefix="mctrack-export-") as tmp:
        work = Path(tmp) / src.name
        shutil.copyfile(src, work)
        from tracker.models.detection import safe_ultralytics_load

        safe_ultralytics_load()
        try:
            model = YOLO(str(work))
        except Exception as exc:  # ultralytics raises many types for a bad or foreign file
            raise UserError(f"cannot load {src} as Ultralytics weights: {_first_line(exc)}") from None
        if model.task != "detect":
            raise UserError(f"{src.name} is an Ultralytics '{model.task}' model; the detector needs a 'detect' model")
        kwargs = dict(format="onnx", dynamic=dynamic, imgsz=imgsz, batch=batch, device=device,
                      simplify=importlib.util.find_spec("onnxslim") is not None)
        if half:  # Ultralytics >= 8.4 names precision 'quantize'; older versions take 'half'
            kwargs["quantize" if "quantize" in DEFAULT_CFG_DICT else "half"] = 16 if "quantize" in DEFAULT_CFG_DICT \
                else True
        if opset:
            kwargs["opset"] = opset
        # Ultralytics logs paths inside the temporary folder; keep its warnings, say where the file went ourselves.
        ul_log = logging.getLogger("ultralytics")
        level = ul_log.level
        ul_log.setLevel(logging.WARNING)
        try:
            exported = Path(model.export(**kwargs))
        except Exception as exc:
            raise UserError(f"ONNX export of {src.name} failed: {_first_line(exc)}") from None
        finally:
            ul_log.setLevel(level)
        if not exported.is_file():
            raise UserError(f"ONNX export of {src.name} produced no file")
        if half and not _has_fp16_weights(exported):
            raise UserError("this Ultralytics version exports fp16 ONNX only on a CUDA GPU (--device 0); without "
                            "one drop --half (fp16 brings no speed-up on the CPU provider anyway)")
        # Whole or not at all: copy next to the destination, then rename over it.
        try:
            with atomic_path(dest) as part:
                shutil.copyfile(exported, part)
        except OSError as exc:
            raise UserError(f"cannot write {dest}: {exc.strerror}") from None
    return dest


def describe_onnx(path: Path) -> str:
    """One line on an exported detector: input shape and type, output shape, class count."""
    from tracker.models.onnx_session import create_session

    sess = create_session(path, ("cpu",), 1)
    inp, outp = sess.get_inputs()[0], sess.get_outputs()[0]
    precision = "fp16" if _has_fp16_weights(path) else "fp32"
    shape = "x".join(str(d) for d in inp.shape)
    size_mb = path.stat().st_size / 2**20
    return f"{precision} weights, input {inp.name} {shape} {inp.type}, output {outp.shape}, {size_mb:.1f} MB"


def cmd_export_detector(args: argparse.Namespace) -> int:
    dest = export_detector(args.weights, args.out, dynamic=args.dynamic, half=args.half, imgsz=args.imgsz,
                           batch=args.batch, opset=args.opset, device=args.device, model_dir=args.model_dir)
    print(f"wrote {dest} ({describe_onnx(dest)})")
    return 0


def register(subparsers) -> None:
    """Add the ``export-detector`` subcommand to an argparse subparsers object."""
    e = subparsers.add_parser(
        "export-detector", help="export Ultralytics YOLO weights to ONNX for the detector",
        description="Export YOLOv8/YOLO11 weights (.pt path or model name) to ONNX with Ultralytics, raw head "
                    "without NMS: images [B,3,H,W] RGB/255 -> output0 [B,4+classes,anchors].")
    e.add_argument("--weights", required=True,
                   help="Ultralytics .pt checkpoint: a path or a name (yolov8n, yolo11n are downloaded when missing)")
    e.add_argument("--dynamic", action="store_true",
                   help="dynamic batch and input size (one file for any camera count and imgsz)")
    e.add_argument("--half", action="store_true", help="fp16 weights (for GPUs; no gain on the CPU provider)")
    e.add_argument("--imgsz", type=int, default=640, help="input size in pixels (default 640)")
    e.add_argument("--batch", type=int, default=1, help="fixed batch size when not --dynamic (default 1)")
    e.add_argument("--opset", type=int, default=None, help="ONNX opset (default: Ultralytics' choice)")
    e.add_argument("--device", default=None, help="export device: cpu or a CUDA index (default: cpu, or 0 for "
                                                  "--half when a GPU is present)")
    e.add_argument("--out", help="output .onnx file (default: beside the weights, or the user cache if that "
                                 "folder is read-only)")
    e.add_argument("--model-dir", help="where model names are looked up (default: $MCTRACK_MODEL_DIR, then cache)")
    e.set_defaults(func=cmd_export_detector)
