"""A real RTSP server on loopback for the stream tests (GStreamer's gst-rtsp-server).

Run as a program under the system Python, which has the GStreamer bindings
(Debian: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good, see
``.ci/install-deps.sh``); the test suite's virtual environment imports only the helpers
below (``decode_counter``, ``server_command``), which need no GStreamer.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--path /cam] [--fps 15]
        [--size 320x240] [--epoch UNIX_TIME] [--resize-after SECONDS --resize-to WxH]

Serves MJPEG over RTP (RTP/JPEG, payload type 26) at ``rtsp://127.0.0.1:PORT/PATH`` to any
number of clients, over TCP (interleaved) or UDP. Every frame carries a frame counter drawn
as two rows of 16 blocks (the counter's bits and their complement, so a decoder can tell a
real frame from a damaged or blank one) and a bar that moves with the counter. The counter is
``round((now - epoch) * fps)``, so a server restarted with the same ``--epoch`` goes on
counting where the killed one stopped. Prints ``READY`` on stdout once it is listening.
It binds to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

BITS = 16
BLOCK = 16  # pixels; a multiple of 8 so JPEG blocks do not blur the bits into each other
ROW_BITS_Y = 16  # first row: the counter's bits (MSB first)
ROW_INV_Y = 40  # second row: the complement
BAR_Y = 72  # the moving bar fills rows BAR_Y.. to the bottom
ON, OFF, BACKGROUND = 230, 30, 128
SYSTEM_PYTHON = "/usr/bin/python3"


def server_command(port: int, *extra: str) -> list[str] | None:
    """The command line that starts this server, or None when GStreamer's RTSP server is not installed."""
    py = shutil.which(SYSTEM_PYTHON) or shutil.which("python3")
    if py is None:
        return None
    return [py, str(Path(__file__).resolve()), "--port", str(port), *extra]


def decode_counter(image) -> int | None:
    """Read the frame counter from a served frame (H, W, 3) or (H, W) uint8; None when the marks are not valid.

    A black, grey or damaged frame has no valid marks, so it decodes to None.
    """
    import numpy as np

    gray = image if image.ndim == 2 else image.mean(axis=2)
    h, w = gray.shape[:2]
    # The marks are drawn at the served size's scale of 320 px wide.
    s = w / 320.0
    value = 0
    for i in range(BITS):
        x0 = int((BLOCK * (i + 2) + 4) * s)
        x1 = int((BLOCK * (i + 3) - 4) * s)
        bit = float(np.mean(gray[int((ROW_BITS_Y + 4) * s):int((ROW_BITS_Y + BLOCK - 4) * s), x0:x1]))
        inv = float(np.mean(gray[int((ROW_INV_Y + 4) * s):int((ROW_INV_Y + BLOCK - 4) * s), x0:x1]))
        hi, lo = (bit, inv) if bit > inv else (inv, bit)
        if hi < 180 or lo > 80:
            return None
        value = (value << 1) | (1 if bit > inv else 0)
    return value


def draw(counter: int, width: int, height: int) -> bytes:
    """One GRAY8 frame (width * height bytes) showing ``counter``."""
    s = width / 320.0
    bg = bytes([BACKGROUND])
    rows = [bg * width] * height
    bits = [(counter >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    for y0, flip in ((ROW_BITS_Y, False), (ROW_INV_Y, True)):
        row = bytearray(bg * width)
        for i, b in enumerate(bits):
            on = bool(b) != flip
            x0, x1 = int(BLOCK * (i + 2) * s), int(BLOCK * (i + 3) * s)
            row[x0:x1] = bytes([ON if on else OFF]) * (x1 - x0)
        row = bytes(row)
        for y in range(int(y0 * s), int((y0 + BLOCK) * s)):
            rows[y] = row
    bar_w = max(8, width // 20)
    x = (counter * 7) % (width - bar_w)
    bar_row = bg * x + bytes([250]) * bar_w + bg * (width - x - bar_w)
    for y in range(int(BAR_Y * s), height):
        rows[y] = bar_row
    return b"".join(rows)


class MjpegServer:
    """An HTTP MJPEG camera (multipart/x-mixed-replace JPEGs) on 127.0.0.1, run in the test process.

    Each connection gets ``fps`` frames per second showing the same counter as the RTSP server
    (``round((now - epoch) * fps)``) and is closed after ``frames_per_connection`` frames, like a
    camera that drops its clients now and then. ``damage(counter, jpeg)``, when given, returns the
    bytes actually sent for a frame (a corrupt camera: garbage, truncated or empty parts). Needs numpy
    and OpenCV (the test environment).
    """

    def __init__(self, fps: int = 15, frames_per_connection: int = 30, size: tuple[int, int] = (320, 240),
                 damage=None):
        import http.server
        import socketserver
        import threading

        import cv2
        import numpy as np

        outer = self
        self.fps, self.epoch, self.connections = fps, time.time(), 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                last = -1
                for _ in range(frames_per_connection):
                    now = time.time()
                    counter = max(last + 1, round((now - outer.epoch) * fps))
                    time.sleep(max(0.0, outer.epoch + counter / fps - now))
                    last = counter
                    gray = np.frombuffer(draw(counter, *size), np.uint8).reshape(size[1], size[0])
                    jpg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                    if damage is not None:
                        jpg = damage(counter, jpg)
                    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                    try:
                        self.wfile.write(head + jpg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                self.close_connection = True

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/video.mjpg"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--size", type=_size, default=(320, 240))
    ap.add_argument("--epoch", type=float, default=None, help="unix time of counter 0 (default: now)")
    ap.add_argument("--resize-after", type=float, default=None, help="seconds after a client starts playing")
    ap.add_argument("--resize-to", type=_size, default=(480, 360))
    args = ap.parse_args(argv)

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    epoch = time.time() if args.epoch is None else args.epoch
    fps = args.fps

    def caps(size: tuple[int, int]) -> Gst.Caps:
        return Gst.Caps.from_string(
            f"video/x-raw,format=GRAY8,width={size[0]},height={size[1]},framerate={fps}/1"
        )

    class Feeder:
        """Pushes frames into one client's pipeline in real time."""

        def __init__(self, appsrc):
            self.appsrc = appsrc
            self.n = 0
            self.last = -1
            self.size = args.size
            self.started = None

        def need_data(self, src, _length):
            now = time.time()
            if self.started is None:
                self.started = now
            resize = args.resize_after is not None and self.size != args.resize_to
            if resize and now - self.started >= args.resize_after:
                self.size = args.resize_to
                src.set_property("caps", caps(self.size))
            counter = max(self.last + 1, round((now - epoch) * fps))
            wait = epoch + counter / fps - now
            if wait > 0:
                time.sleep(wait)
            self.last = counter
            data = draw(counter, *self.size)
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = self.n * Gst.SECOND // fps
            buf.duration = Gst.SECOND // fps
            self.n += 1
            src.emit("push-buffer", buf)

    class Factory(GstRtspServer.RTSPMediaFactory):
        def do_create_element(self, url):
            launch = (
                "( appsrc name=source is-live=true format=time do-timestamp=false "
                "! videoconvert ! video/x-raw,format=I420 ! jpegenc quality=90 "
                "! rtpjpegpay name=pay0 pt=26 )"
            )
            return Gst.parse_launch(launch)

        def do_configure(self, media):
            appsrc = media.get_element().get_child_by_name("source")
            appsrc.set_property("caps", caps(args.size))
            feeder = Feeder(appsrc)
            media._feeder = feeder  # keep it alive with the media
            appsrc.connect("need-data", feeder.need_data)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = Factory()
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    print("READY", flush=True)
    try:
        GLib.MainLoop().run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
