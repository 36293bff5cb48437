"""Screenshot of the identity console for the README: runs the pipeline on PETS09-MC (public detections, registry
stored), opens /identities in headless Chromium, selects the identity with the most sightings and saves a PNG.

    .venv/bin/python bench/console_screenshot.py [--out docs/console.png]

Needs chromium and chromium-driver (.ci/install-deps.sh) and selenium (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.console_browser import ROOT, browser_missing, chromium, start_pipeline  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "console.png"))
    args = ap.parse_args()
    why = browser_missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp:
        pipe, thread = start_pipeline(Path(tmp) / "run")
        driver = None
        try:
            if not pipe.lingering.wait(900):
                print(f"error: the pipeline did not finish: {thread.result}", file=sys.stderr)
                return 2
            base = pipe.sinks.url
            listed = json.loads(urllib.request.urlopen(base + "api/identities?limit=500").read())
            gid = max(listed["identities"], key=lambda i: i["sightings"])["gid"]
            driver = chromium(1400, 900)
            driver.get(base + "identities")
            wait = WebDriverWait(driver, 30)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'.card[data-gid="{gid}"]'))
            driver.find_element(By.CSS_SELECTOR, f'.card[data-gid="{gid}"]').click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline rect"))
            time.sleep(1.0)  # thumbnails of the visits
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            import cv2
            import numpy as np

            png = np.frombuffer(driver.get_screenshot_as_png(), np.uint8)
            img = cv2.imdecode(png, cv2.IMREAD_COLOR)
            img = cv2.resize(img, (img.shape[1] * 3 // 4, img.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA)
            # A 128-colour palette keeps the page legible and the PNG small (the README shows it).
            from PIL import Image

            Image.fromarray(img[:, :, ::-1]).quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
                out, optimize=True)
            print(f"saved {out} ({out.stat().st_size // 1024} KiB): identity {gid} selected")
        finally:
            if driver is not None:
                driver.quit()
            pipe.stop()
            thread.join(120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
