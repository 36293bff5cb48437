"""The live multi-camera loop: batch frames across cameras, detect, embed, track, hand to sinks.

One tick:

1. the batcher takes at most one frame per camera (the newest for live sources, the next
   for files), waiting at most ``pipeline.max_wait`` for stragglers;
2. detections: one batched detector call for the cameras without a detection file;
3. one batched ReID call over every person crop of every camera, split back per camera;
4. each camera's ``CameraTracker`` updates on its own detections and embeddings; with
   ``multicam.enabled`` the identity registry then gives confirmed tracks global ids;
   with ``fleet.enabled`` the tracks are published to the identity service instead
   (``tracker.fleet.edge``) and the global ids it sent back so far are applied;
5. results go to the sinks' queue (files, events, video, live view) without blocking.

Files that are not paced are merged by timestamp, so cameras at different frame rates
(7 and 3.5 fps, say) stay aligned in stream time and no frame is ever dropped. Live
sources (and paced files) are batched by wall-clock arrival.

With ``multicam.store`` the registry is restored from that SQLite file at start, saved to it
every ``multicam.save_interval`` seconds of wall time (snapshot on the loop's thread, written on
a background thread) and at every shutdown (end of the sources, ``stop()``, an error), so a
restart keeps identities (``tracker.multicam.store``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker.api import MultiCameraTracker
from tracker.config import RunConfig, check_run_config
from tracker.core.tracker import CameraTracker
from tracker.core.types import Detections

log = logging.getLogger(__name__)
_FINAL_SAVE_WAIT_S = 60.0  # longest wait at shutdown for a background registry save still being written


@dataclass
class _Camera:
    """Per-camera state owned by the loop."""

    cfg: object
    reader: object
    tracker: CameraTracker
    dets_by_frame: dict | None = None
    pending: object = None  # one-frame lookahead (time-merge mode)
    finished: bool = False
    frames_done: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=512))
    tick_times: deque = field(default_factory=lambda: deque(maxlen=64))


def _drop_outside(dets: dict, size: tuple[int, int], camera_id: str) -> dict:
    """Drop detection-file boxes lying entirely outside the (width, height) frame; log how many."""
    w, h = size
    out, dropped = {}, 0
    for f, (tlbr, scores) in dets.items():
        inside = (tlbr[:, 0] < w) & (tlbr[:, 1] < h) & (tlbr[:, 2] > 0) & (tlbr[:, 3] > 0)
        dropped += int((~inside).sum())
        out[f] = (tlbr[inside], scores[inside])
    if dropped:
        log.warning("camera %s: dropped %d detections outside the %dx%d frame", camera_id, dropped, w, h)
    return out


def registry_store_path(cfg: RunConfig) -> Path | None:
    """Where ``multicam.store`` points (relative paths are under ``output.dir``); None when unset."""
    if not cfg.multicam.store:
        return None
    path = Path(cfg.multicam.store).expanduser()
    return path if path.is_absolute() else Path(cfg.output.dir) / path


class Pipeline:
    """Build every component of a run from its config; ``run()`` loops until the sources end or ``stop()``.

    Raises:
        UserError: for a bad config, a missing model or detection file, or a file source that
            cannot be opened (live sources that cannot be reached are retried in the background
            and reported in the status, so the other cameras keep running).
    """

    def __init__(self, cfg: RunConfig, detector=None, encoder=None):
        """``detector`` / ``encoder`` replace the configured models (tests, custom models): any object
        with ``detect(frames) -> [FrameDetections]`` / ``embed(frames, boxes) -> [embeddings]``."""
        from streams.timeline import TimelineReader
        from tracker.io.motio import read_mot_detections
        from tracker.io.sinks import Sinks

        check_run_config(cfg)
        self.cfg = cfg
        self._stop = threading.Event()
        self.lingering = threading.Event()  # set while the live view lingers after the sources ended
        self.saver = None  # registry_store.StoreSaver when multicam.store is set
        self._registry_now = 0.0  # the registry's clock: the latest tick's time
        self._tick_events: list[dict] = []  # the registry's corrections of the current tick
        self._restored = 0
        self.fleet = None  # tracker.fleet.edge.FleetEdge with fleet.enabled
        if cfg.fleet.enabled:  # first: wrong broker credentials are reported before anything slow
            from tracker.fleet.edge import FleetEdge

            self.fleet = FleetEdge(cfg.fleet, [c.id for c in cfg.cameras])
        # Per-camera trackers, batched ReID and the identity registry: the same object library users drive.
        self.tracking = MultiCameraTracker([c.id for c in cfg.cameras], cfg.tracker, cfg.multicam,
                                           identities=cfg.multicam.enabled)
        self.registry = self.tracking.registry
        if cfg.multicam.enabled:
            if cfg.multicam.store:
                self._restore_registry()  # before the sources and models: a bad store is reported at once
        elif cfg.multicam.store:
            log.warning("multicam.store is set but multicam.enabled is false: no identities are saved or restored")
        self.cameras: dict[str, _Camera] = {}
        clock_origin = time.monotonic()  # one time base for all live cameras
        try:
            for cam in cfg.cameras:
                dets = read_mot_detections(cam.detections) if cam.detections else None
                if cam.source:
                    from streams import SourceReader

                    reader = SourceReader(cam.id, cam.source, fps=cam.fps, pace=cam.pace, queue_size=cam.queue_size,
                                          transport=cam.transport, open_timeout=cam.open_timeout,
                                          read_timeout=cam.read_timeout, clock_origin=clock_origin)
                else:  # detections without pictures: frames 1..last detection frame, motion only
                    reader = TimelineReader(cam.id, cam.fps, max(dets) if dets else 0)
                reader.open()
                if dets and reader.frame_size:
                    dets = _drop_outside(dets, reader.frame_size, cam.id)
                self.cameras[cam.id] = _Camera(cam, reader, self.tracking.trackers[cam.id], dets)
            # Models load after the sources opened, so a bad camera path is reported before a slow model load.
            self._load_models(cfg, detector, encoder)
        except BaseException:
            self.close_sources()
            if self.fleet is not None:
                self.fleet.close(timeout=0.0)
            raise
        self.time_merge = not any(c.reader.live for c in self.cameras.values())
        if self.fleet is not None and not self.time_merge:  # live timestamps count from clock_origin: send Unix time
            self.fleet.epoch = time.time() - (time.monotonic() - clock_origin)
        out = cfg.output
        fps = {cid: (c.reader.nominal_fps or 10.0) for cid, c in self.cameras.items()}
        self.sinks = Sinks(out, list(self.cameras), video_fps=fps, console=self._make_console(),
                           provisional=self.fleet is not None)
        self.ticks = 0
        self.frames = 0
        self.stage_seconds = {"detect": 0.0, "reid": 0.0, "track": 0.0}
        self._behind_logged = 0.0

    def _make_console(self):
        """The identity console of the live view (``output.http`` and ``output.console``), or None."""
        out = self.cfg.output
        if not (out.http and out.console):
            return None
        from tracker.io.console import IdentityConsole, console_store_path

        if self.registry is None:
            log.info("identity console: multicam.enabled is false, so there are no global identities to show")
        console = IdentityConsole(list(self.cameras), site=self.cfg.multicam,
                                  store=console_store_path(registry_store_path(self.cfg) if self.registry else None),
                                  retention=self.cfg.multicam.memory_seconds,
                                  max_identities=out.console_max_identities, encoder=self.encoder)
        console.registry = self.registry  # read only for its optional learned_topology (#12)
        return console

    def _load_models(self, cfg: RunConfig, detector, encoder) -> None:
        from tracker.models.lookup import resolve_model

        model_dir = cfg.pipeline.model_dir
        needs_detector = any(c.detections is None for c in cfg.cameras)
        self.detector = detector
        if needs_detector and detector is None:
            from tracker.models.detection import Detector

            d = cfg.detector
            self.detector = Detector(resolve_model(d.model, model_dir), backend=d.backend, providers=d.providers,
                                     cpu_threads=d.cpu_threads, conf=d.conf, iou=d.iou, imgsz=d.imgsz or None)
        self.encoder = self.tracking.encoder = encoder
        if cfg.reid.enabled and encoder is None:
            from tracker.models.reid import ReIDEncoder

            r = cfg.reid
            self.encoder = ReIDEncoder(resolve_model(r.model, model_dir), providers=r.providers,
                                       cpu_threads=r.cpu_threads, max_batch=r.max_batch)
            self.tracking.encoder = self.encoder

    # ------------------------------------------------------------------ registry store
    def _restore_registry(self) -> None:
        """Load ``multicam.store`` into the fresh registry; the time the tracker was down ages everyone."""
        from tracker.multicam.store import StoreSaver, age_state, format_duration, load_registry

        path = registry_store_path(self.cfg)
        self.saver = StoreSaver(path)
        loaded = load_registry(path)
        if loaded is None:
            log.info("registry: no saved identities in %s yet; saving there", path)
            return
        state, saved_at = loaded
        self._restored = self.registry.import_state(age_state(state, saved_at), now=0.0)
        log.info("registry: restored %d identities from %s (saved %s ago)", self._restored, path,
                 format_duration(time.time() - saved_at))
        expired = len(state["identities"]) - self._restored
        if expired:  # retention: remove them from the file now, not at the first save
            log.info("registry: %d saved identities unseen for more than multicam.memory_seconds (%g s) dropped",
                     expired, self.cfg.multicam.memory_seconds)
            self._save_registry(final=True)

    def _save_registry(self, final: bool = False) -> None:
        """Snapshot the registry and save it: in the background, or (``final``) here after any running save.

        Never raises: a failure is logged and kept in ``self.saver.error``.
        """
        saver = self.saver
        try:
            if final and not saver.wait(_FINAL_SAVE_WAIT_S):
                saver.error = f"a save to {saver.path} was still running after {_FINAL_SAVE_WAIT_S:.0f} s"
                log.error("registry: %s; identities were not saved at shutdown", saver.error)
                return
            if not final and saver.busy():
                return  # the previous save is still being written: the next interval takes a newer snapshot
            for gid in saver.take_purged():  # purged from the store (run.py registry purge): forget them too
                if self.registry.purge(gid):
                    log.info("registry: identity %d was purged from %s; forgotten", gid, saver.path)
                self.sinks.forget_identity(gid)  # the identity console drops its card and thumbnails
            state = self.registry.export_state(self._registry_now)
            if final:
                saver.save(state)
            else:
                saver.save_in_background(state)
        except Exception as exc:  # noqa: BLE001 - saving must not stop the tracker nor mask another error
            log.debug("registry save failed", exc_info=True)
            saver.error = f"registry not saved to {saver.path}: {type(exc).__name__}: {exc}"
            log.error("%s", saver.error)

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Ask the loop to finish after the current tick (safe from a signal handler)."""
        self._stop.set()

    def close_sources(self) -> None:
        for cam in self.cameras.values():
            try:
                cam.reader.close()
            except Exception:  # closing must not hide the original error
                log.exception("closing camera %s", cam.cfg.id)

    # ------------------------------------------------------------------ batching
    @staticmethod
    def _get(cam: _Camera, timeout: float | None):
        try:
            return cam.reader.get(timeout=timeout)
        except Exception as exc:
            raise RuntimeError(f"camera {cam.cfg.id}: source failed: {type(exc).__name__}: {exc}") from exc

    def _next_batch(self) -> list:
        """At most one frame per camera; [] when every source has finished."""
        from streams import END

        if self.time_merge:
            for cam in self.cameras.values():
                if cam.pending is None and not cam.finished:
                    item = self._get(cam, None)
                    if item is END:
                        cam.finished = True
                    else:
                        cam.pending = item
            ready = [c for c in self.cameras.values() if c.pending is not None]
            if not ready:
                return []
            t0 = min(c.pending.timestamp for c in ready)
            slack = self.cfg.pipeline.max_wait + 1e-6
            batch = []
            for c in ready:
                if c.pending.timestamp <= t0 + slack:
                    batch.append((c, c.pending, time.monotonic()))
                    c.pending = None
            return batch

        batch: dict[str, tuple] = {}
        deadline = None
        while not self._stop.is_set():
            waiting = [c for c in self.cameras.values() if not c.finished and c.cfg.id not in batch]
            if not waiting:
                break
            got = False
            for cam in waiting:
                item = self._get(cam, 0.0)
                if item is END:
                    cam.finished = True
                elif item is not None:
                    batch[cam.cfg.id] = (cam, item, time.monotonic())
                    got = True
            now = time.monotonic()
            if batch and deadline is None:
                deadline = now + self.cfg.pipeline.max_wait
            if deadline is not None and now >= deadline:
                break
            if not got:
                time.sleep(0.002)
        if not batch and all(c.finished for c in self.cameras.values()):
            return []
        return list(batch.values())

    # ------------------------------------------------------------------ one tick
    def _process(self, batch: list) -> list:
        from tracker.io.sinks import CameraResult

        t0 = time.perf_counter()
        frames = [item for _, item, _ in batch]
        per_cam: list[tuple[np.ndarray, np.ndarray]] = [None] * len(batch)  # type: ignore[list-item]
        need = [i for i, (cam, _, _) in enumerate(batch) if cam.dets_by_frame is None]
        if need:
            found = self.detector.detect([frames[i].image for i in need])
            for i, fd in zip(need, found, strict=True):
                per_cam[i] = (fd.tlbr, fd.scores)
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        for i, (cam, frame, _) in enumerate(batch):
            if cam.dets_by_frame is not None:
                per_cam[i] = cam.dets_by_frame.get(frame.index, empty)
        t1 = time.perf_counter()
        dets = {cam.cfg.id: Detections(tlbr, scores, frame.timestamp, None, frame.index)
                for (cam, frame, _), (tlbr, scores) in zip(batch, per_cam, strict=True)}
        images = {cam.cfg.id: frame.image for cam, frame, _ in batch}
        reid_before = self.tracking.reid_seconds
        now = max(f.timestamp for f in frames)
        outputs, embeddings = self.tracking.step(dets, images, now)
        t2 = t1 + (self.tracking.reid_seconds - reid_before)
        if self.fleet is not None:  # the identity service resolves identities; apply what it sent so far
            self.fleet.publish(outputs, embeddings, {c.cfg.id: f.index for c, f, _ in batch})
            outputs = self.fleet.apply(outputs)
        elif self.registry is not None:
            self._registry_now = now
            self._tick_events.extend(self.registry.drain_events())  # corrections, written with this tick
        results = []
        for cam, frame, received in batch:
            capture = getattr(frame, "capture_time", None) or received
            results.append(CameraResult(cam.cfg.id, frame, outputs[cam.cfg.id], capture))
        t3 = time.perf_counter()
        for name, dt in (("detect", t1 - t0), ("reid", t2 - t1), ("track", t3 - t2)):
            self.stage_seconds[name] += dt
        return results

    def _stats(self) -> list:
        from tracker.io.sinks import CameraStats

        stats = []
        for cid, cam in self.cameras.items():
            h = cam.reader.health()
            lat = np.asarray(cam.latencies) * 1000 if cam.latencies else np.zeros(1)
            tt = cam.tick_times
            fps = (len(tt) - 1) / (tt[-1] - tt[0]) if len(tt) > 1 and tt[-1] > tt[0] else 0.0
            stats.append(CameraStats(cid, h.source, fps, h.frames_in, h.frames_dropped, h.reconnects,
                                     h.last_frame_age, float(np.percentile(lat, 50)), float(np.percentile(lat, 95)),
                                     h.state))
        return stats

    def run(self, progress: bool = True, max_ticks: int | None = None) -> dict:
        """Loop until all sources end, ``stop()`` is called or ``max_ticks`` ticks ran.

        Returns a summary: ticks, frames, seconds, per-camera latency p50/p95 (ms), drops, outputs, and
        ``registry``: None without ``multicam.store``, else ``{"store": path, "restored": n, "saved": n
        identities at the last save (None if none succeeded), "error": why the last save failed, or None}``.
        """
        from tracker.offline import progress as progress_bar

        self.sinks.start()
        if self.sinks.url:
            log.info("live view: %s  (metrics: %s/metrics)", self.sinks.url, self.sinks.url.rstrip("/"))
        total = None
        if self.time_merge:
            lengths = [getattr(c.reader, "frame_count", None) for c in self.cameras.values()]
            total = sum(lengths) if all(lengths) else None
        bar = progress_bar(None, total, "frames", progress and self.time_merge)
        t_start = time.monotonic()
        last_status = last_save = t_start
        save_interval = self.cfg.multicam.save_interval if self.saver is not None else 0.0
        try:
            while not self._stop.is_set() and (max_ticks is None or self.ticks < max_ticks):
                batch = self._next_batch()
                if not batch:
                    if all(c.finished for c in self.cameras.values()):
                        break
                    continue
                results = self._process(batch)
                if self.fleet is not None:
                    self.fleet.ended([c.cfg.id for c in self.cameras.values() if c.finished])
                done = time.monotonic()
                for cam, _, _ in batch:
                    cam.frames_done += 1
                    cam.tick_times.append(done)
                for r in results:
                    self.cameras[r.camera_id].latencies.append(done - r.capture_time)
                if self._tick_events:
                    events, self._tick_events = self._tick_events, []
                    self.sinks.submit_events(events)
                self.sinks.submit(results, self._stats())
                self.ticks += 1
                self.frames += len(batch)
                if bar is not None and hasattr(bar, "update"):
                    bar.update(len(batch))
                if self.sinks.behind and done - self._behind_logged > 10.0:
                    log.warning("outputs are falling behind: dropped %d video/live frames so far",
                                self.sinks.dropped_video_frames)
                    self._behind_logged = done
                if save_interval and done - last_save >= save_interval:
                    last_save = done
                    self._save_registry()
                interval = self.cfg.pipeline.status_interval
                if not self.time_merge and interval and done - last_status >= interval:
                    last_status = done
                    log.info("status: %s", "; ".join(
                        f"{s.camera_id} {s.state} {s.fps:.1f} fps, {s.frames_dropped} dropped, "
                        f"p95 {s.latency_p95_ms:.0f} ms" for s in self._stats()))
            self._linger()
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()
            stats = self._stats()
            self.close_sources()
            self.sinks.close()
            if self.fleet is not None:
                self.fleet.close()
            if self.saver is not None:
                self._save_registry(final=True)
        if self.sinks.error is not None:  # close() never raises; an output lost while closing must not pass silently
            raise self.sinks.error
        elapsed = time.monotonic() - t_start
        return {
            "ticks": self.ticks, "frames": self.frames, "seconds": elapsed,
            "cameras": {s.camera_id: {"frames": self.cameras[s.camera_id].frames_done, "dropped": s.frames_dropped,
                                      "reconnects": s.reconnects, "latency_p50_ms": s.latency_p50_ms,
                                      "latency_p95_ms": s.latency_p95_ms} for s in stats},
            "outputs": self.sinks.paths(), "interrupted": self._stop.is_set(), "live": not self.time_merge,
            "stage_ms_per_tick": {k: 1000 * v / max(self.ticks, 1) for k, v in self.stage_seconds.items()},
            "fleet": None if self.fleet is None else self.fleet.stats(),
            "registry": None if self.saver is None else {
                "store": self.saver.path, "restored": self._restored, "saved": self.saver.saved,
                "error": self.saver.error},
        }


    def _linger(self) -> None:
        """``output.http_linger``: keep the live view up after the sources ended, until it elapses or ``stop()``."""
        linger = self.cfg.output.http_linger
        if not linger or self._stop.is_set() or not self.sinks.url:
            return
        if self.saver is not None:
            self._save_registry(final=True)  # what the pages show is in the store (purge finds it)
        log.info("sources ended; the live view stays at %s for %g s (Ctrl-C to quit)", self.sinks.url, linger)
        self.lingering.set()
        self._stop.wait(linger)  # purges meanwhile reach the console through its store; the registry's at the end


def load_run_config(path: str, overrides: list[str] | None = None) -> RunConfig:
    """Load and cross-check a run config (``run.py run --config``)."""
    from tracker.io.config_file import load_yaml

    return load_yaml(path, RunConfig, overrides, check=check_run_config)
