"""Soak run: many frames of several cameras through the real per-tick path; memory and time must stay flat.

Synthetic, no video decoding: each camera has a crowd of people (5-15 visible) who appear, walk
and leave continuously (each visit 2-20 s). People come from a fixed-size population: most visits
are by people seen before (so identities are re-found and their galleries fill up to the cap),
and a share of visits replace a population member by someone never seen (so identities expire).
Each person has a persistent random unit appearance vector, plus a per-visit offset and
per-frame noise. Detections = their boxes with jitter, misses, low-score (occluded) frames and
false positives. Per tick (one frame of every camera, same timestamp, 10 fps by default):

1. each camera's ``CameraTracker.update``;
2. ``IdentityRegistry.update`` once (``multicam.enabled``, default thresholds);
3. ``Sinks.submit`` (MOT rows and events written by the writer thread to a temp folder; video off
   unless ``--video``: then tiny 64x64 frames are annotated and encoded too).

Every ``--sample-every`` ticks: RSS (VmRSS), the median wall and CPU (main thread) time of the
per-tick path (steps 1-3, not the synthesis), stored embeddings (registry galleries + registry
track sums + tracker appearance memories), live tracks and identities. The registry keeps identities for
``memory_seconds`` (300 s), so the first 300 s of stream time are a fill-up by design; the
comparison is first vs last 10 % of the ticks after that warm-up (``--warmup``); the middle 10 %
is shown too, since identity galleries fill over several population lifetimes (bounded by
``gallery_size`` per identity). ``sinks_seen_keys`` (the writer thread's ``identity_seen``
bookkeeping) is read from the thread's frame, a diagnostic only.

    .venv/bin/python bench/soak.py [--frames 100000] [--cameras 4] [--fps 10] [--dim 512]
"""

from __future__ import annotations

import argparse
import gc
import resource
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.frame import Frame  # noqa: E402
from tracker.config import OutputConfig
from tracker.core.config import TrackerConfig  # noqa: E402
from tracker.core.ids import IdAllocator  # noqa: E402
from tracker.core.tracker import CameraTracker  # noqa: E402
from tracker.core.types import Detections  # noqa: E402
from tracker.io.sinks import CameraResult, Sinks  # noqa: E402
from tracker.multicam.config import MulticamConfig
from tracker.multicam.registry import IdentityRegistry  # noqa: E402

WIDTH, HEIGHT = 960, 540


def rss_mb() -> float:
    """Current resident set size in MiB (``VmRSS``; falls back to the peak from ``getrusage``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Population:
    """A fixed number of people (bounded memory); ``new_share`` of visits go to someone never seen before."""

    def __init__(self, rng: np.random.Generator, size: int, dim: int, new_share: float):
        self.rng, self.dim, self.new_share = rng, dim, new_share
        self.appearance = _unit(rng.standard_normal((size, dim)))
        self.visible = np.zeros(size, bool)
        self.people_ever = size

    def enter(self) -> int:
        free = np.flatnonzero(~self.visible)
        slot = int(self.rng.choice(free))
        if self.rng.random() < self.new_share:  # retire this member; a stranger takes the slot
            self.appearance[slot] = _unit(self.rng.standard_normal(self.dim))
            self.people_ever += 1
        self.visible[slot] = True
        return slot

    def leave(self, slot: int) -> None:
        self.visible[slot] = False


@dataclass
class Crowd:
    """The people currently in one camera's view, as arrays (one row per person)."""

    slot: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    start_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # foot point at t0, px
    vel: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # px/s
    height: np.ndarray = field(default_factory=lambda: np.zeros(0))  # px
    t0: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t1: np.ndarray = field(default_factory=lambda: np.zeros(0))
    visit_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))  # per-visit look


class Scene:
    """Synthetic detections and embeddings of one camera, frame by frame."""

    def __init__(self, rng: np.random.Generator, pop: Population, min_people: int = 5, max_people: int = 15,
                 stay: tuple[float, float] = (2.0, 20.0), miss: float = 0.05, occluded: float = 0.05,
                 false_pos: float = 0.1, noise: float = 0.3, visit_noise: float = 0.15):
        self.rng, self.pop = rng, pop
        self.min_people, self.max_people, self.stay = min_people, max_people, stay
        self.miss, self.occluded, self.false_pos = miss, occluded, false_pos
        self.noise, self.visit_noise = noise, visit_noise
        self.rate = (min_people + max_people) / 2 / (sum(stay) / 2)  # arrivals per second for ~10 visible
        self.c = Crowd(visit_offset=np.zeros((0, pop.dim), np.float32))

    def _spawn(self, now: float) -> None:
        rng, dim = self.rng, self.pop.dim
        h = rng.uniform(90, 220)
        speed = rng.uniform(0.3, 1.0) * h  # person heights per second
        angle = rng.uniform(0, 2 * np.pi)
        c = self.c
        c.slot = np.append(c.slot, self.pop.enter())
        c.start_xy = np.vstack([c.start_xy, [rng.uniform(60, WIDTH - 60), rng.uniform(h + 10, HEIGHT - 5)]])
        c.vel = np.vstack([c.vel, [speed * np.cos(angle), 0.3 * speed * np.sin(angle)]])
        c.height = np.append(c.height, h)
        c.t0 = np.append(c.t0, now)
        c.t1 = np.append(c.t1, now + rng.uniform(*self.stay))
        off = rng.standard_normal((1, dim)).astype(np.float32) * (self.visit_noise / np.sqrt(dim))
        c.visit_offset = np.vstack([c.visit_offset, off])

    def step(self, now: float, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 4) tlbr, (N,) scores, (N, D) unit embeddings of this frame."""
        c, rng, dim = self.c, self.rng, self.pop.dim
        gone = c.t1 <= now
        if gone.any():
            for s in c.slot[gone]:
                self.pop.leave(int(s))
            keep = ~gone
            c.slot, c.start_xy, c.vel, c.height = c.slot[keep], c.start_xy[keep], c.vel[keep], c.height[keep]
            c.t0, c.t1, c.visit_offset = c.t0[keep], c.t1[keep], c.visit_offset[keep]
        arrivals = rng.poisson(self.rate * dt)
        while len(c.slot) < self.min_people or (arrivals > 0 and len(c.slot) < self.max_people):
            self._spawn(now)
            arrivals -= 1
        foot = c.start_xy + c.vel * (now - c.t0)[:, None]
        w = 0.4 * c.height
        tlbr = np.column_stack([foot[:, 0] - w / 2, foot[:, 1] - c.height, foot[:, 0] + w / 2, foot[:, 1]])
        tlbr += rng.normal(0, 2.0, tlbr.shape)
        n = len(tlbr)
        scores = rng.uniform(0.65, 0.95, n)
        occl = rng.random(n) < self.occluded
        scores[occl] = rng.uniform(0.15, 0.45, occl.sum())
        inside = (foot[:, 0] > 0) & (foot[:, 0] < WIDTH) & (foot[:, 1] > 0.2 * HEIGHT) & (foot[:, 1] < HEIGHT + 40)
        shown = inside & (rng.random(n) >= self.miss)
        emb = self.pop.appearance[c.slot] + c.visit_offset
        emb = emb + rng.standard_normal(emb.shape).astype(np.float32) * (self.noise / np.sqrt(dim))
        tlbr, scores, emb = tlbr[shown], scores[shown], emb[shown]
        if rng.random() < self.false_pos:
            h = rng.uniform(60, 200)
            x, y = rng.uniform(0, WIDTH), rng.uniform(h, HEIGHT)
            tlbr = np.vstack([tlbr, [x - 0.2 * h, y - h, x + 0.2 * h, y]])
            scores = np.append(scores, rng.uniform(0.3, 0.8))
            emb = np.vstack([emb, rng.standard_normal((1, dim)).astype(np.float32)])
        return tlbr.astype(np.float32), scores.astype(np.float32), _unit(emb.reshape(-1, dim))


def stored_embeddings(trackers: list[CameraTracker], registry: IdentityRegistry) -> int:
    """Embedding vectors held: registry galleries and per-track sums, tracker appearance memories."""
    n = sum(len(i.gallery) for i in registry.identities.values())
    n += sum(t.emb_sum is not None for t in (*registry.tracks.values(), *registry._pending.values()))
    for trk in trackers:
        mem = trk._memory
        if mem is not None:
            n += mem.gallery.shape[0] * mem.gallery.shape[1] if hasattr(mem, "gallery") else mem.features.shape[0]
    return n


def sinks_seen_keys(sinks: Sinks) -> int:
    """Diagnostic: size of the event writer's per-camera ``seen`` sets (``identity_seen`` bookkeeping); -1 when
    events are off. Read without a lock: a size, good enough for a trend."""
    out = sinks.events_output
    if out is None:
        return -1
    return sum(len(s.seen) for s in list(out.states.values()))


def run_soak(frames: int = 100_000, cameras: int = 4, fps: float = 10.0, dim: int = 512, population: int = 300,
             new_share: float = 0.3, sample_every: int = 100, seed: int = 0, video: bool = False,
             tracker_cfg: TrackerConfig | None = None, multicam_cfg: MulticamConfig | None = None,
             out_dir: str | Path | None = None, log=None) -> dict:
    """Run the soak; returns ``{"samples": [dict per sample], "config": {...}, "files_mb": float}``."""
    rng = np.random.default_rng(seed)
    cam_ids = [f"cam{i}" for i in range(cameras)]
    pop = Population(rng, population, dim, new_share)
    scenes = [Scene(np.random.default_rng([seed, i]), pop) for i in range(cameras)]
    trackers = [CameraTracker(tracker_cfg or TrackerConfig(), IdAllocator()) for _ in cam_ids]
    mc = multicam_cfg or MulticamConfig(enabled=True)
    registry = IdentityRegistry(mc)
    ticks = max(1, frames // cameras)
    dt = 1.0 / fps
    image = np.zeros((64, 64, 3), np.uint8)  # tiny frame; only read when video is on
    tmp = tempfile.TemporaryDirectory(prefix="soak-") if out_dir is None else None
    out = Path(tmp.name if tmp else out_dir)
    sinks = Sinks(OutputConfig(dir=str(out), mot=True, events=True, video=video), cam_ids,
                  video_fps=dict.fromkeys(cam_ids, fps))
    samples: list[dict] = []
    tick_ms: list[float] = []
    tick_cpu_ms: list[float] = []
    try:
        sinks.start()
        for k in range(ticks):
            now = k * dt
            synth = [s.step(now, dt) for s in scenes]
            t0, c0 = time.perf_counter(), time.thread_time()
            outputs, embs = {}, {}
            for cam, trk, (tlbr, scores, emb) in zip(cam_ids, trackers, synth, strict=True):
                dets = Detections(tlbr, scores, now, emb, k + 1)
                outputs[cam] = trk.update(dets)
                embs[cam] = dets.embeddings
            outputs = registry.update(now, outputs, embs)
            sinks.submit([CameraResult(cam, Frame(cam, k + 1, now, image), outputs[cam], time.monotonic())
                          for cam in cam_ids], [])
            tick_ms.append((time.perf_counter() - t0) * 1000)
            tick_cpu_ms.append((time.thread_time() - c0) * 1000)
            if (k + 1) % sample_every == 0 or k + 1 == ticks:
                gc.collect()
                samples.append({
                    "tick": k + 1, "time_s": now, "rss_mb": rss_mb(),
                    "ms_per_tick": float(np.median(tick_ms)),
                    "cpu_ms_per_tick": float(np.median(tick_cpu_ms)),
                    "stored_embeddings": stored_embeddings(trackers, registry),
                    "active_tracks": sum(len(t) for t in trackers),
                    "reported_tracks": sum(len(o) for o in outputs.values()),
                    "identities": len(registry.identities),
                    "registry_tracks": len(registry.tracks) + len(registry._pending),
                    "sinks_text_queue": sinks._text_q.qsize(),
                    "sinks_seen_keys": sinks_seen_keys(sinks),
                })
                tick_ms.clear()
                tick_cpu_ms.clear()
                if log is not None and len(samples) % 20 == 0:
                    s = samples[-1]
                    log(f"  tick {s['tick']}/{ticks} t={s['time_s']:.0f}s rss={s['rss_mb']:.1f}MB "
                        f"ms/tick={s['ms_per_tick']:.2f} emb={s['stored_embeddings']} ids={s['identities']}")
    finally:
        sinks.close()
        files_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 2**20
        if tmp is not None:
            tmp.cleanup()
    if sinks.error is not None:
        raise sinks.error
    return {"samples": samples, "files_mb": files_mb, "people_ever": pop.people_ever, "ticks": ticks,
            "frames": ticks * cameras, "memory_seconds": mc.memory_seconds}


def windows(samples: list[dict], warmup_s: float, share: float = 0.1) -> tuple[list[dict], list[dict], list[dict]]:
    """First, middle and last ``share`` of the samples taken after ``warmup_s`` seconds of stream time."""
    measured = [s for s in samples if s["time_s"] >= warmup_s] or samples
    n = max(1, int(round(len(measured) * share)))
    mid = (len(measured) - n) // 2
    return measured[:n], measured[mid:mid + n], measured[-n:]


METRICS = ("rss_mb", "ms_per_tick", "cpu_ms_per_tick", "stored_embeddings", "active_tracks", "identities",
           "registry_tracks", "sinks_text_queue", "sinks_seen_keys")


def _growth(a: float, b: float) -> str:
    if a:
        g = (b - a) / a * 100
        return f"{g:+.1f}% {'ok' if g < 5.0 else 'GROWS'}"
    return "n/a(zero) " + ("ok" if b <= 1 else "GROWS")


def summarize(result: dict, warmup_s: float) -> list[str]:
    first, mid, last = windows(result["samples"], warmup_s)
    measured = [s for s in result["samples"] if s["time_s"] >= warmup_s] or result["samples"]
    lines = []
    for m in METRICS:
        a, c, b = (float(np.mean([s[m] for s in w])) for w in (first, mid, last))
        peak = max(s[m] for s in measured)
        lines.append(f"soak metric={m} first10={a:.2f} last10={b:.2f} max={peak:.2f} growth={_growth(a, b)} "
                     f"| mid10={c:.2f} growth_mid_to_last={_growth(c, b)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100_000, help="frames in all (ticks x cameras)")
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--fps", type=float, default=10.0, help="stream frame rate (timestamps), not a pace")
    ap.add_argument("--dim", type=int, default=512, help="embedding dimension")
    ap.add_argument("--population", type=int, default=300, help="people who come and go (fixed size)")
    ap.add_argument("--new-share", type=float, default=0.3, help="share of visits by someone never seen before")
    ap.add_argument("--sample-every", type=int, default=100, help="ticks between samples")
    ap.add_argument("--warmup", type=float, default=None,
                    help="stream seconds left out before the first window (default: the longest retention window, "
                         "max(memory_seconds + max_age, the event writer's SEEN_RETENTION))")
    ap.add_argument("--video", action="store_true", help="also annotate and encode 64x64 frames")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    tcfg = TrackerConfig()
    print("# " + shlex.join([".venv/bin/python", "bench/soak.py", *(sys.argv[1:] if argv is None else argv)]),
          flush=True)
    t0 = time.monotonic()
    res = run_soak(args.frames, args.cameras, args.fps, args.dim, args.population, args.new_share,
                   args.sample_every, args.seed, args.video, tcfg,
                   log=lambda s: print(s, file=sys.stderr, flush=True))
    wall = time.monotonic() - t0
    from tracker.io.sinks import SEEN_RETENTION

    # Every time-based store must have filled once: the registry's memory, the trackers' lost tracks,
    # the event writer's seen-identity bookkeeping.
    warmup = args.warmup if args.warmup is not None else max(res["memory_seconds"] + tcfg.max_age, SEEN_RETENTION)
    stream_s = res["ticks"] / args.fps
    print(f"soak frames={res['frames']} cameras={args.cameras} ticks={res['ticks']} stream_s={stream_s:.0f} "
          f"wall_s={wall:.0f} people={res['people_ever']} dim={args.dim} video={args.video} "
          f"outputs_mb={res['files_mb']:.1f}")
    why = "" if args.warmup is not None else " (the longest retention: registry memory_seconds + tracker max_age, " \
        "the event writer's SEEN_RETENTION)"
    print(f"soak windows: first/mid/last 10% of the ticks after a {warmup:.0f} s warm-up{why}; "
          f"values are means of samples every {args.sample_every} ticks; ms_per_tick (wall) and "
          f"cpu_ms_per_tick (this thread's CPU time, insensitive to other processes on the machine) are medians "
          f"of tracker updates + registry + sinks.submit per tick")
    for line in summarize(res, warmup):
        print(line)
    first = windows(res["samples"], 0.0)[0]
    raw = {m: float(np.mean([s[m] for s in first])) for m in ("rss_mb", "stored_embeddings", "identities")}
    print("soak without warm-up, first10: " + " ".join(f"{k}={v:.1f}" for k, v in raw.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
