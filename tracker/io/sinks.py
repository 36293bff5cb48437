"""Output sinks of the live pipeline: MOT files, events, annotated video and the live view.

The pipeline calls ``Sinks.submit`` once per tick with every camera's result; all file I/O,
annotation, video encoding and JPEG encoding happen in two daemon threads (and the live view's
request threads), never in the caller's.

Queues and what is dropped:

- **Text** (MOT rows and events) goes through an unbounded ``queue.SimpleQueue`` of small
  per-tick snapshots (the track arrays, never images: a few hundred bytes per camera), so text
  is never dropped and ``submit`` does not wait for the disk. Should the writer fall more than
  ``TEXT_HIGH_WATER`` ticks behind (a stalled disk), ``submit`` waits for it: losing rows or
  growing memory without bound would be worse than slowing the loop, and it is logged.
- **Frames** (for the annotated video and the live view) go through a ``deque`` bounded to
  ``queue_size`` ticks; when it is full the *oldest* pending frame is discarded (the live view
  stays current), counted per camera in ``dropped_video_frames``. A video that lost frames is
  shorter than the run (frames are written at a constant ``video_fps``).

``submit`` only appends to these (no lock the writer threads hold), so ``close`` can be
called from a signal-handling path even when the signal interrupted ``submit``.

Files under ``out_dir`` (camera ids are made file-name safe: characters other than letters,
digits, ``.``, ``_`` and ``-`` become ``_``):

- ``<camera>.txt``: MOTChallenge rows ``frame,id,left,top,width,height,score,-1,-1,-1`` for
  confirmed tracks matched to a detection in that frame (``det_index >= 0``); ``frame`` is the
  source's frame index and ``id`` the identity shown to users (see ``show_ids``). Each batch of
  rows is written by one ``os.write`` of whole lines; if a write fails half-way (disk full) the
  file is truncated back to its last whole line. ``close`` fsyncs.
- ``events.jsonl``: one JSON object per line with ``type``, ``camera``, ``time`` (stream
  timestamp, s), ``frame``, ``track_id``, ``identity`` and ``global_id`` (-1 when unresolved):

  - ``track_started``: the first tick a confirmed track is reported.
  - ``identity_seen``: the first time an identity is seen (matched to a detection) in a camera;
    an unresolved track counts under its local id and again under its global id once resolved.
  - ``track_ended``: a confirmed track left the tracker's output (``"reason": "removed"``;
    ``time``/``frame`` of that tick), or was still active at ``close`` (``"reason": "shutdown"``;
    ``time``/``frame`` of the camera's last tick). Both carry ``last_seen_time`` and
    ``last_seen_frame``, the last tick it was matched to a detection (null if never).

  Per tick and camera the order is: ended, started, identity_seen, each by track id.

  Other events given to ``submit_events`` (the identity registry's corrections, e.g.
  ``identity_merged``) are written as given, one JSON object per line, in the order submitted
  relative to the ticks (the pipeline submits a tick's corrections before the tick).
- ``<camera>.mp4`` (``video=True``): annotated frames (boxes, identity labels, a trail of box
  bottoms over the last ``TRAIL_SECONDS``), mp4v at ``video_fps[camera]`` (default 10).

Disk errors (disk full, output folder removed) are logged once, stored in ``error`` (a
``UserError``), and raised by the next ``submit`` so the pipeline stops cleanly.
"""

from __future__ import annotations

import atexit
import collections
import errno
import json
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streams.files import Frame
from tracker.core.types import TrackOutput
from tracker.errors import UserError
from tracker.io.liveview import LiveView

log = logging.getLogger(__name__)

TRAIL_SECONDS = 2.0
"""Length of the drawn trail, in stream seconds. Longer: shows more of the path, more clutter."""
TEXT_HIGH_WATER = 10_000
"""Ticks of text the writer may fall behind before ``submit`` waits (about 5 min at 30 ticks/s)."""
DEFAULT_VIDEO_FPS = 10.0
SHOW_IDS = ("global_or_local", "local", "both")
_STOP = object()
_JOIN_TIMEOUT_S = 60.0
_VIDEO_CHECK_S = 1.0

_os_write = os.write  # indirection so tests can simulate a full disk


@dataclass(frozen=True)
class CameraResult:
    """One camera's result for one tick.

    Attributes:
        camera_id: the camera.
        frame: the frame tracked (``image`` (H, W, 3) uint8 BGR; ``None`` skips video/live view for it).
            The image must not be modified after ``submit``; it is read by the frame thread.
        tracks: the tracker's output for that frame (rows with ``det_index >= 0`` were matched in this
            frame; ``det_index == -1`` rows are predicted-only confirmed tracks).
        capture_time: ``time.monotonic()`` when the frame was read from the source.
    """

    camera_id: str
    frame: Frame
    tracks: TrackOutput
    capture_time: float


@dataclass(frozen=True)
class CameraStats:
    """Per-camera pipeline statistics, a snapshot taken each tick (shown by the live view)."""

    camera_id: str
    source: str  # credentials already masked
    fps: float
    frames_in: int
    frames_dropped: int
    reconnects: int
    last_frame_age: float  # seconds
    latency_p50_ms: float
    latency_p95_ms: float
    state: str


@dataclass(frozen=True)
class _Rows:
    """A private copy of one camera's track rows (the caller's arrays may be reused after submit).

    ``tlbr`` (M, 4) float32 pixels left, top, right, bottom; ``identity`` the id shown to users.
    """

    track_ids: np.ndarray
    global_ids: np.ndarray
    identity: np.ndarray
    tlbr: np.ndarray
    scores: np.ndarray
    det_index: np.ndarray
    confirmed: np.ndarray


@dataclass(frozen=True)
class _TextItem:
    camera_id: str
    frame_index: int
    timestamp: float
    rows: _Rows


@dataclass(frozen=True)
class _EventLines:
    text: str  # whole JSON lines, serialised by the caller's thread


@dataclass(frozen=True)
class _FrameJob:
    camera_id: str
    seq: int  # per camera, 1-based; gaps seen by the frame thread are dropped frames
    timestamp: float
    image: np.ndarray
    rows: _Rows


@dataclass
class _TrackState:
    identity: int
    global_id: int
    last_seen_time: float | None = None
    last_seen_frame: int | None = None


#: seconds (stream time) after which an identity not seen again in a camera is forgotten by the event
#: writer: when it shows up there again, ``identity_seen`` is emitted again (a return after a long
#: absence is news). Keeps the writer's memory bounded by the rate of identities, not the run's length.
SEEN_RETENTION = 600.0


@dataclass
class _CameraText:
    active: dict[int, _TrackState] = field(default_factory=dict)
    seen: dict[tuple[str, int], float] = field(default_factory=dict)  # identity key -> last stream time seen
    last_prune: float = 0.0
    last_time: float = 0.0
    last_frame: int = 0


def safe_name(camera_id: str) -> str:
    """A file-name-safe form of a camera id (letters, digits, ``.``, ``_``, ``-``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", camera_id).strip(".") or "camera"
    return name


def _snapshot(tracks: TrackOutput, show_ids: str) -> _Rows:
    track_ids = np.array(tracks.track_ids, dtype=np.int64).reshape(-1)
    global_ids = np.array(tracks.global_ids, dtype=np.int64).reshape(-1)
    if show_ids == "local":
        identity = track_ids
    else:
        identity = np.where(global_ids >= 0, global_ids, track_ids)
    return _Rows(track_ids, global_ids, identity, np.array(tracks.tlbr, dtype=np.float32).reshape(-1, 4),
                 np.array(tracks.scores, dtype=np.float32).reshape(-1),
                 np.array(tracks.det_index, dtype=np.int64).reshape(-1),
                 np.array(tracks.confirmed, dtype=bool).reshape(-1))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def mot_lines(frame_index: int, rows: _Rows) -> str:
    """MOTChallenge lines for rows confirmed and matched this frame (``frame,id,l,t,w,h,score,-1,-1,-1``)."""
    keep = np.flatnonzero(rows.confirmed & (rows.det_index >= 0))
    out = []
    for i in keep:
        l, t, r, b = (float(v) for v in rows.tlbr[i])
        out.append(f"{frame_index},{int(rows.identity[i])},{l:.2f},{t:.2f},{r - l:.2f},{b - t:.2f},"
                   f"{float(rows.scores[i]):.3f},-1,-1,-1\n")
    return "".join(out)


# -- annotation ------------------------------------------------------------------------------------

def _palette(n: int = 64) -> np.ndarray:
    hues = (np.arange(n) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 200, np.uint8), np.full(n, 255, np.uint8)], axis=1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0].astype(int)


_PALETTE = _palette()


def _color(identity: int) -> tuple[int, int, int]:
    c = _PALETTE[int(identity) % len(_PALETTE)]
    return int(c[0]), int(c[1]), int(c[2])


def _label(rows: _Rows, i: int, show_ids: str) -> str:
    t, g = int(rows.track_ids[i]), int(rows.global_ids[i])
    if show_ids == "local":
        return str(t)
    if show_ids == "both":
        return f"{g} ({t})" if g >= 0 else f"? ({t})"
    # The same number as the MOT file's id column (OpenCV's Hershey font cannot draw "~" or "#" reliably).
    return str(g) if g >= 0 else str(t)


def annotate_frame(image: np.ndarray, rows: _Rows, trails: dict[int, collections.deque], show_ids: str,
                   caption: str = "") -> np.ndarray:
    """Draw confirmed tracks on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 BGR; not modified.
        rows: the tick's tracks; boxes ``tlbr`` in pixels. Matched tracks get a thick box,
            predicted-only ones a thin box.
        trails: local track id -> deque of (timestamp s, x px, y px) box bottoms, oldest first.
        show_ids: how labels read (see ``Sinks``).
        caption: text drawn in the top-left corner (camera id and time).
    Returns:
        (H, W, 3) uint8 BGR annotated copy.
    """
    out = image.copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in np.flatnonzero(rows.confirmed):
        color = _color(int(rows.identity[i]))
        trail = trails.get(int(rows.track_ids[i]))
        if trail is not None and len(trail) > 1:
            pts = np.array([(x, y) for _, x, y in trail], np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], False, color, 2, cv2.LINE_AA)
        l, t, r, b = (int(round(float(v))) for v in rows.tlbr[i])
        matched = rows.det_index[i] >= 0
        cv2.rectangle(out, (l, t), (r, b), color, 2 if matched else 1)
        text = _label(rows, i, show_ids)
        (tw, th), base = cv2.getTextSize(text, font, 0.5, 1)
        y0 = max(t, th + base + 2)
        cv2.rectangle(out, (l, y0 - th - base - 2), (l + tw + 4, y0), color, -1)
        cv2.putText(out, text, (l + 2, y0 - base - 1), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if caption:
        cv2.putText(out, caption, (8, 22), font, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, caption, (8, 22), font, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _update_trails(trails: dict[int, collections.deque], rows: _Rows, timestamp: float) -> None:
    """Append each confirmed track's box bottom-centre; forget points older than TRAIL_SECONDS and gone tracks."""
    present = set()
    for i in np.flatnonzero(rows.confirmed):
        tid = int(rows.track_ids[i])
        present.add(tid)
        l, _, r, b = (float(v) for v in rows.tlbr[i])
        trails.setdefault(tid, collections.deque()).append((timestamp, (l + r) / 2.0, b))
    for tid in list(trails):
        if tid not in present:
            del trails[tid]
            continue
        d = trails[tid]
        while d and d[0][0] < timestamp - TRAIL_SECONDS:
            d.popleft()


# -- files -----------------------------------------------------------------------------------------

class _AppendFile:
    """An append-only text file written in whole-line chunks by one ``os.write`` call each."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.size = 0

    def write(self, text: str) -> None:
        """Append whole lines; on failure truncate back to the last whole line and re-raise."""
        if not text:
            return
        data = memoryview(text.encode())
        start = self.size
        try:
            while data:
                n = _os_write(self.fd, data)
                if n <= 0:  # pragma: no cover - os.write raises rather than returning 0 for files
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                data = data[n:]
                self.size += n
        except OSError:
            try:
                os.ftruncate(self.fd, start)
                self.size = start
            except OSError:
                pass
            raise

    def check(self) -> None:
        """Raise OSError when the file was deleted while open (e.g. its folder was removed)."""
        if os.fstat(self.fd).st_nlink == 0:
            raise OSError(errno.ENOENT, "the file was deleted while running (was the output folder removed?)")

    def close(self, sync: bool = True) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        try:
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)


class Sinks:
    """Every output of a live run, fed once per tick by the pipeline.

    Args:
        out_dir: output folder (created by ``start``).
        camera_ids: every camera that may appear in ``submit``.
        mot: write ``<camera>.txt`` MOTChallenge results.
        events: write ``events.jsonl``.
        video: write annotated ``<camera>.mp4``.
        video_fps: camera -> frame rate of its video (default 10).
        http: serve the live view (``tracker.io.liveview``) on ``http_host:http_port`` (0: any free port).
        http_token: bearer token accepted by the live view (recommended when not bound to localhost).
        http_user, http_password: HTTP basic authentication for the live view (both or neither); with a
            token too, either is accepted. Never logged.
        queue_size: ticks of frames the frame thread may fall behind before the oldest are dropped.
            Larger: fewer dropped video frames under bursts, more memory (one image per camera per tick).
        show_ids: identity shown in files and labels: ``global_or_local`` (global id when resolved,
            else the local track id, in files and labels alike), ``local`` (always the local id),
            ``both`` (files as ``global_or_local``, labels ``global (local)``).

    Attributes:
        error: the ``UserError`` that stopped the outputs, or None.
        dropped_video_frames: frames skipped by the video/live-view path so far (exact after ``close``).
        behind: True while a queue is over half full (the pipeline logs "sinks are falling behind").
    """

    def __init__(self, out_dir: Path, camera_ids: list[str], *, mot: bool = True, events: bool = True,
                 video: bool = False, video_fps: dict[str, float] | None = None,
                 http: bool = False, http_host: str = "127.0.0.1", http_port: int = 8080,
                 http_token: str | None = None, queue_size: int = 64, show_ids: str = "global_or_local",
                 http_user: str | None = None, http_password: str | None = None):
        if show_ids not in SHOW_IDS:
            raise UserError(f"show_ids must be one of {', '.join(SHOW_IDS)}, got {show_ids!r}")
        if queue_size < 1:
            raise UserError(f"queue_size must be at least 1, got {queue_size}")
        if bool(http_user) != bool(http_password):
            raise UserError("output.http_user and output.http_password go together: set both or neither")
        if len(set(camera_ids)) != len(camera_ids):
            raise UserError(f"camera ids must be unique, got {camera_ids}")
        self.out_dir = Path(out_dir)
        self.camera_ids = list(camera_ids)
        self.mot, self.events, self.video, self.http = mot, events, video, http
        self.video_fps = dict(video_fps or {})
        self.http_host, self.http_port, self.http_token = http_host, http_port, http_token
        self._http_basic = (http_user, http_password)
        self.queue_size = queue_size
        self.show_ids = show_ids
        self.error: UserError | None = None

        names: dict[str, str] = {}
        used: set[str] = {"events"}
        for cam in self.camera_ids:
            base = name = safe_name(cam)
            k = 2
            while name.lower() in used:
                name = f"{base}_{k}"
                k += 1
            used.add(name.lower())
            names[cam] = name
        self._names = names

        self._text_q: queue.SimpleQueue = queue.SimpleQueue()
        self._frames: collections.deque[_FrameJob] = collections.deque(maxlen=queue_size * len(self.camera_ids))
        self._frame_wake: queue.SimpleQueue = queue.SimpleQueue()
        self._frame_seq = dict.fromkeys(self.camera_ids, 0)
        self._dropped = dict.fromkeys(self.camera_ids, 0)
        self._written_frames = dict.fromkeys(self.camera_ids, 0)
        self._live: LiveView | None = None
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._warned_backpressure = False
        self._mot_files: dict[str, _AppendFile] = {}
        self._events_file: _AppendFile | None = None
        self._video_paths: dict[str, Path] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Create ``out_dir``, open the text files, start the writer threads and the live view.

        Existing files of the same names in ``out_dir`` are replaced (truncated), as a re-run expects.

        Raises:
            UserError: the folder or files cannot be created, or the live view cannot bind its port.
        """
        if self._started:
            return
        try:
            if self.mot or self.events or self.video:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.mot:
                for cam in self.camera_ids:
                    self._mot_files[cam] = _AppendFile(self.out_dir / f"{self._names[cam]}.txt")
            if self.events:
                self._events_file = _AppendFile(self.out_dir / "events.jsonl")
        except OSError as exc:
            self._close_text_files(sync=False)
            raise UserError(f"output folder {self.out_dir} cannot be written: {exc.strerror or exc}") from None
        if self.http:
            self._live = LiveView(self.camera_ids, self.http_host, self.http_port, self.http_token, *self._http_basic)
            try:
                self._live.start()
            except UserError:
                self._close_text_files(sync=False)
                self._live = None
                raise
        self._started = True
        self._threads = [threading.Thread(target=self._text_loop_guarded, name="mctrack-sinks-text", daemon=True)]
        if self.video or self.http:
            self._threads.append(threading.Thread(target=self._frame_loop, name="mctrack-sinks-frames", daemon=True))
        for t in self._threads:
            t.start()
        atexit.register(self.close)

    def submit(self, results: list[CameraResult], stats: list[CameraStats]) -> None:
        """Hand over one tick. Returns in microseconds (copies the small track arrays, never images).

        Raises:
            UserError: an earlier write failed (the message names the file and the reason).
            ValueError: a result names a camera not given to the constructor.
            RuntimeError: ``start`` was not called.
        """
        if self.error is not None:
            raise self.error
        if self._closed:
            return
        if not self._started:
            raise RuntimeError("Sinks.submit called before start()")
        want_frames = self.video or self.http
        active: dict[str, int] = {}
        for res in results:
            cam = res.camera_id
            if cam not in self._frame_seq:
                raise ValueError(f"unknown camera {cam!r} (known: {', '.join(self.camera_ids)})")
            rows = _snapshot(res.tracks, self.show_ids)
            active[cam] = int(np.count_nonzero(rows.confirmed))
            ts = float(res.frame.timestamp)
            self._text_q.put(_TextItem(cam, int(res.frame.index), ts, rows))
            if want_frames and res.frame.image is not None:
                self._frame_seq[cam] += 1
                self._frames.append(_FrameJob(cam, self._frame_seq[cam], ts, res.frame.image, rows))
        if want_frames and results and self._frame_wake.qsize() < 2:  # the frame thread drains every job per wake:
            self._frame_wake.put(None)  # a token or two pending is enough, and they cannot pile up while it is stuck
        if self._live is not None:
            self._live.update_stats(stats, active, self._dropped, self.behind)
        if self._text_q.qsize() > TEXT_HIGH_WATER:
            self._wait_for_text()

    def submit_events(self, events: list[dict]) -> None:
        """Queue extra events (dicts with at least ``type`` and ``time``) for ``events.jsonl``, as given.

        They are serialised now (numpy scalars and arrays become numbers and lists; anything else JSON
        cannot hold becomes its string) and written by the text thread after everything submitted before.
        Nothing is queued when events are off.

        Raises:
            UserError: an earlier write failed.
            RuntimeError: ``start`` was not called.
        """
        if self.error is not None:
            raise self.error
        if self._closed or not self.events or not events:
            return
        if not self._started:
            raise RuntimeError("Sinks.submit_events called before start()")
        self._text_q.put(_EventLines("".join(json.dumps(e, default=_json_default) + "\n" for e in events)))

    def _wait_for_text(self) -> None:
        if not self._warned_backpressure:
            log.warning("the output writer is %d ticks behind (slow disk?); waiting for it so no rows are lost",
                        self._text_q.qsize())
            self._warned_backpressure = True
        while (self._text_q.qsize() > TEXT_HIGH_WATER // 2 and self.error is None
               and self._threads and self._threads[0].is_alive()):
            time.sleep(0.005)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Drain both queues, write shutdown events, fsync and close every file, stop the live view.

        Idempotent and safe to call from a signal handler or ``finally``; never raises (a failure is
        logged and stored in ``error``). Waits for the frame thread to encode what is queued (at most
        ``queue_size`` ticks; bounded by a 60 s timeout).
        """
        # Non-blocking: a signal handler that interrupts a close() in progress must not deadlock on it.
        if not self._close_lock.acquire(blocking=False):
            return
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._started:
            self._text_q.put(_STOP)
            self._frame_wake.put(_STOP)
            for t in self._threads:
                t.join(timeout=_JOIN_TIMEOUT_S)
                if t.is_alive():
                    log.error("output thread %s did not finish within %.0f s; outputs may be incomplete",
                              t.name, _JOIN_TIMEOUT_S)
        if self._live is not None:
            self._live.close()

    def __enter__(self) -> Sinks:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reporting -------------------------------------------------------------------------------

    def paths(self) -> dict[str, Path]:
        """What was written: ``mot:<camera>``, ``events``, ``video:<camera>`` -> path (existing files only)."""
        out: dict[str, Path] = {}
        if self.mot:
            for cam in self.camera_ids:
                out[f"mot:{cam}"] = self.out_dir / f"{self._names[cam]}.txt"
        if self.events:
            out["events"] = self.out_dir / "events.jsonl"
        for cam, p in list(self._video_paths.items()):  # the frame thread may add one meanwhile
            out[f"video:{cam}"] = p
        return {k: p for k, p in out.items() if p.exists()}

    @property
    def url(self) -> str | None:
        """The live view's URL (``http://host:port/``) while it is serving, else None."""
        return self._live.url if self._live is not None else None

    @property
    def dropped_video_frames(self) -> int:
        return sum(self._dropped.values())

    @property
    def dropped_by_camera(self) -> dict[str, int]:
        return dict(self._dropped)

    @property
    def behind(self) -> bool:
        return (len(self._frames) * 2 > (self._frames.maxlen or 0)
                or self._text_q.qsize() * 2 > TEXT_HIGH_WATER)

    # -- text thread -----------------------------------------------------------------------------

    def _fail(self, path: Path | str, exc: BaseException) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        err = UserError(f"output {path} cannot be written: {reason}")
        if self.error is None:
            self.error = err
            log.error("%s", err)

    def _text_loop(self) -> None:
        states = {cam: _CameraText() for cam in self.camera_ids}
        stop = False
        while not stop:
            try:
                first = self._text_q.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._text_q.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in batch):
                stop = True
                batch = batch[:next(i for i, item in enumerate(batch) if item is _STOP)]
            if self.error is None:
                self._write_text(batch, states)
        if self.error is None:
            self._write_text([], states, shutdown=True)
        self._close_text_files(sync=self.error is None)

    def _text_loop_guarded(self) -> None:
        try:
            self._text_loop()
        except Exception as exc:  # a bug, not a disk error: still never silent
            log.exception("output writer failed")
            self._fail(self.out_dir, exc)
            self._close_text_files(sync=False)

    def _write_text(self, batch: list[_TextItem | _EventLines], states: dict[str, _CameraText],
                    shutdown: bool = False) -> None:
        mot: dict[str, list[str]] = collections.defaultdict(list)
        events: list[str] = []
        for item in batch:
            if isinstance(item, _EventLines):
                events.append(item.text)
                continue
            if self.mot:
                mot[item.camera_id].append(mot_lines(item.frame_index, item.rows))
            ev = self._events_for(item, states[item.camera_id])
            if self.events:
                events.extend(ev)
        if shutdown and self.events:
            for cam in self.camera_ids:
                st = states[cam]
                for tid in sorted(st.active):
                    events.append(self._event("track_ended", cam, st.last_time, st.last_frame, tid,
                                              st.active[tid], reason="shutdown"))
        target: Path | str = self.out_dir
        try:
            for cam, chunks in mot.items():
                f = self._mot_files[cam]
                target = f.path
                f.write("".join(chunks))
            if self._events_file is not None:
                target = self._events_file.path
                self._events_file.write("".join(events))
            for f in [*self._mot_files.values(), *([self._events_file] if self._events_file else [])]:
                target = f.path
                f.check()
        except OSError as exc:
            self._fail(target, exc)

    @staticmethod
    def _event(kind: str, cam: str, ts: float, frame: int, tid: int, st: _TrackState, **extra) -> str:
        obj = {"type": kind, "camera": cam, "time": round(ts, 6), "frame": frame, "track_id": tid,
               "identity": st.identity, "global_id": st.global_id}
        if kind == "track_ended":
            obj["last_seen_time"] = None if st.last_seen_time is None else round(st.last_seen_time, 6)
            obj["last_seen_frame"] = st.last_seen_frame
        obj.update(extra)
        return json.dumps(obj) + "\n"

    def _events_for(self, item: _TextItem, st: _CameraText) -> list[str]:
        """Update the camera's track/identity state with one tick; return its event lines."""
        rows, cam, ts, fi = item.rows, item.camera_id, item.timestamp, item.frame_index
        st.last_time, st.last_frame = ts, fi
        conf = np.flatnonzero(rows.confirmed)
        current = {int(rows.track_ids[i]): i for i in conf}
        out: list[str] = []
        for tid in sorted(set(st.active) - set(current)):
            out.append(self._event("track_ended", cam, ts, fi, tid, st.active.pop(tid), reason="removed"))
            st.seen.pop(("local", tid), None)  # local ids are never reused: forget it with its track
        if ts - st.last_prune > 60.0:  # bounded memory: identities unseen here for SEEN_RETENTION are forgotten
            st.last_prune = ts
            for key in [k for k, t in st.seen.items() if ts - t > SEEN_RETENTION]:
                del st.seen[key]
        started: list[int] = []
        seen: list[tuple[int, _TrackState]] = []
        for tid in sorted(current):
            i = current[tid]
            state = st.active.get(tid)
            if state is None:
                state = st.active[tid] = _TrackState(int(rows.identity[i]), int(rows.global_ids[i]))
                started.append(tid)
            state.identity, state.global_id = int(rows.identity[i]), int(rows.global_ids[i])
            if rows.det_index[i] >= 0:
                state.last_seen_time, state.last_seen_frame = ts, fi
                key = ("global" if state.global_id >= 0 and self.show_ids != "local" else "local", state.identity)
                if key not in st.seen:
                    seen.append((tid, state))
                st.seen[key] = ts
        out.extend(self._event("track_started", cam, ts, fi, tid, st.active[tid]) for tid in started)
        out.extend(self._event("identity_seen", cam, ts, fi, tid, s) for tid, s in seen)
        return out

    def _close_text_files(self, sync: bool) -> None:
        files = [*self._mot_files.values(), *([self._events_file] if self._events_file else [])]
        for f in files:
            try:
                f.close(sync=sync)
            except OSError as exc:
                self._fail(f.path, exc)

    # -- frame thread ----------------------------------------------------------------------------

    def _frame_loop(self) -> None:
        trails: dict[str, dict[int, collections.deque]] = {cam: {} for cam in self.camera_ids}
        last_seq = dict.fromkeys(self.camera_ids, 0)
        writers: dict[str, cv2.VideoWriter] = {}
        sizes: dict[str, tuple[int, int]] = {}
        next_check = time.monotonic() + _VIDEO_CHECK_S
        stop = False
        try:
            while True:
                try:
                    tok = self._frame_wake.get(timeout=0.5)
                    stop = stop or tok is _STOP
                    while True:
                        if self._frame_wake.get_nowait() is _STOP:
                            stop = True
                except queue.Empty:
                    pass
                while True:
                    try:
                        job = self._frames.popleft()
                    except IndexError:
                        break
                    cam = job.camera_id
                    self._dropped[cam] += job.seq - last_seq[cam] - 1
                    last_seq[cam] = job.seq
                    if self.error is not None:
                        continue
                    self._render(job, trails[cam], writers, sizes)
                    if self.video and time.monotonic() >= next_check:
                        next_check = time.monotonic() + _VIDEO_CHECK_S
                        for c, p in self._video_paths.items():
                            if c in writers and not p.exists():
                                self._fail(p, OSError(errno.ENOENT, "the file was deleted while running "
                                                                    "(was the output folder removed?)"))
                if stop:
                    break
        except Exception as exc:  # a bug, not a disk error: still never silent
            log.exception("video/live-view writer failed")
            self._fail(self.out_dir, exc)
        finally:
            for w in writers.values():
                w.release()

    def _render(self, job: _FrameJob, trails: dict[int, collections.deque], writers: dict[str, cv2.VideoWriter],
                sizes: dict[str, tuple[int, int]]) -> None:
        cam = job.camera_id
        _update_trails(trails, job.rows, job.timestamp)
        live = self._live is not None and self._live.wants_frames(cam)
        if not (self.video or live):
            return
        image = job.image
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        annotated = annotate_frame(image, job.rows, trails, self.show_ids, f"{cam}  t={job.timestamp:.2f}s")
        if self.video:
            h, w = annotated.shape[:2]
            writer = writers.get(cam)
            if writer is None:
                path = self.out_dir / f"{self._names[cam]}.mp4"
                fps = float(self.video_fps.get(cam) or DEFAULT_VIDEO_FPS)
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not writer.isOpened():
                    self._fail(path, OSError(errno.EIO, "cannot open the video writer (mp4v); "
                                                        "does the folder exist and is the codec available?"))
                    return
                writers[cam], sizes[cam] = writer, (w, h)
                self._video_paths[cam] = path
            if (w, h) != sizes[cam]:  # a camera that reconnected at another resolution
                annotated = cv2.resize(annotated, sizes[cam])
            writer.write(annotated)
            self._written_frames[cam] += 1
        if live:
            self._live.publish_frame(cam, annotated)

