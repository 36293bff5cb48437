"""The identity console's routes in the live view (same host, port and credentials; see ``tracker.io.liveview``).

- ``GET /identities``: the page (``console_static/identities.html``; its script and style under ``/static/``).
- ``GET /api/identities?camera=&within=&offset=&limit=``: identity summaries, newest activity first.
- ``GET /api/identities/<gid>``: one identity: its visits (camera, times, thumbnail, ground-plane path).
- ``GET /api/site``: the site map: cameras (fields of view where homographies are set), written and learned links.
- ``GET /api/events?since=<version>``: Server-Sent Events: ``update`` (changed summaries, corrections and purges).
- ``POST /api/search``: body = a photo or crop (JPEG/PNG/...), at most ``MAX_UPLOAD`` bytes; identities ranked by
  ReID cosine similarity.
- ``GET /thumb/<gid>/best.jpg`` and ``/thumb/<gid>/<visit>.jpg``: thumbnails (never cached by the browser).
"""

from __future__ import annotations

import asyncio
import html
import json
import urllib.parse
from pathlib import Path

import numpy as np

STATIC = Path(__file__).with_name("console_static")
MAX_UPLOAD = 10 * 1024 * 1024
SSE_HEARTBEAT_S = 15.0
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def console_routes(console, token_of) -> list:
    import anyio.to_thread
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from tracker.io.liveview import PushResponse

    nocache = {"Cache-Control": "no-store"}

    def error(msg: str, code: int) -> Response:
        return PlainTextResponse(msg + "\n", code, headers=nocache)

    def as_int(value, default=None):
        try:
            return int(value) if value not in (None, "") else default
        except ValueError:
            return None

    async def page(request):
        body = (STATIC / "identities.html").read_text(encoding="utf-8")
        token = token_of(request)
        if token:  # the page's own script and style need it too (basic authentication is resent by the browser)
            q = html.escape("?token=" + urllib.parse.quote(token, safe=""))
            body = body.replace('"static/console.css"', f'"static/console.css{q}"').replace(
                '"static/console.js"', f'"static/console.js{q}"')
        return Response(body.encode(), 200, media_type=_TYPES[".html"], headers=nocache)

    async def static(request):
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return error("not found", 404)
        return Response(path.read_bytes(), 200, media_type=_TYPES.get(path.suffix, "application/octet-stream"),
                        headers=nocache)

    async def identities(request):
        q = request.query_params
        offset, limit = as_int(q.get("offset"), 0), as_int(q.get("limit"), 50)
        within = q.get("within")
        try:
            within = float(within) if within not in (None, "") else None
        except ValueError:
            within = -1.0
        if offset is None or limit is None or offset < 0 or not 1 <= limit <= 500 or (within is not None
                                                                                       and within < 0):
            return error("offset >= 0, 1 <= limit <= 500 and within >= 0 seconds, as numbers", 400)
        camera = q.get("camera") or None
        return JSONResponse(console.list(camera, within, offset, limit), headers=nocache)

    async def identity(request):
        gid = as_int(request.path_params["gid"])
        d = console.detail(gid) if gid is not None else None
        if d is None:
            return error("no such identity", 404)
        return JSONResponse(d, headers=nocache)

    async def site(request):
        return JSONResponse(console.site_map(), headers=nocache)

    async def thumb(request):
        gid, which = as_int(request.path_params["gid"]), request.path_params["which"]
        idx = None if which == "best" else as_int(which)
        jpeg = console.thumbnail(gid, idx) if gid is not None and (which == "best" or idx is not None) else None
        if jpeg is None:
            return error("no such thumbnail", 404)
        return Response(jpeg, 200, media_type="image/jpeg", headers={"Cache-Control": "no-store, private"})

    async def events(request):
        since = as_int(request.query_params.get("since"), 0) or 0

        async def chunks():
            nonlocal since
            yield b"retry: 2000\n\n"
            waited = 0.0
            while not console._stop.is_set():
                if console.version > since:
                    ch = console.changes(since)
                    since = ch["version"]
                    yield f"event: update\nid: {since}\ndata: {json.dumps(ch)}\n\n".encode()
                    waited = 0.0
                await console.pulse.wait(0.5)
                await asyncio.sleep(0.2)  # at most ~4 updates a second per page, however busy the site
                waited += 0.7
                if waited >= SSE_HEARTBEAT_S:
                    waited = 0.0
                    yield b": keep-alive\n\n"

        return PushResponse(chunks(), "text/event-stream")

    async def search(request):
        if console.encoder is None:
            return error("search needs the ReID encoder (reid.enabled is false)", 503)
        size = as_int(request.headers.get("content-length"), None)
        if size is not None and size > MAX_UPLOAD:
            return error(f"the image is larger than {MAX_UPLOAD // (1024 * 1024)} MB", 413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD:
                return error(f"the image is larger than {MAX_UPLOAD // (1024 * 1024)} MB", 413)
        import cv2

        image = cv2.imdecode(np.frombuffer(bytes(body), np.uint8), cv2.IMREAD_COLOR) if body else None
        if image is None or image.shape[0] < 8 or image.shape[1] < 4:
            return error("not an image this server can read (send a JPEG or PNG photo or crop of one person)", 400)
        hits = await anyio.to_thread.run_sync(console.search, image)
        return JSONResponse({"hits": hits, "now": console.now}, headers=nocache)

    return [Route("/identities", page), Route("/static/{name:path}", static),
            Route("/api/identities", identities), Route("/api/identities/{gid}", identity),
            Route("/api/site", site), Route("/api/events", events),
            Route("/api/search", search, methods=["POST"]),
            Route("/thumb/{gid}/{which}.jpg", thumb)]
