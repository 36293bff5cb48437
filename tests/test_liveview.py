"""Live view: HTML page, MJPEG stream, Prometheus metrics, token and basic auth (a server on 127.0.0.1, port 0)."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

from streams.frame import Frame
from tracker.config import OutputConfig
from tracker.core.types import TrackOutput
from tracker.io.liveview import LiveView, escape_label_value, format_metric_value
from tracker.io.sinks import CameraResult, CameraStats, Sinks

CAMS = ["cam1", 'we<ird"cam\\x']


def tick(cam: str, f: int) -> CameraResult:
    img = np.full((72, 96, 3), 100, np.uint8)
    t = TrackOutput(np.array([1]), np.array([4]), np.array([[10, 10, 40, 60]], np.float32), np.array([0.9], np.float32),
                    np.array([0]), np.array([True]), f / 10)
    return CameraResult(cam, Frame(cam, f, f / 10, img), t, time.monotonic())


def stats(cam: str) -> CameraStats:
    return CameraStats(cam, "rtsp://***@host/1", 9.5, 120, 3, 1, 0.05, 20.0, 45.5, "running")


@pytest.fixture
def sinks(tmp_path):
    s = Sinks(OutputConfig(dir=str(tmp_path), mot=False, events=False, http=True, http_port=0), CAMS)
    s.start()
    yield s
    s.close()


def get(url: str, headers: dict | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_index_lists_every_camera_escaped(sinks):
    assert sinks.url.startswith("http://127.0.0.1:") and not sinks.url.endswith(":0/")
    code, ctype, body = get(sinks.url)
    page = body.decode()
    assert code == 200 and ctype.startswith("text/html")
    assert "cam1" in page and "stream/cam1" in page
    assert 'we<ird"cam' not in page and "we&lt;ird&quot;cam" in page
    assert "stream/" + urllib.parse.quote(CAMS[1], safe="") in page
    assert get(sinks.url + "healthz")[:2] == (200, "text/plain; charset=utf-8")
    assert get(sinks.url + "nothing")[0] == 404
    assert get(sinks.url + "stream/unknown")[0] == 404


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(?:,|$)')


def parse_metrics(text: str) -> dict[str, list[tuple[dict, float]]]:
    """A strict little parser of the text exposition format: every family needs HELP and TYPE first."""
    fams: dict[str, list] = {}
    helped, typed = set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in {"counter", "gauge", "summary", "histogram", "untyped"}
            typed.add(name)
        else:
            m = _SAMPLE.match(line)
            assert m, f"bad sample line {line!r}"
            name, labels, value = m.groups()
            assert name in helped and name in typed, f"{name} has no HELP/TYPE before its samples"
            lab = {}
            if labels:
                pos = 0
                while pos < len(labels):
                    lm = _LABEL.match(labels, pos)
                    assert lm, f"bad labels in {line!r}"
                    lab[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                    pos = lm.end()
            fams.setdefault(name, []).append((lab, float(value)))
    return fams


def test_metrics_parse(sinks):
    fams = parse_metrics(get(sinks.url + "metrics")[2].decode())  # before any tick: defaults
    assert fams["mctrack_fps"][0][1] != fams["mctrack_fps"][0][1]  # NaN
    sinks.submit([tick(c, 1) for c in CAMS], [stats(c) for c in CAMS])
    code, ctype, body = get(sinks.url + "metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    fams = parse_metrics(body.decode())
    for name in ("mctrack_frames_total", "mctrack_frames_dropped_total", "mctrack_reconnects_total", "mctrack_fps",
                 "mctrack_latency_seconds", "mctrack_last_frame_age_seconds", "mctrack_active_tracks",
                 "mctrack_sink_dropped_frames_total"):
        assert {s[0]["camera"] for s in fams[name]} == set(CAMS), name
    by_cam = {s[0]["camera"]: s[1] for s in fams["mctrack_frames_total"]}
    assert by_cam == {c: 120.0 for c in CAMS}
    lat = {(s[0]["camera"], s[0]["quantile"]): s[1] for s in fams["mctrack_latency_seconds"]}
    assert lat[("cam1", "0.5")] == pytest.approx(0.02) and lat[("cam1", "0.95")] == pytest.approx(0.0455)
    assert {s[0]["camera"]: s[1] for s in fams["mctrack_active_tracks"]}["cam1"] == 1
    data = json.loads(get(sinks.url + "stats.json")[2])
    assert [r["camera"] for r in data["cameras"]] == CAMS and data["cameras"][0]["state"] == "running"


def test_label_escaping_and_values():
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert [format_metric_value(v) for v in (3, 0.5, float("nan"), float("inf"), True)] == \
        ["3", "0.5", "NaN", "+Inf", "1"]


def test_stream_sends_multipart_jpeg(sinks):
    host, port = urllib.parse.urlsplit(sinks.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/stream/" + urllib.parse.quote(CAMS[1], safe=""))
    resp = conn.getresponse()
    assert resp.status == 200
    ctype = resp.getheader("Content-Type")
    assert ctype.startswith("multipart/x-mixed-replace")
    boundary = ctype.split("boundary=")[1]
    stop = threading.Event()

    def feed():  # frames are annotated only while a client watches: keep ticking until one arrives
        f = 1
        while not stop.is_set():
            sinks.submit([tick(c, f) for c in CAMS], [stats(c) for c in CAMS])
            f += 1
            time.sleep(0.02)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert resp.readline().strip() == f"--{boundary}".encode()
        headers = {}
        while (line := resp.readline().strip()):
            k, v = line.decode().split(":", 1)
            headers[k.lower()] = v.strip()
        assert headers["content-type"] == "image/jpeg"
        jpeg = resp.read(int(headers["content-length"]))
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    finally:
        stop.set()
        feeder.join()
        conn.close()


def test_token_auth():
    view = LiveView(["c1"], "127.0.0.1", 0, token="s3cret")
    view.start()
    try:
        url = view.url
        assert get(url)[0] == 401
        assert get(url + "metrics")[0] == 401
        assert get(url + "stream/c1")[0] == 401
        assert get(url, {"Authorization": "Bearer wrong"})[0] == 401
        assert get(url + "?token=wrong")[0] == 401
        code, _, body = get(url, {"Authorization": "Bearer s3cret"})
        assert code == 200 and b"c1" in body
        code, _, body = get(url + "?token=s3cret")
        assert code == 200 and b"stream/c1?token=s3cret" in body  # passed on to the embedded URLs
        assert get(url + "metrics?token=s3cret")[0] == 200
        assert get(url + "healthz")[0] == 200
    finally:
        view.close()
    view.close()


def test_port_in_use_is_a_user_error():
    from tracker.errors import UserError

    a = LiveView(["c1"], "127.0.0.1", 0)
    a.start()
    try:
        b = LiveView(["c1"], "127.0.0.1", a.port)
        b_started = False
        try:
            b.start()
            b_started = True
        except UserError as exc:
            assert "cannot listen" in str(exc)
        finally:
            if b_started:
                b.close()
        assert not b_started
    finally:
        a.close()


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _challenges(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        resp.read()
        return [resp.status, *resp.msg.get_all("WWW-Authenticate", [])]
    finally:
        conn.close()


PASSWORD = "pa:ss wörd-7"  # a colon and a non-ASCII letter: split at the first colon, UTF-8


def test_basic_auth(caplog):
    caplog.set_level(logging.DEBUG)
    view = LiveView(["c1"], "127.0.0.1", 0, user="viewer", password=PASSWORD)
    view.start()
    try:
        url = view.url
        assert _challenges(url) == [401, 'Basic realm="mctrack", charset="UTF-8"']  # browsers prompt
        for headers in ({}, _basic("viewer", "wrong"), _basic("someone", PASSWORD), _basic("viewer", PASSWORD[:-1]),
                        {"Authorization": "Basic not-base64!"}, {"Authorization": "Basic " + base64.b64encode(
                            b"no colon").decode()}, {"Authorization": "Bearer " + PASSWORD}):
            assert get(url, headers)[0] == 401, headers
            assert get(url + "metrics", headers)[0] == 401, headers
        assert get(url + "stream/c1")[0] == 401
        assert get(url + "?token=" + urllib.parse.quote(PASSWORD))[0] == 401  # no token configured
        code, _, body = get(url, _basic("viewer", PASSWORD))
        assert code == 200 and b"stream/c1" in body and b"token=" not in body
        assert get(url + "metrics", _basic("viewer", PASSWORD))[0] == 200
        assert get(url + "stats.json", _basic("viewer", PASSWORD))[0] == 200
        assert get(url + "healthz")[0] == 200
    finally:
        view.close()
    encoded = base64.b64encode(f"viewer:{PASSWORD}".encode()).decode()
    assert caplog.records and PASSWORD not in caplog.text and encoded not in caplog.text
    assert "authentication: basic" in caplog.text


def test_token_and_basic_auth_either_is_accepted():
    view = LiveView(["c1"], "127.0.0.1", 0, token="t0ken", user="viewer", password=PASSWORD)
    view.start()
    try:
        url = view.url
        assert _challenges(url) == [401, 'Basic realm="mctrack", charset="UTF-8"', 'Bearer realm="mctrack"']
        assert get(url + "metrics", {"Authorization": "Bearer t0ken"})[0] == 200
        assert get(url + "metrics?token=t0ken")[0] == 200
        assert get(url + "metrics", _basic("viewer", PASSWORD))[0] == 200
        assert get(url + "metrics?token=t0ken", _basic("viewer", "wrong"))[0] == 200  # the token is enough
        assert get(url + "metrics?token=wrong", _basic("viewer", PASSWORD))[0] == 200  # so is the password
        assert get(url + "metrics?token=wrong", _basic("viewer", "wrong"))[0] == 401
        assert get(url + "metrics", {"Authorization": "Bearer " + PASSWORD})[0] == 401
    finally:
        view.close()


def test_basic_auth_through_sinks_and_config(tmp_path, monkeypatch):
    from tracker.config import RunConfig, check_run_config
    from tracker.core.config import from_dict
    from tracker.errors import UserError
    from tracker.io.config_file import load_yaml

    monkeypatch.setenv("MCTRACK_TEST_HTTP_PASSWORD", PASSWORD)
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("cameras: [{id: c1, source: x.mp4}]\n"
                        "output: {http_user: viewer, http_password: '${MCTRACK_TEST_HTTP_PASSWORD}'}\n")
    out = load_yaml(cfg_file, RunConfig).output
    assert (out.http_user, out.http_password) == ("viewer", PASSWORD)  # from the environment, not the file
    s = Sinks(OutputConfig(dir=str(tmp_path), mot=False, events=False, http=True, http_port=0,
                           http_user=out.http_user, http_password=out.http_password), ["c1"])
    s.start()
    try:
        assert get(s.url + "metrics")[0] == 401
        assert get(s.url + "metrics", _basic("viewer", PASSWORD))[0] == 200
    finally:
        s.close()
    with pytest.raises(UserError, match="http_user and output.http_password go together"):
        Sinks(OutputConfig(dir=str(tmp_path), http=True, http_user="viewer"), ["c1"])
    with pytest.raises(UserError, match="go together"):
        check_run_config(from_dict(RunConfig, {"cameras": [{"id": "c1", "source": "x.mp4"}],
                                               "output": {"http_password": "x"}}))


def test_listening_beyond_localhost_without_auth_warns(monkeypatch, caplog):
    import tracker.io.liveview as lv

    assert lv.is_loopback("127.0.0.1") and lv.is_loopback("127.3.0.1") and lv.is_loopback("::1")
    assert lv.is_loopback("localhost") and lv.is_loopback("[::1]")
    assert not any(lv.is_loopback(h) for h in ("0.0.0.0", "::", "", "10.0.0.5", "camera-host.lan"))
    monkeypatch.setattr(lv, "is_loopback", lambda host: False)  # as if bound to 0.0.0.0, without exposing the test
    caplog.set_level(logging.INFO)
    for kwargs, warned in (({}, True), ({"token": "t"}, False), ({"user": "u", "password": "p"}, False)):
        caplog.clear()
        view = LiveView(["c1"], "127.0.0.1", 0, **kwargs)
        view.start()
        view.close()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == int(warned), (kwargs, warnings)
        assert not warned or "without authentication" in warnings[0]


def test_connections_are_limited_and_idle_clients_dropped(monkeypatch, caplog):
    import socket

    import tracker.io.liveview as lv

    monkeypatch.setattr(lv, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(lv, "CLIENT_TIMEOUT_S", 1.0)
    caplog.set_level(logging.WARNING)
    view = LiveView(["c1"], "127.0.0.1", 0)
    view.start()
    holders = [socket.create_connection(("127.0.0.1", view.port)) for _ in range(2)]  # connected, silent
    try:
        time.sleep(0.2)  # kept: the server takes both holders' connections (it exposes no count to wait on)
        with pytest.raises((ConnectionError, urllib.error.URLError)):  # closed unanswered: both slots are taken
            urllib.request.urlopen(view.url + "healthz", timeout=5).read()
        assert view.refused == 1 and "refused" in caplog.text
        holders.pop().close()  # a client leaves: its slot is free again
        assert _wait_for(lambda: get(view.url + "healthz")[0] == 200)
        t = time.monotonic()  # about time: the other holder never sends a request, dropped after the 1 s timeout
        assert holders[0].recv(1) == b"" and time.monotonic() - t < 3
        assert [get(view.url + "healthz")[0] for _ in range(3)] == [200] * 3
    finally:
        for h in holders:
            h.close()
        view.close()


def _wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except (ConnectionError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    return False
