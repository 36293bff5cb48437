"""ONNX Runtime session creation with provider choice, fallback and explicit CPU threads."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from tracker.errors import UserError

log = logging.getLogger(__name__)

_PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def create_session(path: Path, providers: tuple[str, ...] = ("cuda", "cpu"), cpu_threads: int = 0):
    """Open an ONNX model with the first of ``providers`` that loads; logs which one is used.

    Args:
        path: the .onnx file.
        providers: preference order among "tensorrt", "cuda", "cpu".
        cpu_threads: intra-op threads for the CPU provider; 0 = onnxruntime's default (all cores).
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = []
    for p in providers:
        if p not in _PROVIDER_NAMES:
            raise UserError(f"unknown execution provider '{p}' (allowed: {', '.join(_PROVIDER_NAMES)})")
        if _PROVIDER_NAMES[p] in available:
            wanted.append(_PROVIDER_NAMES[p])
    if "CPUExecutionProvider" not in wanted:
        wanted.append("CPUExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Idle intra-op threads otherwise keep spinning after a run and slow the other session that runs
    # next in the same tick (detector then ReID): measured 186 -> 85 ms per alternating run on 2 cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if cpu_threads > 0:
        opts.intra_op_num_threads = cpu_threads
        opts.inter_op_num_threads = 1
    # onnxruntime-gpu prints multi-line library errors when CUDA/TensorRT are listed but their
    # libraries are missing; silence them while creating and say it in one line ourselves.
    ort.set_default_logger_severity(4)
    captured = io.StringIO()  # onnxruntime's Python layer print()s its TensorRT fallback banner
    try:
        with contextlib.redirect_stdout(captured):
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
        raise UserError(f"cannot load ONNX model {path}: {str(exc).splitlines()[0]}") from None
    finally:
        ort.set_default_logger_severity(3)
        if captured.getvalue().strip():
            log.debug("onnxruntime: %s", captured.getvalue().strip())
    used = sess.get_providers()[0]
    unusable = [p for p in wanted[: wanted.index(used)]] if used in wanted else []
    if unusable:
        log.info("%s: %s not usable here (no GPU or missing CUDA libraries); falling back",
                 Path(path).name, ", ".join(unusable))
    log.info("%s: running on %s", Path(path).name, used)
    return sess
