"""Helpers for the identity console's browser checks (tests and ``bench/console_screenshot.py``): run the
pipeline on PETS09-MC with the live view lingering, and drive Debian's headless Chromium through Selenium."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def browser_missing() -> str | None:
    """Why the browser checks cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    if not CHROMIUM or not CHROMEDRIVER:
        return "chromium and chromium-driver are not installed (.ci/install-deps.sh installs them)"
    return None


def start_pipeline(out_dir: Path, token: str | None = None, extra: list[str] | None = None):
    """PETS09-MC (public detections, registry stored) with the live view on a free port, lingering.

    Returns (pipeline, thread); the thread runs ``pipeline.run`` and ``pipeline.lingering`` is set
    when the sources have ended and the page shows the final identities.
    """
    from tracker.pipeline import Pipeline, load_run_config

    sets = [f"output.dir={out_dir}", "output.http=true", "output.http_port=0", "output.http_linger=900",
            "multicam.store=registry.db", "pipeline.status_interval=0"]
    if token:
        sets.append(f"output.http_token={token}")
    cfg = load_run_config(str(ROOT / "configs" / "pets09_mc_public.yaml"), sets + list(extra or []))
    pipe = Pipeline(cfg)
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = pipe.run(progress=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            result["error"] = exc

    t = threading.Thread(target=run, name="console-pipeline", daemon=True)
    t.start()
    t.result = result  # type: ignore[attr-defined]
    return pipe, t


def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium with a new empty profile (removed by ``quit``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mctrack-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=os.devnull), options=opts)
    quit_ = driver.quit

    def quit_and_clean() -> None:
        try:
            quit_()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver
