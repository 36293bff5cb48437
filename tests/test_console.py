"""Identity console: crop quality, bookkeeping, corrections, the store beside the registry's, and (slow) the page
end to end in a real headless Chromium on PETS09-MC."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.console_browser import ROOT, browser_missing, chromium, start_pipeline
from tracker.io import console_store
from tracker.io.console import IdentityConsole
from tracker.io.sinks.console import crop_quality, encode_thumbnail


def test_crop_quality_prefers_large_sharp_unoccluded_boxes():
    boxes = np.array([[10, 10, 50, 110],     # clear
                      [0, 150, 40, 250],     # touches the left border
                      [200, 10, 240, 110],   # half hidden by the next one
                      [220, 10, 260, 110],
                      [300, 10, 320, 60]], np.float32)  # small
    q = crop_quality(boxes, np.array([0.9, 0.9, 0.9, 0.9, 0.9], np.float32), 400, 300)
    assert q[0] == pytest.approx(40 * 100 * 0.9)
    assert q[1] < q[0] and q[2] < q[0] and q[4] < q[0]
    assert q[2] == pytest.approx(q[0] * 0.5)
    jpeg = encode_thumbnail(np.full((300, 400, 3), 90, np.uint8), boxes[0])
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) < 10_000


def test_visits_merges_splits_and_purge(tmp_path):
    store = tmp_path / "registry.db.console"
    c = IdentityConsole(["a", "b"], store=store, retention=300)
    c.start()
    try:
        q = np.array([100.0])
        for t in (0.0, 0.5, 1.0):
            assert c.observe("a", t, np.array([1]), q) == ([0] if t == 0.0 else [])
            c.set_thumbnail("a", 1, b"\xff\xd8jpeg1", 100.0) if t == 0.0 else None
        c.observe("b", 10.0, np.array([2]), q)
        c.set_thumbnail("b", 2, b"\xff\xd8jpeg2", 100.0)
        c.observe("a", 20.0, np.array([1]), q)  # a new visit after the gap
        d = c.detail(1)
        assert [(v["camera"], v["t0"], v["t1"]) for v in d["visits"]] == [("a", 0.0, 1.0), ("a", 20.0, 20.0)]
        v0 = c.version
        c.apply_events([{"type": "identity_merged", "time": 21.0, "identity": 1, "merged": 2, "reason": "test"}])
        assert c.detail(2)["gid"] == 1 and [v["camera"] for v in c.detail(1)["visits"]] == ["a", "b", "a"]
        ch = c.changes(v0)
        assert ch["events"][0]["type"] == "merged" and ch["events"][0]["merged"] == 2
        assert [i["gid"] for i in c.list()["identities"]] == [1]
        c.observe("b", 22.0, np.array([2]), q)  # late rows of the merged id land on the identity kept
        assert c.list()["total"] == 1 and c.detail(1)["sightings"] == 6
        c._save()
        assert console_store.load_identities(store, 0)[0][0] == 1
        assert console_store.purge(store, 1) == 2  # run.py registry purge: from disk at once
        assert console_store.load_identities(store, 0) == []
        deadline = time.monotonic() + 5
        while c.detail(1) is not None and time.monotonic() < deadline:  # the running console drops it
            time.sleep(0.05)
        assert c.detail(1) is None and c.thumbnail(1, None) is None
        assert any(e["type"] == "purged" and e["gid"] == 1 for e in c.changes(0)["events"])
        c.observe("a", 23.0, np.array([1]), q)  # rows of a purged id (the registry forgets it later) are ignored
        assert c.list()["total"] == 0
    finally:
        c.close()
    assert oct(store.stat().st_mode & 0o777) == "0o600"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read(64)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _cameras_from_events(out_dir) -> dict[int, set[str]]:
    """global id -> cameras it was seen in, from events.jsonl, with the registry's merges applied."""
    seen: dict[int, set[str]] = {}
    alias: dict[int, int] = {}
    for line in (out_dir / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["type"] == "identity_seen" and e.get("global_id", -1) >= 0:
            g = alias.get(e["global_id"], e["global_id"])
            seen.setdefault(g, set()).add(e["camera"])
        elif e["type"] == "identity_merged":
            keep, drop = alias.get(e["identity"], e["identity"]), e["merged"]
            alias[drop] = keep
            for k, v in list(alias.items()):
                if v == drop:
                    alias[k] = keep
            seen.setdefault(keep, set()).update(seen.pop(drop, set()))
    return seen


def _crop_of(out_dir, gid: int, camera: str, t0: float = -1.0, t1: float = 1e9) -> np.ndarray:
    """A crop of identity ``gid`` from the camera's full-resolution video, in the middle of its rows in the MOT
    output between stream times ``t0`` and ``t1`` (seconds)."""
    import configparser

    ini = configparser.ConfigParser()
    ini.read(Path(_video(camera)).parent / "seqinfo.ini")
    fps = float(ini["Sequence"]["frameRate"])
    rows = [r.split(",") for r in (out_dir / f"{camera}.txt").read_text().splitlines()]
    rows = [r for r in rows if int(r[1]) == gid]
    mid = (max(t0, 0.0) + min(t1, (int(rows[-1][0]) - 1) / fps)) / 2  # the row nearest the middle of [t0, t1]
    f, _, left, top, w, h = min(rows, key=lambda r: abs((int(r[0]) - 1) / fps - mid))[:6]
    cap = cv2.VideoCapture(_video(camera))
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(f) - 1)
    ok, frame = cap.read()
    cap.release()
    assert ok
    x0, y0 = max(0, int(float(left))), max(0, int(float(top)))
    return frame[y0:y0 + int(float(h)), x0:x0 + int(float(w))]


def _video(camera: str) -> str:
    import os

    return os.path.join(os.environ.get("MCTRACK_DATA_DIR", str(ROOT.parent / "shared" / "data")), "PETS09-MC",
                        camera, f"{camera}.mp4")


@pytest.mark.slow
def test_console_in_chromium_end_to_end(tmp_path):
    why = browser_missing()
    if why:
        pytest.skip(why)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    token = "e2e-t0ken"
    out = tmp_path / "run"
    pipe, thread = start_pipeline(out, token=token)
    driver = None
    try:
        assert pipe.lingering.wait(600) or thread.result, thread.result  # type: ignore[attr-defined]
        assert "error" not in thread.result, thread.result  # type: ignore[attr-defined]
        base = pipe.sinks.url
        # Without credentials nothing is served (the thumbnails least of all).
        for path in ("identities", "api/identities", "api/events", "api/site", "thumb/1/best.jpg", "static/console.js"):
            assert _get(base + path) == 401, path
        assert _get(base + "thumb/1/best.jpg?token=wrong") == 401

        driver = chromium()
        driver.get(base + "identities")  # no token: the page itself is refused
        assert "unauthorized" in driver.page_source and not driver.find_elements(By.CSS_SELECTOR, ".card")

        driver.get(base + f"identities?token={token}")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) >= 5)
        wait.until(lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
                                 for img in d.find_elements(By.CSS_SELECTOR, ".card img")))
        # Each card's cameras are those the registry's events saw that identity in.
        truth = _cameras_from_events(out)
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        for card in cards:
            gid = int(card.get_attribute("data-gid"))
            cams = {li.get_attribute("data-camera") for li in card.find_elements(By.CSS_SELECTOR, "li")}
            assert cams == truth[gid], (gid, cams, truth.get(gid))

        # Search with a crop of a known person (from the video, not a thumbnail): that person ranks first.
        listed = json.loads(urllib.request.urlopen(base + f"api/identities?limit=500&token={token}").read())
        person = max(listed["identities"], key=lambda i: i["sightings"])
        detail = json.loads(urllib.request.urlopen(base + f"api/identities/{person['gid']}?token={token}").read())
        visit = detail["visits"][detail["best"]]  # the visit the page shows this person by; the crop is the video's
        crop_path = tmp_path / "query.png"
        cv2.imwrite(str(crop_path), _crop_of(out, person["gid"], visit["camera"], visit["t0"], visit["t1"]))
        driver.find_element(By.ID, "upload").send_keys(str(crop_path))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hits li[data-gid]"))
        hits = driver.find_elements(By.CSS_SELECTOR, "#hits li[data-gid]")
        assert int(hits[0].get_attribute("data-gid")) == person["gid"], [h.text for h in hits[:3]]
        assert 0 < float(hits[0].get_attribute("data-score")) <= 1.0001

        # One identity: its journey and site map.
        driver.find_element(By.CSS_SELECTOR, f'.card[data-gid="{person["gid"]}"]').click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline rect[data-visit]"))
        assert driver.find_elements(By.CSS_SELECTOR, "#sitemap polygon[data-camera]")  # homographies: fields of view

        # Purge: the card leaves the open page, the thumbnails leave the disk.
        victim = int(cards[0].get_attribute("data-gid"))
        store = out / "registry.db"
        done = subprocess.run([sys.executable, str(ROOT / "run.py"), "registry", "purge", "--store", str(store),
                               "--id", str(victim)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'.card[data-gid="{victim}"]'))
        assert _get(base + f"thumb/{victim}/best.jpg?token={token}") == 404
        assert all(g != victim for g, *_ in console_store.load_identities(out / "registry.db.console", 0))
    finally:
        if driver is not None:
            driver.quit()
        pipe.stop()
        thread.join(120)
    assert not thread.is_alive()
