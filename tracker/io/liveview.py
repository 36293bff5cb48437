"""Live view: a small HTTP server with per-camera MJPEG streams, a stats page and Prometheus metrics.

Routes (all ``GET``):

- ``/``: an HTML page with every camera's annotated stream and a stats table (FPS, drops,
  latency p50/p95, reconnects, state, active tracks) refreshed by polling ``/stats.json``.
- ``/stream/<camera id>``: ``multipart/x-mixed-replace`` MJPEG of the annotated frames.
- ``/stats.json``: the per-camera stats as JSON (non-finite numbers as ``null``).
- ``/metrics``: Prometheus text exposition format (version 0.0.4).
- ``/healthz``: ``ok``; never needs credentials, so load balancers and probes can use it.

Authentication (optional; every route but ``/healthz``): a token (``Authorization: Bearer
<token>`` or ``?token=<token>``; the HTML page passes the token it was opened with on to the
stream and stats URLs it embeds) and/or a user and password (HTTP basic authentication: the
browser asks for them and sends them again with the streams it embeds). When both are set,
either one is accepted. Without valid credentials the answer is 401 with a ``WWW-Authenticate``
challenge (``Basic realm="mctrack"`` when basic authentication is on, so browsers prompt).
Credentials are compared in constant time and never logged. Basic authentication sends the
password base64-encoded, not encrypted: beyond a trusted network, put the live view behind a
TLS-terminating proxy. Listening on anything but a loopback address without credentials is
logged as a warning at start.

Threads: the server runs in its own daemon thread and each request in a daemon thread
(``ThreadingHTTPServer``), at most ``MAX_CONNECTIONS`` at once: further connections are closed
unanswered (logged once a minute), and a client silent or not reading for ``CLIENT_TIMEOUT_S``
is dropped, so viewers cannot pile up threads. ``publish_frame`` is called by the sinks' frame thread; JPEG
encoding happens in the request threads, only while a client is watching, once per frame
however many clients watch it. Nothing here is called with a lock that the pipeline's main
thread may hold, so ``close`` is safe from a signal-handling path.
"""

from __future__ import annotations

import base64
import hmac
import html
import ipaddress
import json
import logging
import math
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from tracker.errors import UserError

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
_BOUNDARY = "mctrackframe"
REALM = "mctrack"
_STREAM_WAIT_S = 0.5  # how often a waiting stream handler checks whether the server is closing
MAX_CONNECTIONS = 32  # open connections (each MJPEG viewer holds one); more are closed at once
CLIENT_TIMEOUT_S = 30.0  # a client that sends nothing, or stops reading its stream, for this long is dropped

# Stats fields shown in the table / exported as metrics, in display order.
_STAT_FIELDS = ("fps", "frames_in", "frames_dropped", "reconnects", "last_frame_age", "latency_p50_ms",
                "latency_p95_ms", "state", "active_tracks", "sink_dropped_frames")


def escape_label_value(value: str) -> str:
    """Escape a Prometheus label value: backslash, double quote and line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_metric_value(value) -> str:
    """A sample value in exposition format: integers as is, floats by repr, NaN / +Inf / -Inf."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def is_loopback(host: str) -> bool:
    """True when ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or "" (every interface)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


class LiveView:
    """HTTP live view for a fixed set of cameras.

    Args:
        camera_ids: cameras shown, in this order.
        host: address to bind; ``127.0.0.1`` (default) keeps it local. ``0.0.0.0`` or ``::`` expose it
            to the network: set a token or a user and password then.
        port: TCP port; 0 picks a free one (see ``url``).
        token: when set, accepted as a bearer token or ``?token=`` on every route but ``/healthz``.
        user, password: when set (both or neither), accepted as HTTP basic authentication on every
            route but ``/healthz``. With a token too, either credential is accepted.

    Raises:
        UserError: only one of ``user`` and ``password`` is given.
    """

    def __init__(self, camera_ids: Iterable[str], host: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, user: str | None = None, password: str | None = None):
        if bool(user) != bool(password):
            raise UserError("live view: basic authentication needs both a user and a password "
                            "(output.http_user and output.http_password)")
        self.camera_ids = list(camera_ids)
        self.host = host
        self.port = port
        self.token = token or None
        self._basic = (user, password) if user else None
        self._known = set(self.camera_ids)
        self._cond = threading.Condition()
        # camera -> (sequence number, annotated BGR image); replaced whole, never mutated.
        self._frames: dict[str, tuple[int, np.ndarray]] = {}
        self._jpeg: dict[str, tuple[int, bytes]] = {}
        self._encode_locks = {c: threading.Lock() for c in self.camera_ids}
        self._clients = dict.fromkeys(self.camera_ids, 0)
        self._clients_lock = threading.Lock()
        # Immutable snapshot, replaced whole by update_stats (an atomic attribute store).
        self._stats: dict[str, dict] = {c: {} for c in self.camera_ids}
        self._extra: dict[str, float] = {}
        self._stopping = False
        self.refused = 0  # connections closed because MAX_CONNECTIONS were open
        self._refused_logged_at: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a daemon thread. Raises UserError when the address cannot be bound."""
        view = self

        class Handler(_Handler):
            live = view

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True
            slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

            def process_request(self, request, client_address):
                if not self.slots.acquire(blocking=False):
                    view._refuse()  # counted before the client sees the connection close
                    self.shutdown_request(request)
                    return
                try:
                    super().process_request(request, client_address)
                except BaseException:
                    self.slots.release()
                    raise

            def process_request_thread(self, request, client_address):
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    self.slots.release()

        try:
            self._server = Server((self.host, self.port), Handler)
        except OSError as exc:
            raise UserError(f"live view cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mctrack-liveview", daemon=True)
        self._thread.start()
        log.info("live view at %s%s", self.url, self._auth_summary())
        if not self.auth_required and not is_loopback(self.host):
            log.warning("the live view listens on %s without authentication: anyone who can reach this port sees "
                        "every camera; set output.http_token or output.http_user/http_password", self.host)

    def _refuse(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if self._refused_logged_at is None or now - self._refused_logged_at >= 60.0:
            self._refused_logged_at = now
            log.warning("live view: %d connection(s) refused so far: %d already open (the limit)", self.refused,
                        MAX_CONNECTIONS)

    @property
    def auth_required(self) -> bool:
        return self.token is not None or self._basic is not None

    def _auth_summary(self) -> str:
        kinds = [k for k, on in (("token", self.token is not None), ("basic", self._basic is not None)) if on]
        return f" (authentication: {' or '.join(kinds)})" if kinds else ""

    def authorized(self, headers, query: Mapping[str, list[str]]) -> bool:
        """True when the request carries a valid token or valid basic credentials (or none are required)."""
        if not self.auth_required:
            return True
        auth = headers.get("Authorization", "") or ""
        scheme, _, value = auth.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        ok = False
        if self.token is not None:
            given = value if scheme == "bearer" else (query.get("token") or [None])[0]
            ok |= given is not None and _same(given, self.token)
        if self._basic is not None and scheme == "basic":
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except ValueError:  # not base64, not UTF-8 (binascii.Error and UnicodeDecodeError are ValueErrors)
                sep = ""
            if sep:
                # Both compared every time, so the time taken says nothing about which one was wrong.
                ok |= _same(user, self._basic[0]) & _same(password, self._basic[1])
        return ok

    def challenge(self) -> list[tuple[str, str]]:
        """The ``WWW-Authenticate`` headers of a 401 answer."""
        out = [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')] if self._basic else []
        if self.token is not None:
            out.append(("WWW-Authenticate", f'Bearer realm="{REALM}"'))
        return out

    @property
    def url(self) -> str | None:
        if self._server is None:
            return None
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        """Stop serving; open streams end within about half a second. Idempotent."""
        self._stopping = True
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # -- data in -----------------------------------------------------------------------------

    def wants_frames(self, camera_id: str) -> bool:
        """True while at least one client streams this camera (annotate and publish only then)."""
        return self._clients.get(camera_id, 0) > 0

    def publish_frame(self, camera_id: str, image: np.ndarray) -> None:
        """Offer a new annotated frame, (H, W, 3) uint8 BGR. The array must not be modified afterwards."""
        with self._cond:
            seq = self._frames.get(camera_id, (0, None))[0] + 1
            self._frames[camera_id] = (seq, image)
            self._cond.notify_all()

    def update_stats(self, stats: Iterable, active_tracks: Mapping[str, int] | None = None,
                     sink_dropped: Mapping[str, int] | None = None, behind: bool = False) -> None:
        """Replace the stats snapshot.

        Args:
            stats: per-camera ``CameraStats`` (dataclasses or mappings with its fields).
            active_tracks: camera -> confirmed tracks in the latest tick.
            sink_dropped: camera -> frames the sinks dropped (video / live view) so far.
            behind: whether the sinks are falling behind.
        """
        snap = {c: dict(v) for c, v in self._stats.items()}
        for s in stats:
            d = asdict(s) if is_dataclass(s) else dict(s)
            cam = d.get("camera_id")
            if cam is None:
                continue
            snap.setdefault(cam, {}).update(d)
        for cam, n in (active_tracks or {}).items():
            snap.setdefault(cam, {})["active_tracks"] = int(n)
        for cam, n in (sink_dropped or {}).items():
            snap.setdefault(cam, {})["sink_dropped_frames"] = int(n)
        self._stats = snap
        self._extra = {"behind": 1 if behind else 0}

    # -- data out (request threads) --------------------------------------------------------------

    def _next_jpeg(self, camera_id: str, after: int) -> tuple[int, bytes] | None:
        """Wait for a frame newer than ``after``; None when closing (or every half second, to re-check)."""
        deadline = time.monotonic() + _STREAM_WAIT_S
        with self._cond:
            while not self._stopping:
                seq, image = self._frames.get(camera_id, (0, None))
                if seq > after and image is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            else:
                return None
        with self._encode_locks[camera_id]:
            cached = self._jpeg.get(camera_id)
            if cached is not None and cached[0] == seq:
                return cached
            ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY])
            if not ok:  # pragma: no cover - encoding a uint8 BGR image does not fail
                return None
            out = (seq, buf.tobytes())
            self._jpeg[camera_id] = out
            return out

    def _client(self, camera_id: str, delta: int) -> None:
        with self._clients_lock:
            self._clients[camera_id] = self._clients.get(camera_id, 0) + delta

    def stats_json(self) -> bytes:
        rows = []
        stats = self._stats
        for cam in self.camera_ids:
            d = stats.get(cam, {})
            row = {"camera": cam, "source": d.get("source", "")}
            row.update({k: _json_safe(d.get(k)) for k in _STAT_FIELDS})
            rows.append(row)
        return json.dumps({"cameras": rows, "behind": bool(self._extra.get("behind"))}).encode()

    def metrics_text(self) -> str:
        """Prometheus text exposition (0.0.4) of the current stats snapshot."""
        stats = self._stats
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[dict, object]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lab = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items())
                out.append(f"{name}{{{lab}}} {format_metric_value(value)}" if lab
                           else f"{name} {format_metric_value(value)}")

        def per_camera(key: str, scale: float = 1.0, default=0):
            rows = []
            for cam in self.camera_ids:
                v = stats.get(cam, {}).get(key, default)
                if v is None:
                    v = default
                rows.append(({"camera": cam}, v * scale if scale != 1.0 else v))
            return rows

        nan = float("nan")
        family("mctrack_frames_total", "counter", "Frames read from the camera.", per_camera("frames_in"))
        family("mctrack_frames_dropped_total", "counter",
               "Frames the camera delivered that the pipeline skipped (live sources keep the newest).",
               per_camera("frames_dropped"))
        family("mctrack_reconnects_total", "counter", "Reconnections to the camera.", per_camera("reconnects"))
        family("mctrack_fps", "gauge", "Frames per second processed for the camera (recent average).",
               per_camera("fps", default=nan))
        lat = []
        for q, key in (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms")):
            for labels, v in per_camera(key, default=nan):
                lat.append(({**labels, "quantile": q}, float(v) / 1000.0))
        family("mctrack_latency_seconds", "gauge",
               "Capture-to-result latency quantiles over a recent window, seconds.", lat)
        family("mctrack_last_frame_age_seconds", "gauge", "Seconds since the camera's last frame.",
               per_camera("last_frame_age", default=nan))
        family("mctrack_active_tracks", "gauge", "Confirmed tracks in the camera's latest result.",
               per_camera("active_tracks"))
        family("mctrack_sink_dropped_frames_total", "counter",
               "Annotated frames the video / live-view sinks dropped because they fell behind.",
               per_camera("sink_dropped_frames"))
        family("mctrack_camera_state", "gauge", "1 for the camera's current state.",
               [({"camera": cam, "state": stats.get(cam, {}).get("state") or "unknown"}, 1)
                for cam in self.camera_ids])
        family("mctrack_sinks_behind", "gauge", "1 while the output sinks are falling behind.",
               [({}, self._extra.get("behind", 0))])
        return "\n".join(out) + "\n"

    def index_html(self, token: str | None) -> bytes:
        q = "?token=" + urllib.parse.quote(token, safe="") if token else ""
        cams = []
        for cam in self.camera_ids:
            src = "stream/" + urllib.parse.quote(cam, safe="") + q
            cams.append(f'<figure><img src="{html.escape(src)}" alt="{html.escape(cam)}">'
                        f"<figcaption>{html.escape(cam)}</figcaption></figure>")
        heads = "".join(f"<th>{h}</th>" for h in (
            "camera", "state", "FPS", "frames", "dropped", "latency p50 ms", "latency p95 ms",
            "reconnects", "last frame age s", "tracks", "sink drops"))
        stats_url = json.dumps("stats.json" + q).replace("<", "\\u003c")
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mctrack live view</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #111; color: #eee; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
img {{ max-width: 640px; width: 100%; background: #222; min-height: 120px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #444; padding: 2px 8px; text-align: right; }}
#behind {{ color: #f80; }}
</style></head><body>
<h1>mctrack live view</h1>
<table><thead><tr>{heads}</tr></thead><tbody id="stats"></tbody></table>
<p id="behind"></p>
<div>{"".join(cams)}</div>
<script>
const keys = ["camera", "state", "fps", "frames_in", "frames_dropped", "latency_p50_ms", "latency_p95_ms",
              "reconnects", "last_frame_age", "active_tracks", "sink_dropped_frames"];
function fmt(v) {{ return v === null || v === undefined ? "-" : (typeof v === "number" && !Number.isInteger(v)
  ? v.toFixed(1) : String(v)); }}
async function refresh() {{
  try {{
    const r = await fetch({stats_url}); const data = await r.json();
    const body = document.getElementById("stats"); body.replaceChildren();
    for (const row of data.cameras) {{
      const tr = document.createElement("tr");
      for (const k of keys) {{ const td = document.createElement("td"); td.textContent = fmt(row[k]); tr.append(td); }}
      body.append(tr);
    }}
    document.getElementById("behind").textContent = data.behind ? "output sinks are falling behind" : "";
  }} catch (e) {{}}
}}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""
        return page.encode()


class _Handler(BaseHTTPRequestHandler):
    live: LiveView  # set on the per-server subclass
    server_version = "mctrack-liveview"
    timeout = CLIENT_TIMEOUT_S  # socket timeout for reading the request and writing the answer

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, code: int, body: bytes, ctype: str, extra: list[tuple[str, str]] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra or ():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        live = self.live
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
            return
        if not live.authorized(self.headers, query):
            self._send(401, b"unauthorized\n", "text/plain; charset=utf-8", live.challenge())
            return
        try:
            if path in ("/", "/index.html"):
                self._send(200, live.index_html(query.get("token", [None])[0] if live.token else None),
                           "text/html; charset=utf-8")
            elif path == "/stats.json":
                self._send(200, live.stats_json(), "application/json")
            elif path == "/metrics":
                self._send(200, live.metrics_text().encode(), "text/plain; version=0.0.4; charset=utf-8")
            elif path.startswith("/stream/"):
                cam = urllib.parse.unquote(path[len("/stream/"):])
                if cam not in live._known:
                    self._send(404, b"unknown camera\n", "text/plain; charset=utf-8")
                else:
                    self._stream(cam)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass

    def _stream(self, cam: str) -> None:
        live = self.live
        live._client(cam, +1)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            seq = 0
            while not live._stopping:
                got = live._next_jpeg(cam, seq)
                if got is None:
                    continue
                seq, jpeg = got
                self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                                 "\r\n\r\n".encode() + jpeg + b"\r\n")
                self.wfile.flush()
        finally:
            live._client(cam, -1)
