"""``Sinks``: every output of a live run behind two writer threads, fed once per tick by the pipeline.

The pipeline calls ``Sinks.submit`` once per tick with every camera's result; all file I/O,
annotation, video encoding and JPEG encoding happen in two daemon threads (and the live view's
request threads), never in the caller's. The outputs themselves are small classes with one job each
(``base.TextOutput`` / ``base.FrameOutput``): ``mot.MotOutput`` (``<camera>.txt``),
``events.EventOutput`` (``events.jsonl``), ``video.VideoOutput`` (``<camera>.mp4``) and
``live.LiveOutput`` (the live view) and ``console.ConsoleOutput`` (the identity console's sightings
and thumbnails, fed raw frames on the frame thread).

Queues and what is dropped:

- **Text** (MOT rows and events) goes through an unbounded ``queue.SimpleQueue`` of small
  per-tick snapshots (the track arrays, never images: a few hundred bytes per camera), so text
  is never dropped and ``submit`` does not wait for the disk. Should the writer fall more than
  ``TEXT_HIGH_WATER`` ticks behind (a stalled disk), ``submit`` waits for it: losing rows or
  growing memory without bound would be worse than slowing the loop, and it is logged.
- **Frames** (for the annotated video and the live view) go through a ``deque`` bounded to
  ``output.queue_size`` ticks; when it is full the *oldest* pending frame is discarded (the live
  view stays current), counted per camera in ``dropped_video_frames``. A video that lost frames is
  shorter than the run (frames are written at a constant frame rate).

``submit`` only appends to these (no lock the writer threads hold), so ``close`` can be
called from a signal-handling path even when the signal interrupted ``submit``.

Files under ``output.dir`` (camera ids are made file-name safe: characters other than letters,
digits, ``.``, ``_`` and ``-`` become ``_``): ``<camera>.txt`` MOTChallenge rows
``frame,id,left,top,width,height,score,-1,-1,-1`` for confirmed tracks matched to a detection in
that frame, written in whole lines (a failed write is truncated back to the last whole line;
``close`` fsyncs); ``events.jsonl`` (see ``tracker.io.sinks.events``); ``<camera>.mp4``.

Disk errors (disk full, output folder removed) are logged once, stored in ``error`` (a
``UserError``), and raised by the next ``submit`` so the pipeline stops cleanly.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import queue
import threading
import time
from pathlib import Path

from tracker.config import OutputConfig
from tracker.errors import UserError
from tracker.io.sinks.base import FrameOutput, TextOutput
from tracker.io.sinks.events import EventOutput
from tracker.io.sinks.mot import MotOutput
from tracker.io.sinks.records import (
    SHOW_IDS,
    CameraResult,
    CameraStats,
    EventLines,
    FrameJob,
    TextItem,
    file_names,
    json_default,
    snapshot,
)

log = logging.getLogger("tracker.io.sinks")

TEXT_HIGH_WATER = 10_000
"""Ticks of text the writer may fall behind before ``submit`` waits (about 5 min at 30 ticks/s)."""
_STOP = object()
_JOIN_TIMEOUT_S = 60.0
_VIDEO_CHECK_S = 1.0


class Sinks:
    """Every output of a live run, fed once per tick by the pipeline.

    Args:
        output: the run's ``output`` section (folder, which outputs, live view address and credentials,
            ``queue_size``: ticks of frames the frame thread may fall behind before the oldest are dropped).
        camera_ids: every camera that may appear in ``submit``.
        video_fps: camera -> frame rate of its video (default 10).
        show_ids: identity shown in files and labels: ``global_or_local`` (global id when resolved,
            else the local track id, in files and labels alike), ``local`` (always the local id),
            ``both`` (files as ``global_or_local``, labels ``global (local)``).
        console: a ``tracker.io.console.IdentityConsole`` to feed and serve with the live view
            (``output.http`` and ``output.console``), or None.
        provisional: events of a track without a global id yet carry ``"provisional": true`` (fleet edges,
            where global ids come from the identity service).

    Attributes:
        error: the ``UserError`` that stopped the outputs, or None.
        dropped_video_frames: frames skipped by the video/live-view path so far (exact after ``close``).
        behind: True while a queue is over half full (the pipeline logs "sinks are falling behind").
    """

    def __init__(self, output: OutputConfig, camera_ids: list[str], *, video_fps: dict[str, float] | None = None,
                 show_ids: str = "global_or_local", console=None, provisional: bool = False):
        if show_ids not in SHOW_IDS:
            raise UserError(f"show_ids must be one of {', '.join(SHOW_IDS)}, got {show_ids!r}")
        if output.queue_size < 1:
            raise UserError(f"queue_size must be at least 1, got {output.queue_size}")
        if bool(output.http_user) != bool(output.http_password):
            raise UserError("output.http_user and output.http_password go together: set both or neither")
        if len(set(camera_ids)) != len(camera_ids):
            raise UserError(f"camera ids must be unique, got {camera_ids}")
        self.cfg = output
        self.out_dir = Path(output.dir)
        self.camera_ids = list(camera_ids)
        self.show_ids = show_ids
        self.error: UserError | None = None
        names = file_names(self.camera_ids)
        self.text_outputs: list[TextOutput] = []
        if output.mot:
            self.text_outputs.append(MotOutput(self.out_dir, names, output.mot_delay))
        self.events_output: EventOutput | None = None
        if output.events:
            self.events_output = EventOutput(self.out_dir / "events.jsonl", self.camera_ids, show_ids == "local",
                                             provisional)
            self.text_outputs.append(self.events_output)
        self.video_output = None
        if output.video:  # OpenCV is imported only by the outputs that draw (text outputs need numpy alone)
            from tracker.io.sinks.video import VideoOutput

            self.video_output = VideoOutput(self.out_dir, names, video_fps)
        self.live_output = None
        self.frame_outputs: list[FrameOutput] = [self.video_output] if self.video_output else []
        self.console = console if output.http else None
        self.console_output = None
        if self.console is not None:
            from tracker.io.sinks.console import ConsoleOutput

            self.console_output = ConsoleOutput(self.console, output.console_thumbs_per_frame)
            self.frame_outputs.append(self.console_output)

        self._text_q: queue.SimpleQueue = queue.SimpleQueue()
        self._frames: collections.deque[FrameJob] = collections.deque(
            maxlen=output.queue_size * len(self.camera_ids))
        self._frame_wake: queue.SimpleQueue = queue.SimpleQueue()
        self._frame_seq = dict.fromkeys(self.camera_ids, 0)
        self._dropped = dict.fromkeys(self.camera_ids, 0)
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._warned_backpressure = False
        self._opened: list[TextOutput] = []

    @property
    def wants_frames(self) -> bool:
        return bool(self.cfg.video or self.cfg.http)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Create ``output.dir``, open the text files, start the writer threads and the live view.

        Existing files of the same names in the folder are replaced (truncated), as a re-run expects.

        Raises:
            UserError: the folder or files cannot be created, or the live view cannot bind its port.
        """
        if self._started:
            return
        try:
            if self.cfg.mot or self.cfg.events or self.cfg.video:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            for out in self.text_outputs:
                out.open()
                self._opened.append(out)
        except OSError as exc:
            self._close_text(sync=False)
            raise UserError(f"output folder {self.out_dir} cannot be written: {exc.strerror or exc}") from None
        if self.cfg.http:
            from tracker.io.sinks.live import LiveOutput

            if self.console_output is not None:
                self.console_output.start()
            live = LiveOutput(self.cfg, self.camera_ids, self.console)
            try:
                live.start()
            except UserError:
                if self.console_output is not None:
                    self.console_output.close()
                self._close_text(sync=False)
                raise
            self.live_output = live
            self.frame_outputs.append(live)
        self._started = True
        self._threads = [threading.Thread(target=self._text_loop_guarded, name="mctrack-sinks-text", daemon=True)]
        if self.wants_frames:
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
        want_frames = self.wants_frames
        active: dict[str, int] = {}
        for res in results:
            cam = res.camera_id
            if cam not in self._frame_seq:
                raise ValueError(f"unknown camera {cam!r} (known: {', '.join(self.camera_ids)})")
            rows = snapshot(res.tracks, self.show_ids)
            active[cam] = int(rows.confirmed.sum())
            ts = float(res.frame.timestamp)
            self._text_q.put(TextItem(cam, int(res.frame.index), ts, rows))
            if want_frames and res.frame.image is not None:
                self._frame_seq[cam] += 1
                self._frames.append(FrameJob(cam, self._frame_seq[cam], ts, res.frame.image, rows))
        if want_frames and results and self._frame_wake.qsize() < 2:  # the frame thread drains every job per wake:
            self._frame_wake.put(None)  # a token or two pending is enough, and they cannot pile up while it is stuck
        if self.live_output is not None:
            self.live_output.view.update_stats(stats, active, self._dropped, self.behind)
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
        if self.console is not None and not self._closed and events:
            self.console.apply_events(events)  # corrections reach open pages as they happen
        if self._closed or self.events_output is None or not events:
            return
        if not self._started:
            raise RuntimeError("Sinks.submit_events called before start()")
        self._text_q.put(EventLines("".join(json.dumps(e, default=json_default) + "\n" for e in events)))

    def forget_identity(self, gid: int) -> None:
        """An identity was purged from the registry: drop it from the console (memory, store, open pages)."""
        if self.console is not None:
            self.console.forget(gid)

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
        if self.console_output is not None and self.live_output is not None:  # started with the live view
            try:
                self.console_output.close()
            except Exception:  # noqa: BLE001 - closing must go on: the live view still has to stop
                log.exception("identity console: closing failed")
        if self.live_output is not None:
            self.live_output.close()

    def __enter__(self) -> Sinks:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reporting -------------------------------------------------------------------------------

    def paths(self) -> dict[str, Path]:
        """What was written: ``mot:<camera>``, ``events``, ``video:<camera>`` -> path (existing files only)."""
        out: dict[str, Path] = {}
        for o in [*self.text_outputs, *self.frame_outputs]:
            out.update(o.paths())
        return {k: p for k, p in out.items() if p.exists()}

    @property
    def url(self) -> str | None:
        """The live view's URL (``http://host:port/``) while it is serving, else None."""
        return self.live_output.view.url if self.live_output is not None else None

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
                self._write_text(batch)
        if self.error is None:
            self._write_text([], shutdown=True)
        self._close_text(sync=self.error is None)

    def _text_loop_guarded(self) -> None:
        try:
            self._text_loop()
        except Exception as exc:  # a bug, not a disk error: still never silent
            log.exception("output writer failed")
            self._fail(self.out_dir, exc)
            self._close_text(sync=False)

    def _write_text(self, batch: list, shutdown: bool = False) -> None:
        for out in self.text_outputs:
            try:
                out.write(batch, shutdown)
            except OSError as exc:
                self._fail(exc.filename or self.out_dir, exc)
                return

    def _close_text(self, sync: bool) -> None:
        for out in self._opened:
            try:
                out.close(sync=sync)
            except OSError as exc:
                self._fail(exc.filename or self.out_dir, exc)
        self._opened = []

    # -- frame thread ----------------------------------------------------------------------------

    def _frame_loop(self) -> None:
        from tracker.io.sinks.annotate import annotate_frame, update_trails

        trails: dict[str, dict[int, collections.deque]] = {cam: {} for cam in self.camera_ids}
        last_seq = dict.fromkeys(self.camera_ids, 0)
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
                    self._render(job, trails[cam], annotate_frame, update_trails)
                    if self.video_output is not None and time.monotonic() >= next_check:
                        next_check = time.monotonic() + _VIDEO_CHECK_S
                        try:
                            self.video_output.check()
                        except OSError as exc:
                            self._fail(exc.filename or self.out_dir, exc)
                if stop:
                    break
        except Exception as exc:  # a bug, not a disk error: still never silent
            log.exception("video/live-view writer failed")
            self._fail(self.out_dir, exc)
        finally:
            if self.video_output is not None:
                self.video_output.close()

    def _render(self, job: FrameJob, trails: dict[int, collections.deque], annotate_frame, update_trails) -> None:
        import cv2

        cam = job.camera_id
        update_trails(trails, job.rows, job.timestamp)
        if self.console_output is not None:
            self.console_output.consume(job)
        targets = [o for o in self.frame_outputs if o.wants(cam)]
        if not targets:
            return
        image = job.image
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        annotated = annotate_frame(image, job.rows, trails, self.show_ids, f"{cam}  t={job.timestamp:.2f}s")
        for out in targets:
            try:
                out.write(cam, job.timestamp, annotated)
            except OSError as exc:
                self._fail(exc.filename or self.out_dir, exc)
                return
