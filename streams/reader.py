"""One reader thread per source behind a bounded queue: files, image folders, RTSP/HTTP, webcams.

Lifecycle: ``open()`` (validates, starts the thread) -> ``get(timeout)`` until ``END`` ->
``close()``. Also a context manager and an iterator of frames.

* Files and image folders (not paced): every frame is delivered in order (the reader blocks
  while the queue is full), then ``END``. Timestamps are ``(index - 1) / fps``.
* Live sources (RTSP/HTTP URLs, webcams) and paced files: the newest frame wins; when the
  consumer falls behind, the oldest queued frame is dropped and counted.
* Network streams reconnect with capped exponential backoff when they fail to open, stall
  (no frame for ``read_timeout``) or end. A failed read never produces a frame, and blank
  (uniform: black, grey, green) or repeated frames from a live source are skipped and
  counted, so the consumer sees a time gap, never a made-up frame.
* Corrupt data (an undecodable or truncated frame in a file or stream) is skipped and
  counted (``frames_corrupt``), logged at WARNING once and then at most once a minute; the
  source goes on with the next good frame (a file's frame numbers stay those of the file).
  HTTP MJPEG cameras are decoded here, not by FFmpeg, so that a truncated JPEG (no end
  marker) is never passed on as a half-grey picture. A file that ends before the frame count
  its header announces is reported (truncated).

Credentials in URLs never reach logs, errors or ``health()`` (see ``streams.masking``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from streams.capture import TRANSPORTS, URL_SCHEMES, LiveClock, OpenFailed, open_url, open_webcam, sane_fps
from streams.errors import SourceError
from streams.frame import END, IMAGE_EXT, Frame, SourceHealth, SourceState, _EndType
from streams.masking import mask_text, mask_url

log = logging.getLogger("streams")

DEFAULT_FOLDER_FPS = 30.0
BACKLOG_MAX = 2.0  # s after connecting during which frames buffered while connecting are skipped
REPEAT_LOG_INTERVAL = 60.0  # s between WARNING lines for the same repeated error
BACKOFF_START = 0.5  # s before the first retry; doubled per consecutive failure up to reconnect_max_backoff
MAX_BAD_READS = 5  # consecutive failed reads (returning at once) before a stream or file counts as ended
RAW_JPEG_GIVE_UP = 25  # well-formed JPEGs OpenCV cannot decode, with no good one, before FFmpeg decodes instead
_JPEG_PAD = b"\r\n\t \x00"  # what may follow a JPEG's end marker in a multipart part


class _FrameQueue:
    """Bounded FIFO of frames. ``newest_wins``: a full queue drops its oldest frame; else ``put`` blocks."""

    def __init__(self, maxsize: int, newest_wins: bool):
        self.maxsize = maxsize
        self.newest_wins = newest_wins
        self.dropped = 0
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._finished = False
        self._closed = False

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Queue ``frame``; False when the queue was closed or ``stop`` set while waiting for room."""
        with self._cond:
            if self.newest_wins:
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.maxsize and not (self._closed or stop.is_set()):
                    self._cond.wait(0.1)
            if self._closed or stop.is_set():
                return False
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def finish(self) -> None:
        """No more frames: ``get`` returns END once the queued ones are taken."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> None:
        """Discard queued frames and finish: ``get`` returns END at once."""
        with self._cond:
            self._items.clear()
            self._closed = self._finished = True
            self._cond.notify_all()

    def get(self, timeout: float | None):
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._items:
                if self._finished:
                    return END
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def _is_blank(image: np.ndarray) -> bool:
    """True for a uniform frame (black, grey, green: what a decoder shows without a picture)."""
    sample = image[::16, ::16].reshape(-1, image.shape[2] if image.ndim == 3 else 1)
    return sample.size == 0 or int(np.ptp(sample, axis=0).max()) <= 2


def valid_jpeg(data: bytes) -> bool:
    """True when ``data`` starts with a JPEG start marker and ends (after padding) with an end marker."""
    return data[:2] == b"\xff\xd8" and data.rstrip(_JPEG_PAD).endswith(b"\xff\xd9")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class SourceReader:
    """Reads one camera's frames on its own thread into a bounded queue.

    ``source``: a video file, a folder of images (MOTChallenge ``img1/``, or a sequence folder
    holding one), an ``rtsp://``, ``rtsps://``, ``http(s)://`` or ``rtmp://`` URL, or a webcam
    index (``"0"``) or device (``/dev/video0``).

    ``fps``: frame rate for timestamps of folders (default 30) and files (default: the
    container's), and for pacing. ``pace``: read a file at its frame rate like a live camera
    (newest frame wins, drops counted); timestamps still come from the file.
    ``queue_size``: frames buffered between the reader and the consumer. Larger: absorbs
    consumer hiccups without drops; smaller: less latency (live) and memory.
    ``transport``: RTSP transport, 'tcp' (interleaved in the RTSP connection: works through
    NAT and firewalls, no packet loss), 'udp' (less latency, drops packets on busy networks)
    or 'auto' (FFmpeg tries TCP first).
    ``open_timeout`` / ``read_timeout``: seconds to wait for a network stream to open / for
    its next frame before giving up on the connection. Lower: a stall is noticed sooner, but
    slow cameras are dropped needlessly. A reader thread blocked in an open or a read when
    ``close()`` is called exits on its own within these timeouts (``close()`` does not wait).
    ``reconnect_max_backoff``: cap in seconds of the doubling wait between retries (0.5 s,
    1 s, 2 s, ...). ``max_reconnects``: consecutive failed attempts (a failed open, or a
    connection that yields no frame) before the source is given up (state 'failed', then
    END); a lost stream that delivered frames starts the count anew. None: retry forever.
    ``clock_origin``: ``time.monotonic()`` value that live timestamps count from; pass one
    value to every live reader for a common time base across cameras (default: ``open()``).
    ``skip_blank``: skip uniform (black/grey/green) frames from live sources.
    """

    def __init__(self, camera_id: str, source: str, *, fps: float | None = None, pace: bool = False,
                 queue_size: int = 4, transport: str = "tcp", open_timeout: float = 10.0,
                 read_timeout: float = 5.0, reconnect_max_backoff: float = 1.0, max_reconnects: int | None = None,
                 clock_origin: float | None = None, skip_blank: bool = True):
        self.camera_id = str(camera_id)
        self._source = str(source)
        self.source = mask_url(self._source)
        where = f"camera {self.camera_id}"
        if fps is not None and not (fps > 0):
            raise SourceError(f"{where}: fps must be > 0, got {fps}")
        if int(queue_size) < 1:
            raise SourceError(f"{where}: queue_size must be >= 1, got {queue_size}")
        if transport not in TRANSPORTS:
            raise SourceError(f"{where}: transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        for name, value in (("open_timeout", open_timeout), ("read_timeout", read_timeout),
                            ("reconnect_max_backoff", reconnect_max_backoff)):
            if not (value > 0):
                raise SourceError(f"{where}: {name} must be > 0 seconds, got {value}")
        if max_reconnects is not None and int(max_reconnects) < 0:
            raise SourceError(f"{where}: max_reconnects must be >= 0 or None, got {max_reconnects}")
        self.fps = fps
        self.pace = bool(pace)
        self.queue_size = int(queue_size)
        self.transport = transport
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self.reconnect_max_backoff = float(reconnect_max_backoff)
        self.max_reconnects = None if max_reconnects is None else int(max_reconnects)
        self.skip_blank = bool(skip_blank)
        self._clock_origin = clock_origin

        self.kind, self._scheme = self._classify(self._source)
        self.live = self.kind in ("url", "webcam") or (self.pace and self.kind in ("file", "folder"))
        self.frame_size: tuple[int, int] | None = None
        self.frame_count: int | None = None  # frames in a file or folder (a file's is the container's estimate)
        self.nominal_fps: float | None = fps
        if self.kind == "folder" and fps is None:
            self.nominal_fps = DEFAULT_FOLDER_FPS

        self._queue = _FrameQueue(self.queue_size, newest_wins=self.live)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._cap = None  # file capture validated by open(), handed to the thread
        self._first: np.ndarray | None = None
        self._files: list[Path] = []
        self._state = SourceState.CONNECTING
        self._frames_in = 0
        self._frames_skipped = 0
        self._reconnects = 0
        self._connect_failures = 0
        self._last_arrival: float | None = None
        self._last_error: str | None = None
        self._down_since: float | None = None  # when the current outage began (live sources)
        self._logged_error: str | None = None
        self._logged_at = 0.0
        self._quiet = False
        self._frames_corrupt = 0
        self._corrupt_logged_at: float | None = None
        self._corrupt_unlogged = 0  # corrupt frames since the last WARNING about them
        self._raw_jpeg = True  # decode HTTP MJPEG here (see _read_session); off once OpenCV cannot decode them

    # ----------------------------------------------------------------- lifecycle

    @staticmethod
    def _classify(source: str) -> tuple[str, str | None]:
        if "://" in source:
            scheme = source.split("://", 1)[0].lower()
            if scheme not in URL_SCHEMES:
                raise SourceError(f"unsupported stream URL {mask_url(source)}: scheme must be one of "
                                f"{', '.join(URL_SCHEMES)}")
            return "url", scheme
        if source.strip().isdigit() or source.startswith("/dev/video"):
            return "webcam", None
        return ("folder" if Path(source).is_dir() else "file"), None

    def open(self) -> SourceReader:
        """Validate the source and start the reader thread; returns self.

        Files and folders are checked here (missing, unreadable, corrupt -> SourceError). Live
        sources are opened on the reader thread: this returns at once, and an unreachable
        camera shows in ``health()`` and the log while it is retried.
        """
        if self._opened:
            return self
        if self.kind == "file":
            self._open_file()
        elif self.kind == "folder":
            self._open_folder()
        self._opened = True
        self.start()
        return self

    def _open_file(self) -> None:
        path = Path(self._source)
        if not path.exists():
            raise SourceError(f"camera {self.camera_id}: video file not found: {path}")
        if not path.is_file():
            raise SourceError(f"camera {self.camera_id}: not a video file: {path}")
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self.camera_id}: cannot open video file {path} (unsupported format or corrupt)")
        ok, image = cap.read()
        if not ok or image is None or image.size == 0:
            cap.release()
            raise SourceError(f"camera {self.camera_id}: cannot decode any frame of video file {path} "
                            "(corrupt or empty)")
        if self.fps is None:
            self.nominal_fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
        if self.pace and self.nominal_fps is None:
            cap.release()
            raise SourceError(f"camera {self.camera_id}: cannot pace {path}: its frame rate is unknown; give fps")
        self._cap, self._first = cap, image
        self.frame_size = (image.shape[1], image.shape[0])
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count > 0 else None

    def _open_folder(self) -> None:
        folder = Path(self._source)

        def images(d: Path) -> list[Path]:
            try:
                return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT)
            except OSError as exc:
                raise SourceError(f"camera {self.camera_id}: cannot list frame folder {d}: {exc.strerror}") from None

        files = images(folder)
        if not files and (folder / "img1").is_dir():
            folder = folder / "img1"
            files = images(folder)
        if not files:
            raise SourceError(f"camera {self.camera_id}: no images ({', '.join(sorted(IMAGE_EXT))}) in {folder}")
        image = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"camera {self.camera_id}: cannot decode image {files[0]}")
        self._files, self._first = files, image
        self.frame_size = (image.shape[1], image.shape[0])
        self.frame_count = len(files)

    def start(self) -> None:
        """Start the reader thread (``open()`` calls it). Files and folders must be opened first."""
        if self._thread is not None:
            return
        if self.kind in ("file", "folder") and not self._opened:
            self.open()
            return
        self._opened = True
        if self._clock_origin is None:
            self._clock_origin = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"source-{self.camera_id}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the reader and release the capture. Idempotent; waits at most ``timeout`` s for the thread.

        A thread blocked inside OpenCV (opening or reading a network stream) cannot be
        interrupted; it exits on its own once that call returns (within the open/read timeout).
        """
        self._stop.set()
        self._queue.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.info("camera %s: reader thread still inside the capture; it exits when that call returns",
                         self.camera_id)
        with self._lock:
            if self._thread is None and self._cap is not None:  # opened, never started
                self._cap.release()
                self._cap = None
            if self._state not in (SourceState.FINISHED, SourceState.FAILED):
                self._state = SourceState.FINISHED

    def __enter__(self) -> SourceReader:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- consumer side

    def get(self, timeout: float | None = None) -> Frame | _EndType | None:
        """The next frame, ``None`` when none came within ``timeout`` s, or ``END`` once the source is finished."""
        if self._thread is None:
            raise RuntimeError(f"camera {self.camera_id}: get() before open()")
        return self._queue.get(timeout)

    def __iter__(self) -> Iterator[Frame]:
        """Frames until END (opens the source if needed)."""
        self.open()
        while True:
            item = self.get(0.5)
            if item is END:
                return
            if item is not None:
                yield item

    def health(self) -> SourceHealth:
        """A consistent snapshot of counters and state (thread-safe)."""
        with self._lock:
            age = None if self._last_arrival is None else time.monotonic() - self._last_arrival
            return SourceHealth(
                camera_id=self.camera_id, source=self.source, state=self._state, live=self.live,
                frames_in=self._frames_in, frames_dropped=self._queue.dropped, frames_skipped=self._frames_skipped,
                reconnects=self._reconnects, connect_failures=self._connect_failures, last_frame_age=age,
                last_error=self._last_error, frame_size=self.frame_size, frames_corrupt=self._frames_corrupt,
            )

    # ----------------------------------------------------------------- reader thread

    def _set_state(self, state: SourceState, error: str | None = None) -> None:
        with self._lock:
            if self._state == SourceState.FAILED and state != SourceState.FAILED:
                return
            self._state = state
            if error is not None:
                self._last_error = _one_line(error)

    def _error(self, error: str) -> None:
        with self._lock:
            self._last_error = _one_line(error)

    def _mask(self, text: str) -> str:
        return _one_line(mask_text(text, self._source))

    def _deliver(self, index: int, timestamp: float, image: np.ndarray, arrival: float) -> bool:
        frame = Frame(self.camera_id, index, timestamp, image, arrival)
        size = (image.shape[1], image.shape[0])
        if size != self.frame_size:
            if self.frame_size is not None:
                log.info("camera %s: frame size changed from %dx%d to %dx%d", self.camera_id,
                         *self.frame_size, *size)
            self.frame_size = size
        with self._lock:
            self._frames_in += 1
            self._last_arrival = arrival
        return self._queue.put(frame, self._stop)

    def _run(self) -> None:
        try:
            if self.kind in ("file", "folder"):
                self._run_file()
            else:
                self._run_live()
        except Exception as exc:  # noqa: BLE001 - report, never take the pipeline down
            msg = self._mask(f"{type(exc).__name__}: {exc}")
            self._set_state(SourceState.FAILED, f"reader error: {msg}")
            log.error("camera %s: reader stopped by an error: %s", self.camera_id, msg)
        finally:
            with self._lock:
                cap, self._cap = self._cap, None
            if cap is not None:
                cap.release()
            self._queue.finish()

    # Files and folders -------------------------------------------------------

    def _file_frames(self) -> Iterator[tuple[np.ndarray, float | None]]:
        """(image, container time in s or None) for each frame, the one read by open() first."""
        first, self._first = self._first, None
        if self.kind == "folder":
            for i, path in enumerate(self._files):
                image = first if i == 0 else cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise SourceError(f"cannot decode image {path}")
                yield image, None
            return
        cap = self._cap
        yield first, 0.0
        bad = 0  # failed reads in a row: corrupt frames when a good one follows, else the end of the file
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                bad += 1
                if bad >= MAX_BAD_READS:
                    return
                continue
            for _ in range(bad):
                yield None, None  # one frame that could not be decoded
            bad = 0
            yield image, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0

    def _run_file(self) -> None:
        fps = self.fps or self.nominal_fps
        self._set_state(SourceState.STREAMING)
        start = None
        last_ts = -1.0
        index = 0
        try:
            for image, container_ts in self._file_frames():
                if self._stop.is_set():
                    return
                index += 1
                if image is None:
                    self._corrupt(f"frame {index} of {self._source} cannot be decoded (corrupt file)")
                    continue
                if fps:
                    ts = (index - 1) / fps
                else:
                    ts = container_ts if container_ts is not None else 0.0
                    ts = ts if ts > last_ts else last_ts + 1e-3
                last_ts = ts
                if self.pace:
                    if start is None:
                        start = time.monotonic() - ts
                    if self._stop.wait(max(0.0, start + ts - time.monotonic())):
                        return
                if not self._deliver(index, ts, image, time.monotonic()):
                    return
        except SourceError as exc:
            self._set_state(SourceState.FAILED, str(exc))
            log.error("camera %s: %s; source stopped after %d frames", self.camera_id, exc, index - 1)
            return
        announced = self.frame_count if self.kind == "file" else None
        if announced and index < announced - max(2, 0.01 * announced):  # the count may be the container's estimate
            msg = f"video file {self._source} ended after frame {index} of the {announced} its header announces " \
                  "(truncated or corrupt)"
            self._error(msg)
            log.warning("camera %s: %s", self.camera_id, msg)
        self._set_state(SourceState.FINISHED)

    # Live sources -------------------------------------------------------------

    def _open_live(self):
        if self.kind == "webcam":
            src = self._source.strip()
            return open_webcam(int(src) if src.isdigit() else src)
        return open_url(self._source, self._scheme, self.transport, self.open_timeout, self.read_timeout)

    def _made_up_pts(self, cap) -> bool:
        """True for an HTTP MJPEG stream (multipart JPEGs): FFmpeg numbers its frames at a guessed 25 fps."""
        if self._scheme not in ("http", "https"):
            return False
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        return fourcc == cv2.VideoWriter.fourcc(*"MJPG")

    def _backoff(self, failures: int) -> float:
        return min(self.reconnect_max_backoff, BACKOFF_START * 2 ** max(0, failures - 1))

    def _run_live(self) -> None:
        what = "camera" if self.kind == "webcam" else "stream"
        clock = LiveClock(self._clock_origin)
        index = 0
        failures = 0  # consecutive attempts without a frame
        attempt = 0
        while not self._stop.is_set():
            if attempt > 0:
                with self._lock:
                    self._reconnects += 1
            attempt += 1
            try:
                cap = self._open_live()
            except OpenFailed as exc:
                failures += 1
                with self._lock:
                    self._connect_failures += 1
                if self._give_up_or_wait(failures, f"cannot open {what} {self.source}: {self._mask(str(exc))}"):
                    return
                continue
            with self._lock:
                self._cap = cap
            if self.fps is None:
                self.nominal_fps = sane_fps(cap.get(cv2.CAP_PROP_FPS)) or self.nominal_fps
            clock.new_session(use_pts=not self._made_up_pts(cap))
            frames, reason = self._read_session(cap, clock, index)
            index += frames
            with self._lock:
                self._cap = None
            cap.release()
            if self._stop.is_set():
                return
            failures = 1 if frames else failures + 1
            if self._give_up_or_wait(failures, f"{what} {self.source}: {reason}"):
                return

    def _give_up_or_wait(self, failures: int, error: str) -> bool:
        """Record a failure; True when the source is given up, else wait the backoff (True if closed meanwhile).

        Errors while retrying, and the same error again after a short recovery (a flapping camera,
        a stream that keeps breaking off), are logged at WARNING once a minute, else at DEBUG.
        """
        now = time.monotonic()
        new_outage = self._down_since is None
        if new_outage:
            self._down_since = now
        if self.max_reconnects is not None and failures > self.max_reconnects:
            self._set_state(SourceState.FAILED, error)
            log.error("camera %s: %s; giving up after %d attempt(s)", self.camera_id, error, failures)
            return True
        delay = self._backoff(failures)
        self._set_state(SourceState.RECONNECTING, error)
        recent = self._logged_error is not None and now - self._logged_at < REPEAT_LOG_INTERVAL
        repeated = recent and (not new_outage or error == self._logged_error)
        self._quiet = repeated  # the recovery from a repeated outage is logged at DEBUG too
        if not repeated:
            self._logged_error, self._logged_at = error, now
        log.log(logging.DEBUG if repeated else logging.WARNING, "camera %s: %s; reconnecting in %.1f s",
                self.camera_id, error, delay)
        return self._stop.wait(delay)

    def _read_session(self, cap, clock: LiveClock, index: int) -> tuple[int, str]:
        """Read frames from an open capture until it fails; returns (frames delivered, why it ended).

        Right after connecting, FFmpeg hands over the frames it buffered while probing the
        stream (about a second's worth) as fast as they can be decoded. Those are stale: a
        frame is skipped while the next one arrives in less than half their presentation-time
        step, so delivery starts at the live edge (at most ``BACKLOG_MAX`` s after connecting).
        """
        frames = 0
        opened = last_good = time.monotonic()
        pending: tuple[np.ndarray, float, float] | None = None  # newest frame while catching up
        # HTTP MJPEG: take each part's bytes (raw mode) and decode them here, so a truncated or malformed JPEG is
        # dropped; FFmpeg would pass on the half it could decode.
        raw = self._raw_jpeg and self._made_up_pts(cap) and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
        raw_good, raw_undecodable = False, 0
        bad_reads = 0  # failed reads in a row that returned at once
        while not self._stop.is_set():
            started = time.monotonic()
            ok, image = cap.read()
            arrival = time.monotonic()
            if self._stop.is_set():
                break
            if not ok or image is None or image.size == 0:
                if arrival - started >= 0.8 * self.read_timeout:
                    return frames, f"no frame for {self.read_timeout:g} s (stalled)"
                bad_reads += 1  # a frame FFmpeg could not decode, or the end of the stream
                if bad_reads >= MAX_BAD_READS or arrival - last_good >= self.read_timeout:
                    return frames, "stream ended or broke off"
                continue
            if bad_reads:
                self._corrupt(f"{self.source}: a frame could not be decoded", bad_reads)
                bad_reads = 0
            if raw:
                data = image.tobytes()
                well_formed = valid_jpeg(data)
                image = cv2.imdecode(image.reshape(-1), cv2.IMREAD_COLOR) if well_formed else None
                if image is None:
                    self._corrupt(f"{self.source}: a {'undecodable' if well_formed else 'truncated or malformed'} "
                                  "JPEG frame")
                    raw_undecodable += well_formed
                    if not raw_good and raw_undecodable >= RAW_JPEG_GIVE_UP:
                        self._raw_jpeg = False
                        return frames, "its JPEG frames cannot be decoded here; FFmpeg decodes them from now on"
                    if arrival - last_good >= self.read_timeout:
                        return frames, f"only corrupt frames for {self.read_timeout:g} s"
                    continue
                raw_good = True
            pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if self.skip_blank and _is_blank(image):
                self._skip()
                if arrival - last_good >= self.read_timeout:
                    return frames, f"only blank frames for {self.read_timeout:g} s"
                continue
            batch = [(image, pts, arrival)]
            if frames == 0:  # catching up with the backlog
                if pending is None:
                    pending = batch[0]
                    continue
                p_pts, p_arrival = pending[1], pending[2]
                step = pts - p_pts if pts > p_pts else (1.0 / self.nominal_fps if self.nominal_fps else 0.0)
                if arrival - p_arrival < 0.5 * step and arrival - opened < BACKLOG_MAX:
                    self._skip()
                    pending = batch[0]
                    continue
                batch.insert(0, pending)
                pending = None
            for image, pts, arrival in batch:
                ts = clock(pts, arrival)
                if ts is None:
                    self._skip()
                    if arrival - last_good >= self.read_timeout:
                        return frames, f"only repeated frames for {self.read_timeout:g} s (frozen)"
                    continue
                last_good = arrival
                frames += 1
                if frames == 1:
                    self._set_state(SourceState.STREAMING)
                    outage = "" if self._down_since is None else f" again after {arrival - self._down_since:.1f} s"
                    self._down_since = None
                    log.log(logging.DEBUG if self._quiet else logging.INFO, "camera %s: streaming %s%s (%dx%d)",
                            self.camera_id, self.source, outage, image.shape[1], image.shape[0])
                if not self._deliver(index + frames, ts, image, arrival):
                    return frames, "closed"
        return frames, "closed"

    def _skip(self) -> None:
        with self._lock:
            self._frames_skipped += 1

    def _corrupt(self, what: str, n: int = 1) -> None:
        """Count ``n`` corrupt frames; WARNING the first time, then at most once per REPEAT_LOG_INTERVAL."""
        what = self._mask(what)
        now = time.monotonic()
        with self._lock:
            self._frames_corrupt += n
            self._frames_skipped += n
            self._last_error = what
        self._corrupt_unlogged += n
        if self._corrupt_logged_at is None:
            log.warning("camera %s: %s; skipped (corrupt frames are counted, and logged at most once a minute)",
                        self.camera_id, what)
        elif now - self._corrupt_logged_at >= REPEAT_LOG_INTERVAL:
            log.warning("camera %s: %d corrupt frames skipped in the last %.0f s (latest: %s)", self.camera_id,
                        self._corrupt_unlogged, now - self._corrupt_logged_at, what)
        else:
            return
        self._corrupt_logged_at, self._corrupt_unlogged = now, 0


def open_source(camera_id: str, source: str, **kw) -> SourceReader:
    """Construct a ``SourceReader`` and open it (see ``SourceReader`` for the keywords)."""
    return SourceReader(camera_id, source, **kw).open()
