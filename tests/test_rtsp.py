"""Live network sources against real servers on 127.0.0.1.

RTSP: GStreamer's gst-rtsp-server (``tests/rtsp_server.py``, system packages installed by
``.ci/install-deps.sh``), killed, frozen and restarted under the reader. HTTP: an MJPEG
camera in the test process. Every served frame carries a counter (see ``decode_counter``), so
the tests can tell real frames from black, damaged or repeated ones.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from streams import END, Frame, SourceReader, open_source
from tests.rtsp_server import MjpegServer, decode_counter, server_command

FPS = 15
SECRET = "s3cret-Pw"
USER = "viewer7"
INSTALL_HINT = "GStreamer RTSP server not installed (python3-gi, gir1.2-gst-rtsp-server-1.0): run .ci/install-deps.sh"


def _gst_rtsp_available() -> bool:
    cmd = server_command(0)
    if cmd is None:
        return False
    check = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('appsrc', 'videoconvert', 'jpegenc', 'rtpjpegpay'))")
    try:
        return subprocess.run([cmd[0], "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


GST = _gst_rtsp_available()
needs_gst = pytest.mark.skipif(not GST, reason=INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """tests/rtsp_server.py as a child process that can be killed, frozen and restarted on the same port."""

    def __init__(self, *extra: str):
        self.port = free_port()
        self.epoch = time.time()
        self.extra = extra
        self.proc: subprocess.Popen | None = None

    def start(self) -> RtspServer:
        cmd = server_command(self.port, "--fps", str(FPS), "--epoch", repr(self.epoch), *self.extra)
        deadline = time.monotonic() + 15
        while True:  # the killed server's port can take a moment to be free again
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ready, _, _ = select.select([self.proc.stdout], [], [], 10)
            if ready and self.proc.stdout.readline().strip() == "READY":
                return self
            self.kill()
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.2)

    def url(self, userinfo: str = "") -> str:
        return f"rtsp://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/cam"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def rtsp():
    if not GST:
        pytest.skip(INSTALL_HINT)
    servers: list[RtspServer] = []

    def make(*extra: str) -> RtspServer:
        servers.append(RtspServer(*extra))
        return servers[-1]

    yield make
    for s in servers:
        s.kill()


def collect(reader: SourceReader, frames: list[Frame], until, timeout: float) -> None:
    """Append frames from ``reader`` until ``until()`` holds; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out; health: {reader.health()}"
        item = reader.get(0.2)
        assert item is not END, f"source ended: {reader.health()}"
        if item is not None:
            frames.append(item)


def check_real_frames(frames: list[Frame], max_gap_error: float = 0.35) -> list[int]:
    """Every frame is a real served frame, none repeated or made up, and time moves like the server's counter."""
    counters = [decode_counter(f.image) for f in frames]
    assert None not in counters, "a black, blank or damaged frame was delivered"
    assert all(float(f.image.mean()) > 20 for f in frames), "a black frame was delivered"
    assert np.all(np.diff(counters) > 0), "a frame was repeated or delivered out of order"
    assert np.all(np.diff([f.index for f in frames]) > 0)
    ts = np.array([f.timestamp for f in frames])
    assert np.all(np.diff(ts) > 0), "timestamps went backwards"
    # Timestamps follow the server's clock: the time between two frames is their counter difference / fps.
    err = np.abs(np.diff(ts) - np.diff(counters) / FPS)
    assert err.max() < max_gap_error, f"timestamp spacing off by {err.max():.3f} s"
    return counters


@needs_gst
@pytest.mark.slow  # about time: a 1.5 s outage must show as a gap in the timestamps
def test_rtsp_reconnects_after_server_restart_without_fake_frames(rtsp, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    server = rtsp().start()
    url = server.url(f"{USER}:{SECRET}")
    reader = open_source("door", url, open_timeout=3, read_timeout=2, reconnect_max_backoff=0.5)
    frames: list[Frame] = []
    try:
        collect(reader, frames, lambda: len(frames) >= 20, timeout=15)
        assert reader.health().state == "streaming"
        server.kill()
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 1.5:  # about time: a 1.5 s outage must show as a gap in timestamps
            item = reader.get(0.1)
            if isinstance(item, Frame):
                frames.append(item)
        h = reader.health()
        assert h.state == "reconnecting" and h.reconnects >= 1, h
        before = len(frames)
        server.start()  # same port, and the counter goes on from the server's clock
        collect(reader, frames, lambda: len(frames) >= before + 20, timeout=20)
        h = reader.health()
    finally:
        reader.close()
    counters = check_real_frames(frames)
    gaps = np.diff([f.timestamp for f in frames])
    assert gaps.max() > 1.0, "the outage should show as a time gap"
    assert counters[before] - counters[before - 1] > FPS  # no frames were invented for the outage
    assert h.state == "streaming" and h.reconnects >= 1 and h.frames_in >= len(frames)
    assert h.last_error and "127.0.0.1" in h.last_error
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err, repr(h)):
        assert SECRET not in text and USER not in text
    assert "rtsp://***@127.0.0.1" in caplog.text


@needs_gst
@pytest.mark.slow  # about time: a freeze is detected after read_timeout (1 s), within 5 s
def test_rtsp_frozen_stream_is_detected_and_reconnected(rtsp):
    server = rtsp().start()
    reader = open_source("hall", server.url(), open_timeout=1.5, read_timeout=1.0, reconnect_max_backoff=0.5)
    frames: list[Frame] = []
    try:
        collect(reader, frames, lambda: len(frames) >= 10, timeout=15)
        server.freeze()  # the connection stays open, nothing comes
        frozen_at = time.monotonic()
        while reader.health().reconnects == 0:
            assert time.monotonic() - frozen_at < 5, reader.health()
            item = reader.get(0.1)
            if isinstance(item, Frame):
                frames.append(item)
        assert "stalled" in reader.health().last_error
        server.thaw()  # the freeze was detected: what follows is the recovery, whenever it comes
        before = len(frames)
        collect(reader, frames, lambda: len(frames) >= before + 10, timeout=20)
    finally:
        reader.close()
    check_real_frames(frames)
    assert reader.health().reconnects >= 1


@needs_gst
def test_rtsp_resolution_change_mid_stream(rtsp):
    server = rtsp("--size", "320x240", "--resize-after", "0.5", "--resize-to", "480x360").start()
    reader = open_source("yard", server.url(), open_timeout=3, read_timeout=2)
    frames: list[Frame] = []
    try:
        collect(reader, frames, lambda: frames and frames[-1].image.shape[1] == 480 and len(frames) >= 25, 15)
    finally:
        reader.close()
    check_real_frames(frames)
    assert {f.image.shape for f in frames} >= {(360, 480, 3)}
    assert reader.frame_size == (480, 360) and reader.health().reconnects == 0


@needs_gst
def test_rtsp_over_udp(rtsp):
    server = rtsp().start()
    reader = open_source("gate", server.url(), transport="udp", open_timeout=3, read_timeout=2)
    frames: list[Frame] = []
    try:
        collect(reader, frames, lambda: len(frames) >= 10, timeout=15)
    finally:
        reader.close()
    check_real_frames(frames)
    assert reader.nominal_fps == pytest.approx(FPS)
    assert "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ or os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] != (
        "rtsp_transport;udp")


def test_unreachable_rtsp_url_reports_failures_and_closes_quickly(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    url = f"rtsp://{USER}:{SECRET}@127.0.0.1:{free_port()}/cam"
    t = time.monotonic()
    reader = open_source("lobby", url, open_timeout=1, read_timeout=1, reconnect_max_backoff=0.2)
    assert time.monotonic() - t < 0.5, "open() must not wait for a live source"
    deadline = time.monotonic() + 5
    while reader.health().connect_failures < 3:
        assert time.monotonic() < deadline, reader.health()
        assert reader.get(0.1) is None
    h = reader.health()
    t = time.monotonic()
    reader.close()
    assert time.monotonic() - t < 1.0
    assert h.state == "reconnecting" and h.frames_in == 0 and h.reconnects >= 2
    assert h.last_error.startswith("cannot open stream rtsp://***@127.0.0.1:")
    out, err = capfd.readouterr()
    assert caplog.records
    for text in (caplog.text, out, err, repr(h)):
        assert SECRET not in text and USER not in text


def test_silent_rtsp_server_hits_the_open_timeout():
    """A port that accepts connections but never answers: each open gives up after open_timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam"
        reader = open_source("silent", url, open_timeout=0.5, reconnect_max_backoff=0.2)
        t = time.monotonic()
        while reader.health().connect_failures < 2:
            assert time.monotonic() - t < 6, reader.health()
            time.sleep(0.05)
        t = time.monotonic()
        reader.close()
        assert time.monotonic() - t < 2.5
    assert reader.health().frames_in == 0


def test_http_mjpeg_camera_reconnects_when_it_drops_the_connection(caplog):
    server = MjpegServer(fps=FPS, frames_per_connection=20)
    reader = open_source("shop", server.url(f"{USER}:{SECRET}"), open_timeout=3, read_timeout=2,
                         reconnect_max_backoff=0.3)
    frames: list[Frame] = []
    try:
        collect(reader, frames, lambda: server.connections >= 2 and len(frames) >= 30, timeout=15)
    finally:
        reader.close()
        server.close()
    check_real_frames(frames, max_gap_error=0.5)  # arrival times: HTTP MJPEG has no timestamps
    h = reader.health()
    assert h.reconnects >= 1 and h.source == server.url("***")
    assert SECRET not in caplog.text
