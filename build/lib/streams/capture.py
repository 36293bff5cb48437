"""Opening live captures (RTSP/HTTP URLs, webcams) with OpenCV, and the live-stream clock.

OpenCV's FFmpeg backend takes open and read timeouts per capture
(``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC`` in the parameter list of
``cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)``; checked with opencv-python 5.0: a stalled
RTSP stream makes ``read()`` return False after the read timeout, an unreachable one fails
``open`` within the open timeout). FFmpeg options such as the RTSP transport are read from
one process-wide environment variable, ``OPENCV_FFMPEG_CAPTURE_OPTIONS``
(``key;value|key;value``), when a capture is opened; ``_FfmpegOptionsGate`` lets captures
that need the same options open concurrently and serialises only those that need different
ones.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

# FFmpeg's own log lines ("[tcp @ 0x...] Connection refused") would reach the user's terminal on every
# retry; the reader reports outages itself, once, in one line. Read when FFmpeg first opens a capture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# OpenCV's own warning for every failed open ("backend is generally available but can't be used to capture by
# name") likewise: errors only, unless the user chose a level with OPENCV_LOG_LEVEL.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
URL_SCHEMES = ("rtsp", "rtsps", "http", "https", "rtmp", "rtmps")
TRANSPORTS = ("tcp", "udp", "auto")


class OpenFailed(Exception):
    """A live capture could not be opened (the message names no credentials)."""


def ffmpeg_options(scheme: str, transport: str) -> dict[str, str]:
    """FFmpeg demuxer options for a URL scheme and RTSP ``transport`` ('tcp', 'udp' or 'auto')."""
    if scheme not in ("rtsp", "rtsps"):
        return {}
    # Probe at most 0.5 s of stream before delivering frames (FFmpeg's default is 5 s of analysis,
    # which delays every reconnect): an RTSP session already describes its streams in SDP.
    probe = {"analyzeduration": "500000"}
    if transport == "auto":
        return {"rtsp_flags": "prefer_tcp", **probe}
    return {"rtsp_transport": transport, **probe}


def _parse_options(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split("|"):
        key, sep, value = item.partition(";")
        if sep and key:
            out[key] = value
    return out


class _FfmpegOptionsGate:
    """Sets ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` around ``cv2.VideoCapture`` calls.

    The variable is process-wide and read during the (possibly slow) open, so two opens that
    need different options must not overlap; opens that need the same options may. Options the
    user put in the variable are kept; ours override the same keys. One gate per process,
    because it guards one per-process resource.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: str | None = None
        self._users = 0
        self._saved: str | None = None

    @contextmanager
    def options(self, options: dict[str, str]) -> Iterator[None]:
        with self._cond:
            while True:
                base = _parse_options(os.environ.get(FFMPEG_OPTIONS_ENV) if self._users == 0 else self._saved)
                value = "|".join(f"{k};{v}" for k, v in {**base, **options}.items())
                if self._users == 0 or value == self._value:
                    break
                self._cond.wait()
            if self._users == 0:
                self._saved = os.environ.get(FFMPEG_OPTIONS_ENV)
                self._value = value
                if value:
                    os.environ[FFMPEG_OPTIONS_ENV] = value
                else:
                    os.environ.pop(FFMPEG_OPTIONS_ENV, None)
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                if self._users == 0:
                    if self._saved is None:
                        os.environ.pop(FFMPEG_OPTIONS_ENV, None)
                    else:
                        os.environ[FFMPEG_OPTIONS_ENV] = self._saved
                    self._value = None
                    self._cond.notify_all()


_GATE = _FfmpegOptionsGate()


def open_url(url: str, scheme: str, transport: str, open_timeout: float, read_timeout: float) -> cv2.VideoCapture:
    """Open a network stream with FFmpeg; raises OpenFailed. Blocks at most about ``open_timeout`` s."""
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(1, int(open_timeout * 1000)),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, max(1, int(read_timeout * 1000)),
    ]
    with _GATE.options(ffmpeg_options(scheme, transport)):
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise OpenFailed("cannot connect (unreachable, refused, wrong path or credentials, or timed out)")
    return cap


def open_webcam(device: int | str) -> cv2.VideoCapture:
    """Open a local camera by index (0, 1, ...) or device path (/dev/video0); raises OpenFailed."""
    cap = cv2.VideoCapture(device)
    if not cap.isOpened():
        cap.release()
        raise OpenFailed("no such camera, or it is busy")
    return cap


def sane_fps(value: float | None) -> float | None:
    """A frame rate reported by a capture, or None when it is missing or implausible."""
    if value is None or not math.isfinite(value) or not (0.5 <= value <= 1000.0):
        return None
    return float(value)


class LiveClock:
    """Timestamps for a live source: seconds since ``origin`` on the monotonic clock, per camera.

    Where the stream has presentation times (``pts``, seconds), a frame's timestamp is
    ``base + pts`` with ``base`` the smallest ``arrival - pts`` seen in the current connection
    (the least delayed frame): the stream's own frame spacing is kept, and network jitter and
    the burst of frames buffered while connecting are not. A frame delayed in transit keeps
    its capture time. Presentation times are given up for arrival times, for the rest of the
    connection, when they do not advance (absent: OpenCV reports 0) or run clearly slower
    than the wall clock (made up by the demuxer); a small clock drift is absorbed by
    re-anchoring once frames have trailed for a while. Each connection starts anew from the
    arrival time, so timestamps only increase per camera and a stall shows as a gap.
    """

    MAX_LAG = 0.5  # s a frame's pts-based time may trail its arrival without counting as late
    LATE_FOR = 2.0  # s of consecutive late frames before the pts are checked and re-anchored
    MIN_RATE = 0.7  # pts seconds per wall second below which the pts are made up

    def __init__(self, origin: float):
        self.origin = origin
        self.last: float | None = None
        self.new_session()

    def new_session(self, use_pts: bool = True) -> None:
        """Start a new connection; ``use_pts=False``: the stream's pts are known to be made up."""
        self._base: float | None = None
        self._anchor = (0.0, 0.0)  # (pts, now) of the frame that set base
        self._prev_pts: float | None = None
        self._pts_ok: bool | None = None if use_pts else False  # None: not known yet
        self._late_since: float | None = None

    @property
    def using_pts(self) -> bool:
        return bool(self._pts_ok)

    def __call__(self, pts: float | None, arrival: float) -> float | None:
        """The timestamp of a frame that arrived at ``arrival`` (monotonic s), or None for a repeated frame."""
        now = arrival - self.origin
        ts = now
        if pts is not None and math.isfinite(pts) and self._pts_ok is not False:
            prev, self._prev_pts = self._prev_pts, pts
            if prev is not None:
                if self._pts_ok is None:
                    self._pts_ok = pts > prev
                elif pts == prev:
                    return None  # the same picture again
            if self._pts_ok is not False:
                if self._base is None or (prev is not None and pts < prev):
                    self._base = None  # first frame, or the stream's clock jumped back: anchor anew
                if self._base is None or now - pts < self._base:
                    self._base, self._anchor = now - pts, (pts, now)
                ts = self._base + pts
                if now - ts <= self.MAX_LAG:
                    self._late_since = None
                elif self._late_since is None:
                    self._late_since = now
                elif now - self._late_since >= self.LATE_FOR:
                    self._late_since = None
                    span = now - self._anchor[1]
                    if span > 0 and (pts - self._anchor[0]) / span < self.MIN_RATE:
                        self._pts_ok = False  # made-up pts: arrival times from now on
                    else:
                        self._base, self._anchor = now - pts, (pts, now)  # clock drift
                    ts = now
        if self.last is not None and ts <= self.last:
            ts = math.nextafter(self.last, math.inf)
        self.last = ts
        return ts
