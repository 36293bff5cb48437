"""Shared fixtures: real models and data from ../shared (or $MCTRACK_DATA_DIR / $MCTRACK_MODEL_DIR)."""

from __future__ import annotations

import os
import time
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


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``predicate()`` until it is true (True) or ``timeout`` s have passed (False).

    For tests that wait for something to happen (frames arriving, a file written, a state
    reached) and are not about how long it takes: the timeout is generous, a pass is as fast as
    the event. ``wait_until`` fails the test instead of returning False.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01, what: str = "the condition") -> None:
    """``wait_for``, failing the test with ``what`` when ``predicate()`` is still false after ``timeout`` s."""
    if not wait_for(predicate, timeout, interval):
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}", pytrace=False)
