"""Live view: per-camera MJPEG streams, a stats page, Prometheus metrics and the identity console.

Served by Starlette on uvicorn (see the README, "Live view", for why), in one daemon thread with its
own event loop. Routes:

- ``GET /``: every camera as an aligned tile (annotated stream, its stats; click to enlarge) and a
  stats table, refreshed by polling ``/stats.json``.
- ``GET /stream/<camera id>``: ``multipart/x-mixed-replace`` MJPEG of the annotated frames.
- ``GET /stats.json``: the per-camera stats as JSON (non-finite numbers as ``null``).
- ``GET /metrics``: Prometheus text exposition format (version 0.0.4).
- ``GET /healthz``: ``ok``; never needs credentials, so load balancers and probes can use it.
- with an identity console (``output.console``): ``/identities`` (the page), ``/static/...`` (its
  script and style, shipped in the package), ``/api/...`` (JSON, Server-Sent Events, search by photo)
  and ``/thumb/<gid>/<n>.jpg``; see ``tracker.io.console``.

Authentication (optional; every route but ``/healthz``): a token (``Authorization: Bearer
<token>`` or ``?token=<token>``; the pages pass the token they were opened with on to the
URLs they use) and/or a user and password (HTTP basic authentication: the browser asks for them and
sends them again with everything the page loads). When both are set, either one is accepted.
Without valid credentials the answer is 401 with a ``WWW-Authenticate`` challenge (``Basic
realm="mctrack"`` when basic authentication is on, so browsers prompt). Credentials are compared in
constant time and never logged. Basic authentication sends the password base64-encoded, not
encrypted: beyond a trusted network, put the live view behind a TLS-terminating proxy. Listening on
anything but a loopback address without credentials is logged as a warning at start.

Connections: at most ``MAX_CONNECTIONS`` open at once: further connections are closed unanswered
(counted in ``refused``, logged once a minute). A client that sends no request for
``CLIENT_TIMEOUT_S`` after connecting or after its last answer, or stops reading a stream for that
long, is dropped, so viewers cannot pile up. ``publish_frame`` is called by the sinks' frame thread;
JPEG encoding happens in worker threads of the server, only while a client is watching, once per
frame however many clients watch it. Nothing here is called with a lock that the pipeline's main
thread may hold, so ``close`` is safe from a signal-handling path.
"""

from __future__ import annotations

import asyncio
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
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, is_dataclass

import cv2
import numpy as np

from tracker.errors import UserError

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
_BOUNDARY = "mctrackframe"
REALM = "mctrack"
_STREAM_WAIT_S = 0.5  # how often a waiting stream checks whether the server is closing
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


class Pulse:
    """Wakes coroutines of the server's event loop from any thread (a frame arrived, identities changed)."""

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future] = set()

    def fire(self) -> None:
        loop = self.loop
        if loop is not None and self._waiters:
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for f in waiters:
            if not f.done():
                f.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Return at the next ``fire`` or after ``timeout`` seconds (call from the server's loop)."""
        f = asyncio.get_running_loop().create_future()
        self._waiters.add(f)
        try:
            await asyncio.wait_for(f, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters.discard(f)


class PushResponse:
    """A streaming answer that ends when the client disconnects, the server closes or the chunks end.

    ``chunks`` is an async iterator of bytes. A client that stops reading is dropped by the connection's
    write-stall timer (``CLIENT_TIMEOUT_S``), which also ends this response.
    """

    def __init__(self, chunks: AsyncIterator[bytes], media_type: str, on_close=None):
        self.chunks = chunks
        self.headers = [(b"content-type", media_type.encode()), (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no")]
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        async def write() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.ensure_future(write()), asyncio.ensure_future(disconnected())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                try:
                    await t
                except (asyncio.CancelledError, OSError):
                    pass
            if self.on_close is not None:
                self.on_close()


def _protocol_class(view: LiveView):
    """uvicorn's HTTP/1.1 protocol with this view's connection limit, idle and write-stall timeouts."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class LimitedH11(H11Protocol):
        _stall: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > MAX_CONNECTIONS:
                view._refuse()  # counted before the client sees the connection close
                transport.abort()
                return
            # No request within the client timeout: dropped (uvicorn's keep-alive timer, cancelled by data).
            self.timeout_keep_alive_task = self.loop.call_later(CLIENT_TIMEOUT_S, self.timeout_keep_alive_handler)

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stall is None:
                self._stall = self.loop.call_later(CLIENT_TIMEOUT_S, self.transport.abort)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._stall is not None:
                self._stall.cancel()
                self._stall = None

        def connection_lost(self, exc) -> None:
            if self._stall is not None:
                self._stall.cancel()
                self._stall = None
            super().connection_lost(exc)

    return LimitedH11


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
        console: an ``tracker.io.console.IdentityConsole`` whose pages and API are served too (same
            credentials), or None.

    Raises:
        UserError: only one of ``user`` and ``password`` is given.
    """

    def __init__(self, camera_ids: Iterable[str], host: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, user: str | None = None, password: str | None = None,
                 console=None):
        if bool(user) != bool(password):
            raise UserError("live view: basic authentication needs both a user and a password "
                            "(output.http_user and output.http_password)")
        self.camera_ids = list(camera_ids)
        self.host = host
        self.port = port
        self.token = token or None
        self._basic = (user, password) if user else None
        self._known = set(self.camera_ids)
        self.console = console
        self._lock = threading.Lock()
        # camera -> (sequence number, annotated BGR image); replaced whole, never mutated.
        self._frames: dict[str, tuple[int, np.ndarray]] = {}
        self._jpeg: dict[str, tuple[int, bytes]] = {}
        self._encode_locks = {c: threading.Lock() for c in self.camera_ids}
        self._clients = dict.fromkeys(self.camera_ids, 0)
        self._clients_lock = threading.Lock()
        self.frames_pulse = Pulse()
        # Immutable snapshot, replaced whole by update_stats (an atomic attribute store).
        self._stats: dict[str, dict] = {c: {} for c in self.camera_ids}
        self._extra: dict[str, float] = {}
        self._stopping = False
        self.refused = 0  # connections closed because MAX_CONNECTIONS were open
        self._refused_logged_at: float | None = None
        self._server = None  # uvicorn.Server
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a daemon thread. Raises UserError when the address cannot be bound."""
        try:
            import uvicorn
        except ImportError:
            raise UserError("the live view needs starlette and uvicorn: pip install 'mctrack[models]' "
                            "(or -r requirements.txt)") from None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host.strip("[]"), self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise UserError(f"live view cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = sock.getsockname()[1]
        for name in ("uvicorn", "uvicorn.error"):  # its start/stop lines say nothing ours do not
            logging.getLogger(name).setLevel(logging.WARNING)
        config = uvicorn.Config(self._app(), http=_protocol_class(self), lifespan="off", log_config=None,
                                access_log=False, timeout_keep_alive=max(1, int(math.ceil(CLIENT_TIMEOUT_S))),
                                timeout_graceful_shutdown=3, ws="none")
        server = uvicorn.Server(config)
        started = threading.Event()

        def serve() -> None:
            async def main() -> None:
                loop = asyncio.get_running_loop()
                self.frames_pulse.loop = loop
                if self.console is not None:
                    self.console.pulse.loop = loop
                started.set()
                await server.serve(sockets=[sock])

            try:
                asyncio.run(main())
            except Exception:  # a bug: never silent
                log.exception("live view server failed")
            finally:
                started.set()
                sock.close()

        self._server = server
        self._thread = threading.Thread(target=serve, name="mctrack-liveview", daemon=True)
        self._thread.start()
        started.wait(10.0)
        deadline = time.monotonic() + 10.0
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
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
            server.should_exit = True
            self.frames_pulse.fire()
            if self.console is not None:
                self.console.pulse.fire()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    # -- data in -----------------------------------------------------------------------------

    def wants_frames(self, camera_id: str) -> bool:
        """True while at least one client streams this camera (annotate and publish only then)."""
        return self._clients.get(camera_id, 0) > 0

    def publish_frame(self, camera_id: str, image: np.ndarray) -> None:
        """Offer a new annotated frame, (H, W, 3) uint8 BGR. The array must not be modified afterwards."""
        with self._lock:
            seq = self._frames.get(camera_id, (0, None))[0] + 1
            self._frames[camera_id] = (seq, image)
        self.frames_pulse.fire()

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

    # -- data out (server thread) ------------------------------------------------------------

    def _encode(self, camera_id: str, seq: int, image: np.ndarray) -> tuple[int, bytes] | None:
        """JPEG of frame ``seq`` (a worker thread; cached, so encoded once however many clients watch)."""
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

    async def _mjpeg(self, camera_id: str) -> AsyncIterator[bytes]:
        import anyio.to_thread

        seq = 0
        while not self._stopping:
            cur, image = self._frames.get(camera_id, (0, None))
            if cur <= seq or image is None:
                await self.frames_pulse.wait(_STREAM_WAIT_S)
                continue
            got = await anyio.to_thread.run_sync(self._encode, camera_id, cur, image)
            if got is None:
                continue
            seq, jpeg = got
            yield (f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                   + jpeg + b"\r\n")

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
        tiles = []
        for cam in self.camera_ids:
            src = "stream/" + urllib.parse.quote(cam, safe="") + q
            tiles.append(f'<figure class="tile" data-camera="{html.escape(cam)}" title="click to enlarge">'
                         f'<figcaption><b>{html.escape(cam)}</b> <span class="tstats"></span></figcaption>'
                         f'<div class="frame"><img src="{html.escape(src)}" alt="{html.escape(cam)}"></div>'
                         "</figure>")
        heads = "".join(f"<th>{h}</th>" for h in (
            "camera", "state", "FPS", "frames", "dropped", "latency p50 ms", "latency p95 ms",
            "reconnects", "last frame age s", "tracks", "sink drops"))
        stats_url = json.dumps("stats.json" + q).replace("<", "\\u003c")
        nav = (f'<nav><a href="{html.escape("identities" + q)}">identities</a></nav>'
               if self.console is not None else "")
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mctrack live view</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #111; color: #eee; }}
nav a {{ color: #8cf; margin-right: 1em; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px;
         align-items: start; }}
.tile {{ margin: 0; background: #1b1b1b; border: 1px solid #333; cursor: zoom-in; }}
.tile.big {{ grid-column: 1 / -1; cursor: zoom-out; }}
.tile figcaption {{ padding: 4px 8px; font-size: 13px; }}
.tstats {{ color: #aaa; float: right; }}
.frame {{ aspect-ratio: 4 / 3; background: #222; display: flex; align-items: center; justify-content: center; }}
.frame img {{ max-width: 100%; max-height: 100%; object-fit: contain; }}
.tile.big .frame {{ aspect-ratio: auto; max-height: 85vh; }}
table {{ border-collapse: collapse; margin-top: 1em; }} td, th {{ border: 1px solid #444; padding: 2px 8px;
  text-align: right; }}
#behind {{ color: #f80; }}
</style></head><body>
<h1>mctrack live view</h1>{nav}
<div class="grid">{"".join(tiles)}</div>
<p id="behind"></p>
<table><thead><tr>{heads}</tr></thead><tbody id="stats"></tbody></table>
<script>
const keys = ["camera", "state", "fps", "frames_in", "frames_dropped", "latency_p50_ms", "latency_p95_ms",
              "reconnects", "last_frame_age", "active_tracks", "sink_dropped_frames"];
function fmt(v) {{ return v === null || v === undefined ? "-" : (typeof v === "number" && !Number.isInteger(v)
  ? v.toFixed(1) : String(v)); }}
for (const t of document.querySelectorAll(".tile")) t.addEventListener("click", () => t.classList.toggle("big"));
async function refresh() {{
  try {{
    const r = await fetch({stats_url}); const data = await r.json();
    const body = document.getElementById("stats"); body.replaceChildren();
    for (const row of data.cameras) {{
      const tr = document.createElement("tr");
      for (const k of keys) {{ const td = document.createElement("td"); td.textContent = fmt(row[k]); tr.append(td); }}
      body.append(tr);
      for (const t of document.querySelectorAll(".tile")) if (t.dataset.camera === row.camera)
        t.querySelector(".tstats").textContent = `${{row.state || "-"}} · ${{fmt(row.fps)}} fps · ` +
          `${{fmt(row.active_tracks)}} tracks · p95 ${{fmt(row.latency_p95_ms)}} ms · ` +
          `${{fmt(row.frames_dropped)}} dropped`;
    }}
    document.getElementById("behind").textContent = data.behind ? "output sinks are falling behind" : "";
  }} catch (e) {{}}
}}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""
        return page.encode()

    # -- the web application -------------------------------------------------------------------

    def _app(self):
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route

        view = self

        def text(body: str, code: int = 200) -> Response:
            return PlainTextResponse(body, code, headers={"Cache-Control": "no-store"})

        def token_of(request) -> str | None:
            return request.query_params.get("token") if view.token else None

        async def index(request):
            return Response(view.index_html(token_of(request)), 200, media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

        async def stats(request):
            return Response(view.stats_json(), 200, media_type="application/json",
                            headers={"Cache-Control": "no-store"})

        async def metrics(request):
            return Response(view.metrics_text(), 200, media_type="text/plain; version=0.0.4; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

        async def healthz(request):
            return text("ok\n")

        async def stream(request):
            cam = request.path_params["cam"]
            if cam not in view._known:
                return text("unknown camera\n", 404)
            view._client(cam, +1)
            return PushResponse(view._mjpeg(cam), f"multipart/x-mixed-replace; boundary={_BOUNDARY}",
                                on_close=lambda: view._client(cam, -1))

        async def not_found(request, exc):
            return text("not found\n", 404)

        routes = [Route("/", index), Route("/index.html", index), Route("/stats.json", stats),
                  Route("/metrics", metrics), Route("/healthz", healthz), Route("/stream/{cam:path}", stream)]
        if self.console is not None:
            from tracker.io.console_web import console_routes

            routes += console_routes(self.console, token_of)
        app = Starlette(routes=routes, exception_handlers={404: not_found})
        return _Auth(app, self)


class _Auth:
    """ASGI middleware: 401 with the challenges unless the request is authorised (``/healthz`` is always open)."""

    def __init__(self, app, view: LiveView):
        self.app = app
        self.view = view

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/healthz":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").title(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if self.view.authorized(headers, query):
            await self.app(scope, receive, send)
            return
        body = b"unauthorized\n"
        raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
        raw += [(k.lower().encode(), v.encode()) for k, v in self.view.challenge()]
        await send({"type": "http.response.start", "status": 401, "headers": raw})
        await send({"type": "http.response.body", "body": body})
