"""Shared fixtures: real models and data from ../shared (or $MCTRACK_DATA_DIR / $MCTRACK_MODEL_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _shared_dir(env: str, default: Path, what: str) -> Path:
    d = Path(os.environ.get(env) or default)
    if not d.is_dir():
        pytest.skip(f"shared {what} folder not present: {d}")
    return d


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _shared_dir("MCTRACK_DATA_DIR", SHARED / "data", "data")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return _shared_dir("MCTRACK_MODEL_DIR", SHARED / "models", "model")


@pytest.fixture(scope="session")
def reid_model(model_dir) -> Path:
    return model_dir / "reid" / "osnet_x0_25_msmt17.onnx"


@pytest.fixture(scope="session")
def pets(data_dir) -> Path:
    return data_dir / "PETS09-S2L1"
