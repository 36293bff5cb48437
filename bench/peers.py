"""Benchmark our tracker against peer trackers on identical detections and embeddings.

Every tracker sees the same detections (``tracker.io.motio.read_mot_detections`` of a MOT det
file, same row order) and, where its API takes them, the same OSNet-x0.25 embeddings
(precomputed once by bench/embed_cache.py, not timed). Each tracker's output is written
as a MOT result file and scored with ``tracker.scoring.mot.evaluate_files``. The table
(one line per (tracker, detections) row) goes to stdout; progress goes to stderr.

ms/frame is the MEAN wall time of the tracker's own per-frame update call over all
frames of the sequence (frames without detections included); building the inputs,
reading the video and writing rows are outside the timer. For peers that take the
image (BoT-SORT's camera-motion compensation, StrongSORT's ECC) that work is inside
their update call and so inside the timer, as it is when they run for real.

Peers run with their shipped default parameters. The peers are AGPL (BoxMOT,
Ultralytics) or GPL (deep-sort-realtime derives from nwojke/deep_sort): they are used
as installed packages only (requirements-bench.txt, separate venv), nothing is copied.

Usage:
    .venv-bench/bin/python bench/peers.py [--dets public yolo] [--trackers NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

import embed_cache  # noqa: E402  (bench/embed_cache.py)

SEQ = "PETS09-S2L1"
SHARED_DATA = Path(os.environ.get("MCTRACK_DATA_DIR") or ROOT.parent / "shared" / "data")
DATA = SHARED_DATA / SEQ
DEV_DATA = SHARED_DATA / "MOT15-dev"
DET_SETS = {"public": "det/det.txt", "yolo": "det/det_yolov8n.txt"}
METRICS = ("HOTA", "IDF1", "MOTA", "IDSW")


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Adapters. Each has: needs_image (bool), __init__(fps, image_hw), and
#   prepare(frame, t_s, fd, image) -> input   (untimed: builds the peer's input types)
#   update(inp) -> raw                         (timed: exactly the peer's update call)
#   rows(raw, fd) -> (ids, tlbr, scores, det_index)   (untimed: parse the peer's output)
# fd is embed_cache.FrameDets (tlbr (N,4) float32 pixels, scores (N,), embeddings (N,512)).
# --------------------------------------------------------------------------------------

def _empty_rows():
    return (np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
            np.zeros(0, np.int64))


class Ours:
    needs_image = False
    use_embeddings = True

    def __init__(self, fps, image_hw):
        from tracker.core.config import TrackerConfig
        from tracker.core.ids import IdAllocator
        from tracker.core.tracker import CameraTracker
        from tracker.core.types import Detections

        self._Detections = Detections
        self.trk = CameraTracker(TrackerConfig(), IdAllocator())

    def prepare(self, frame, t_s, fd, image):
        return self._Detections(tlbr=fd.tlbr, scores=fd.scores, timestamp=t_s,
                                embeddings=fd.embeddings if self.use_embeddings else None,
                                frame_index=frame)

    def update(self, inp):
        return self.trk.update(inp)

    def rows(self, out, fd):
        keep = np.asarray(out.confirmed, bool) & (np.asarray(out.det_index) >= 0)
        return (np.asarray(out.track_ids)[keep], np.asarray(out.tlbr)[keep], np.asarray(out.scores)[keep],
                np.asarray(out.det_index)[keep])


class OursMotion(Ours):
    use_embeddings = False


class BoxMOT:
    """BoxMOT >= 25: ``create_tracker(TrackerSpec(name))`` loads the shipped default config;
    embeddings go in through ``boxmot.structures.Detections.embeddings`` (the numpy-row
    entry point has no embeddings argument in 25.x). With embeddings supplied the tracker
    never builds its ReID model (checked after the run)."""

    name = ""
    needs_image = True
    motion_only = False  # set per run: MOT15-dev has no frames, so no embeddings
    embeddings_switch = False  # the shipped config has use_embeddings (BoT-SORT, OccluBoost, BoostTrack)

    def __init__(self, fps, image_hw):
        import torch
        from boxmot import create_tracker
        from boxmot.structures import Boxes, Detections
        from boxmot.trackers.specs import TrackerSpec

        self._torch, self._Boxes, self._Detections = torch, Boxes, Detections
        # Motion only: the tracker's own use_embeddings switch is turned off (everything else as shipped).
        options = (("use_embeddings", False),) if (self.motion_only and self.embeddings_switch) else ()
        self.trk = create_tracker(TrackerSpec(name=self.name, options=options))
        self.embeds = bool(self.trk.requirements.embeddings)
        if self.embeds and self.motion_only:
            raise RuntimeError(f"{self.name}: needs embeddings, none in a motion-only run")

    def prepare(self, frame, t_s, fd, image):
        torch = self._torch
        n = len(fd.scores)
        dets = self._Detections(
            geometry=self._Boxes(torch.from_numpy(np.ascontiguousarray(fd.tlbr, np.float32))),
            scores=torch.from_numpy(np.ascontiguousarray(fd.scores, np.float32)),
            class_ids=torch.zeros(n, dtype=torch.int64),
            sample_id=f"seq:{frame}",
            embeddings=torch.from_numpy(np.ascontiguousarray(fd.embeddings, np.float32)) if self.embeds else None,
        )
        return dets, image

    def update(self, inp):
        dets, image = inp
        return self.trk.update(dets, image)

    def rows(self, tracks, fd):
        if len(tracks) == 0:
            return _empty_rows()
        return (tracks.track_ids.numpy(), tracks.geometry.values.numpy()[:, :4], tracks.scores.numpy(),
                tracks.detection_indices.numpy())

    def check(self):
        """Raise if the tracker built its own ReID model (it must only use our embeddings)."""
        for attr in ("_reid_model", "_reid_encoder"):
            if getattr(self.trk, attr, None) is not None:
                raise RuntimeError(f"{self.name}: BoxMOT built its own ReID model ({attr})")


class BoxMOTByteTrack(BoxMOT):
    name = "bytetrack"
    needs_image = False


class BoxMOTBotSort(BoxMOT):
    name = "botsort"
    embeddings_switch = True


class BoxMOTStrongSort(BoxMOT):
    name = "strongsort"


class BoxMOTOccluBoost(BoxMOT):
    name = "occluboost"
    embeddings_switch = True


class BoxMOTBoostTrack(BoxMOT):
    name = "boosttrack"
    embeddings_switch = True


class BoxMOTOcSort(BoxMOT):
    name = "ocsort"
    needs_image = False


class Ultralytics:
    """Ultralytics BYTETracker / BOTSORT built from the package's own tracker YAMLs.

    ReID row: botsort.yaml with ``with_reid: True`` and its default ``model: auto``, in
    which mode BOTSORT takes per-detection features through ``update(..., feats=...)``;
    we pass our OSNet embeddings there, so no encoder model is loaded."""

    yaml = "bytetrack.yaml"
    with_reid = False
    needs_image = True  # BOT-SORT's GMC (sparse optical flow) uses the image; ByteTrack ignores it

    def __init__(self, fps, image_hw):
        from ultralytics.engine.results import Boxes
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import ROOT as UL_ROOT
        from ultralytics.utils import YAML, IterableSimpleNamespace

        cfg = IterableSimpleNamespace(**YAML.load(UL_ROOT / "cfg" / "trackers" / self.yaml))
        if self.with_reid:
            cfg.with_reid = True
            if getattr(cfg, "model", "auto") != "auto":
                raise RuntimeError(f"{self.yaml}: expected model: auto, got {cfg.model}")
        cfg.device = "cpu"
        self.cfg = cfg
        self._Boxes = Boxes
        self.hw = image_hw
        self.trk = TRACKER_MAP[cfg.tracker_type](args=cfg)

    def prepare(self, frame, t_s, fd, image):
        n = len(fd.scores)
        data = np.concatenate([fd.tlbr, fd.scores[:, None], np.zeros((n, 1), np.float32)], axis=1)
        boxes = self._Boxes(data.astype(np.float32), self.hw)
        feats = np.ascontiguousarray(fd.embeddings, np.float32) if self.with_reid else None
        return boxes, image, feats

    def update(self, inp):
        boxes, image, feats = inp
        return self.trk.update(boxes, image, feats=feats)

    def rows(self, out, fd):
        out = np.asarray(out, np.float64)
        if out.size == 0:
            return _empty_rows()
        return (out[:, 4].astype(np.int64), out[:, :4].astype(np.float32), out[:, 5].astype(np.float32),
                out[:, 7].astype(np.int64))


class UltralyticsByteTrack(Ultralytics):
    yaml = "bytetrack.yaml"
    needs_image = False


class UltralyticsBotSort(Ultralytics):
    yaml = "botsort.yaml"


class UltralyticsBotSortReID(Ultralytics):
    yaml = "botsort.yaml"
    with_reid = True


class UltralyticsOcSort(Ultralytics):
    yaml = "ocsort.yaml"
    needs_image = False


class Roboflow:
    """Roboflow ``trackers`` (Apache-2.0): ``<Name>Tracker(frame_rate=fps)`` with every other argument at its
    default; ``update(sv.Detections, frame)`` returns the input detections with ``tracker_id`` (-1: not
    reported), so boxes are the detection boxes and the detection index travels in ``data``."""

    cls_name = ""
    needs_image = False

    def __init__(self, fps, image_hw):
        import supervision as sv
        import trackers

        self._sv = sv
        self.trk = getattr(trackers, self.cls_name)(frame_rate=float(fps))

    def prepare(self, frame, t_s, fd, image):
        n = len(fd.scores)
        det = self._sv.Detections(xyxy=np.ascontiguousarray(fd.tlbr, np.float32).reshape(-1, 4),
                                  confidence=np.asarray(fd.scores, np.float32), class_id=np.zeros(n, int),
                                  data={"det_index": np.arange(n)})
        return det, image

    def update(self, inp):
        det, image = inp
        return self.trk.update(det, frame=image)

    def rows(self, out, fd):
        if out.tracker_id is None or len(out) == 0:
            return _empty_rows()
        keep = np.asarray(out.tracker_id) >= 0
        conf = out.confidence if out.confidence is not None else np.zeros(len(out), np.float32)
        return (np.asarray(out.tracker_id)[keep].astype(np.int64), np.asarray(out.xyxy, np.float32)[keep],
                np.asarray(conf, np.float32)[keep], np.asarray(out.data["det_index"])[keep].astype(np.int64))


class RoboflowSort(Roboflow):
    cls_name = "SORTTracker"


class RoboflowByteTrack(Roboflow):
    cls_name = "ByteTrackTracker"


class RoboflowOcSort(Roboflow):
    cls_name = "OCSORTTracker"


class RoboflowBotSort(Roboflow):
    cls_name = "BoTSORTTracker"
    needs_image = True  # camera-motion compensation (sparse optical flow) on the frame


class DeepSortRealtime:
    """deep-sort-realtime's DeepSort with its default tracker parameters. ``embedder=None``
    (instead of the default in-built MobileNetV2) because we pass our embeddings via
    ``update_tracks(..., embeds=...)``; detection indices travel in ``others``."""

    needs_image = False

    def __init__(self, fps, image_hw):
        from deep_sort_realtime.deepsort_tracker import DeepSort

        self.trk = DeepSort(embedder=None)

    def prepare(self, frame, t_s, fd, image):
        raw = [([float(l), float(t), float(r - l), float(b - t)], float(s), "person")
               for (l, t, r, b), s in zip(fd.tlbr.tolist(), fd.scores.tolist(), strict=True)]
        return raw, list(fd.embeddings), list(range(len(raw)))

    def update(self, inp):
        raw, embeds, others = inp
        return self.trk.update_tracks(raw, embeds=embeds, others=others)

    def rows(self, tracks, fd):
        ids, boxes, scores, didx = [], [], [], []
        for tr in tracks:
            if not tr.is_confirmed() or tr.time_since_update > 0:
                continue
            ids.append(int(tr.track_id))
            boxes.append(tr.to_ltrb())
            scores.append(tr.get_det_conf() or 0.0)
            d = tr.get_det_supplementary()
            didx.append(-1 if d is None else int(d))
        if not ids:
            return _empty_rows()
        return (np.array(ids, np.int64), np.array(boxes, np.float32), np.array(scores, np.float32),
                np.array(didx, np.int64))


TRACKERS: dict[str, tuple[str, Callable]] = {
    # key: (label in the table, adapter)
    "ours": ("ours (OSNet)", Ours),
    "ours-motion": ("ours (motion only)", OursMotion),
    "boxmot-bytetrack": ("BoxMOT ByteTrack", BoxMOTByteTrack),
    "boxmot-botsort": ("BoxMOT BoT-SORT (ReID)", BoxMOTBotSort),
    "boxmot-strongsort": ("BoxMOT StrongSORT", BoxMOTStrongSort),
    "boxmot-occluboost": ("BoxMOT OccluBoost", BoxMOTOccluBoost),
    "ul-bytetrack": ("Ultralytics ByteTrack", UltralyticsByteTrack),
    "ul-botsort": ("Ultralytics BoT-SORT", UltralyticsBotSort),
    "ul-botsort-reid": ("Ultralytics BoT-SORT (ReID)", UltralyticsBotSortReID),
    "deepsort-rt": ("deep-sort-realtime DeepSORT", DeepSortRealtime),
    "boxmot-boosttrack": ("BoxMOT BoostTrack++", BoxMOTBoostTrack),
    "boxmot-ocsort": ("BoxMOT OC-SORT", BoxMOTOcSort),
    "ul-ocsort": ("Ultralytics OC-SORT", UltralyticsOcSort),
    "rf-sort": ("Roboflow SORT", RoboflowSort),
    "rf-bytetrack": ("Roboflow ByteTrack", RoboflowByteTrack),
    "rf-ocsort": ("Roboflow OC-SORT", RoboflowOcSort),
    "rf-botsort": ("Roboflow BoT-SORT", RoboflowBotSort),
}
# Trackers that match on appearance by design: no motion-only row (MOT15-dev has no frames to embed).
APPEARANCE_ONLY = {"ours", "boxmot-strongsort", "ul-botsort-reid", "deepsort-rt"}


def boxmot_has(name: str) -> bool:
    try:
        from boxmot.trackers.registry import get_tracker_definition

        get_tracker_definition(name)
        return True
    except Exception:
        return False


# --------------------------------------------------------------------------------------


def read_fps(seq_dir: Path) -> float:
    import configparser

    ini = configparser.ConfigParser()
    ini.read(seq_dir / "seqinfo.ini")
    return float(ini["Sequence"]["frameRate"])


def video_frames(video: Path):
    from streams import SourceReader

    with SourceReader("video", str(video)) as src:
        for fr in src:
            yield fr.index, fr.image


def run_tracker(adapter_cls, data: dict, n_frames: int, fps: float, image_hw, video: Path,
                out_file: Path, det_boxes: bool) -> tuple[float, int]:
    """Run one tracker over the sequence, write MOT rows; returns (mean ms/frame, frames)."""
    trk = adapter_cls(fps, image_hw)
    empty = embed_cache.FrameDets(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                                  np.zeros((0, 512), np.float32))
    if adapter_cls.needs_image and video is None:  # text-only sequence: a flat grey frame (no camera motion found)
        blank = np.full((*image_hw, 3), 114, np.uint8)
        frames = ((i, blank) for i in range(1, n_frames + 1))
    elif adapter_cls.needs_image:
        frames = video_frames(video)
    else:
        frames = ((i, None) for i in range(1, n_frames + 1))
    times = []
    lines = []
    for frame, image in frames:
        if frame > n_frames:
            break
        fd = data.get(frame, empty)
        inp = trk.prepare(frame, (frame - 1) / fps, fd, image)
        t0 = time.perf_counter()
        raw = trk.update(inp)
        times.append(time.perf_counter() - t0)
        ids, tlbr, scores, didx = trk.rows(raw, fd)
        if det_boxes:
            tlbr = np.where((didx >= 0)[:, None], fd.tlbr[np.clip(didx, 0, max(len(fd.tlbr) - 1, 0))]
                            if len(fd.tlbr) else tlbr, tlbr)
        boxes = np.asarray(tlbr, np.float64).tolist()
        for tid, (l, t, r, b), s in zip(ids.tolist(), boxes, scores.tolist(), strict=True):
            lines.append(f"{frame},{tid},{l:.2f},{t:.2f},{r - l:.2f},{b - t:.2f},{s:.3f},-1,-1,-1\n")
    if len(times) != n_frames:
        raise RuntimeError(f"ran {len(times)} frames, expected {n_frames}")
    if hasattr(trk, "check"):
        trk.check()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("".join(lines))
    return 1000.0 * float(np.mean(times)), len(times)


def wait_for_evaluation(timeout_s: float):
    """Import tracker.scoring.mot.evaluate_files, polling (once a minute) while it is being written."""
    import importlib

    t0 = time.time()
    while True:
        try:
            mod = importlib.import_module("tracker.scoring.mot")
            return mod.evaluate_files
        except (ImportError, AttributeError) as exc:
            if time.time() - t0 >= timeout_s:
                raise RuntimeError(f"tracker.scoring.mot.evaluate_files not available: {exc}") from None
            log(f"tracker.scoring.mot not importable yet ({exc}); retrying in 60 s")
            sys.modules.pop("tracker.scoring.mot", None)
            importlib.invalidate_caches()
            time.sleep(60)


def fmt_table(rows: list[dict]) -> str:
    head = ["tracker", "detections", "HOTA", "IDF1", "MOTA", "IDSW", "ms/frame(mean)"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["tracker"], r["dets"], f"ERROR: {r['error']}"])
            continue
        m = r["metrics"]
        body.append([r["tracker"], r["dets"], f"{m['HOTA']:.1f}", f"{m['IDF1']:.1f}",
                     f"{m['MOTA']:.1f}", f"{int(round(m['IDSW']))}", f"{r['ms']:.2f}"])
    full = [b for b in body if len(b) == len(head)]
    widths = [max([len(head[i])] + [len(b[i]) for b in full]) for i in range(len(head))]
    widths[0] = max([widths[0]] + [len(b[0]) for b in body])
    widths[1] = max([widths[1]] + [len(b[1]) for b in body])

    def line(cells):
        if len(cells) < len(head):  # error row: free text after the two name columns
            return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]}"
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([line(head)] + [line(b) for b in body])


MOT15_SEQS = ("ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "Venice-2")


def read_seqinfo(seq_dir: Path) -> tuple[float, int, tuple[int, int]]:
    """(fps, frames, (height, width)) from a MOTChallenge seqinfo.ini."""
    import configparser

    ini = configparser.ConfigParser()
    ini.read(seq_dir / "seqinfo.ini")
    s = ini["Sequence"]
    return float(s["frameRate"]), int(s["seqLength"]), (int(s["imHeight"]), int(s["imWidth"]))


def fmt_dev_table(rows: list[dict], seqs) -> str:
    head = ["tracker", *[s[:12] for s in seqs], "HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW", "IDs", "ms/frame"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["tracker"], f"ERROR: {r['error']}"])
            continue
        m, c = r["metrics"], r["metrics"]["COMBINED"]
        body.append([r["tracker"], *[f"{m[s]['HOTA']:.1f}" for s in seqs],
                     *[f"{c[k]:.1f}" for k in ("HOTA", "DetA", "AssA", "IDF1", "MOTA")], f"{c['IDSW']}",
                     f"{c['Pred_IDs']}", f"{r['ms']:.2f}"])
    full = [b for b in body if len(b) == len(head)]
    widths = [max([len(head[i])] + [len(b[i]) for b in full]) for i in range(len(head))]
    widths[0] = max([widths[0]] + [len(b[0]) for b in body])

    def line(cells):
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    lines = [line(head)] + [f"{b[0]:<{widths[0]}}  {b[1]}" if len(b) < len(head) else line(b) for b in body]
    return "\n".join(lines)


def run_mot15dev(args, trackers: list[str]) -> str:
    """Motion-only run of every tracker on the MOT15-dev sequences; returns the table."""
    from tracker.io.motio import read_mot_detections
    from tracker.scoring.mot import evaluate_files

    root = args.data
    out_root = args.keep or Path(tempfile.mkdtemp(prefix="bench_peers_dev_"))
    results = []
    try:
        seqs = {}
        for seq in MOT15_SEQS:
            fps, n_frames, hw = read_seqinfo(root / seq)
            dets = read_mot_detections(root / seq / "det" / "det.txt")
            data = {f: embed_cache.FrameDets(tlbr.astype(np.float32), sc.astype(np.float32),
                                             np.zeros((len(sc), 0), np.float32)) for f, (tlbr, sc) in dets.items()}
            seqs[seq] = (fps, n_frames, hw, data)
        for key in trackers:
            label, cls = TRACKERS[key]
            row = {"tracker": label.replace(" (ReID)", "")}  # motion only here
            results.append(row)
            if key in APPEARANCE_ONLY:
                row["error"] = "matches on appearance by design: no motion-only run"
                continue
            if issubclass(cls, BoxMOT):
                if not boxmot_has(cls.name):
                    row["error"] = "not available in the installed boxmot"
                    continue
                cls = type(cls.__name__, (cls,), {"motion_only": True})
            try:
                ms, frames = [], 0
                for seq, (fps, n_frames, hw, data) in seqs.items():
                    m, n = run_tracker(cls, data, n_frames, fps, hw, None, out_root / key / f"{seq}.txt",
                                       args.det_boxes)
                    ms.append(m * n)
                    frames += n
                row["ms"] = sum(ms) / frames
                with contextlib.redirect_stdout(io.StringIO()):
                    row["metrics"] = evaluate_files({s: root / s / "gt" / "gt.txt" for s in seqs},
                                                    {s: out_root / key / f"{s}.txt" for s in seqs})
                log(f"{label}: HOTA {row['metrics']['COMBINED']['HOTA']:.2f}, {row['ms']:.2f} ms/frame")
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                log(f"{label}: FAILED {row['error']}\n{traceback.format_exc()}")
    finally:
        if args.keep is None:
            shutil.rmtree(out_root, ignore_errors=True)
    return fmt_dev_table(results, MOT15_SEQS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Our tracker vs peers on PETS09-S2L1 with identical detections "
                                             "and OSNet embeddings, or on MOT15-dev (--dataset mot15dev) with "
                                             "identical detections, motion only.")
    ap.add_argument("--dataset", choices=("pets09", "mot15dev"), default="pets09",
                    help="pets09: PETS09-S2L1 with frames and embeddings (default); mot15dev: the five MOT15-dev "
                         "sequences, text only, every tracker motion only (scores per sequence and COMBINED)")
    ap.add_argument("--dets", nargs="+", choices=sorted(DET_SETS), default=["public", "yolo"],
                    help="detection sets: public = det/det.txt (Faster R-CNN), yolo = det/det_yolov8n.txt")
    ap.add_argument("--trackers", nargs="+", choices=list(TRACKERS), default=list(TRACKERS), metavar="NAME",
                    help=f"trackers to run (default: all): {', '.join(TRACKERS)}")
    ap.add_argument("--data", type=Path, default=None,
                    help=f"sequence folder (default: {DATA}; for mot15dev: {DEV_DATA})")
    ap.add_argument("--reid", default=None,
                    help="ReID ONNX model for the embeddings (default: $MCTRACK_MODEL_DIR or ../shared/models, "
                         "+ reid/osnet_x0_25_msmt17.onnx)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the MOT result files here (default: a temporary folder, deleted)")
    ap.add_argument("--det-boxes", action="store_true",
                    help="write the matched detection's box for every tracker instead of the box the tracker "
                         "reports (ours already reports detection boxes)")
    ap.add_argument("--eval-wait", type=float, default=1800,
                    help="seconds to wait for tracker.scoring.mot to become importable (default 1800)")
    args = ap.parse_args(argv)

    # Libraries log to stdout (ultralytics) and stderr; keep stdout for the table only.
    table_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.getLogger("boxmot").setLevel(logging.WARNING)
    logging.getLogger("ultralytics").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")

    if args.dataset == "mot15dev":
        args.data = args.data or DEV_DATA
        t_start = time.time()
        table = run_mot15dev(args, args.trackers)
        log(f"done in {time.time() - t_start:.0f} s")
        table_out.write(table + "\n")
        table_out.flush()
        return 0
    seq_dir = args.data = args.data or DATA
    fps = read_fps(seq_dir)
    video = seq_dir / "video" / "vtest.avi"
    gt = seq_dir / "gt" / "gt.txt"
    import cv2

    cap = cv2.VideoCapture(str(video))
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    image_hw = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
    cap.release()
    log(f"{SEQ}: {n_frames} frames {image_hw[1]}x{image_hw[0]} at {fps:g} fps")

    out_root = args.keep or Path(tempfile.mkdtemp(prefix="bench_peers_"))
    results = []  # dicts: tracker, dets, file | error, ms
    t_start = time.time()
    try:
        for det_name in args.dets:
            det_path = seq_dir / DET_SETS[det_name]
            data = embed_cache.get_embeddings(det_path, video, args.reid)
            n_det = sum(len(v.scores) for v in data.values())
            log(f"{det_name}: {n_det} detections, {len(data)} frames with detections")
            for key in args.trackers:
                label, cls = TRACKERS[key]
                row = {"tracker": label, "dets": det_name}
                if issubclass(cls, BoxMOT) and not boxmot_has(cls.name):
                    try:
                        import boxmot

                        row["error"] = f"not available in boxmot {boxmot.__version__}"
                    except ImportError as exc:
                        row["error"] = f"boxmot not installed ({exc}); use .venv-bench"
                    results.append(row)
                    log(f"{label} / {det_name}: {row['error']}")
                    continue
                out_file = out_root / f"{key}__{det_name}" / f"{SEQ}.txt"
                t0 = time.time()
                try:
                    row["ms"], _ = run_tracker(cls, data, n_frames, fps, image_hw, video, out_file,
                                               args.det_boxes)
                    row["file"] = out_file
                    log(f"{label} / {det_name}: {row['ms']:.2f} ms/frame, {time.time() - t0:.1f} s wall")
                except Exception as exc:  # a failing peer gives an error row, not a crash
                    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                    row["error"] = msg
                    log(f"{label} / {det_name}: FAILED {msg}\n{traceback.format_exc()}")
                results.append(row)

        pending = [r for r in results if "file" in r]
        if pending:
            try:
                evaluate_files = wait_for_evaluation(args.eval_wait)
            except Exception as exc:
                for r in pending:
                    r["error"] = str(exc)
                evaluate_files = None
            for r in pending if evaluate_files else []:
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        res = evaluate_files({SEQ: gt}, {SEQ: r["file"]})
                    r["metrics"] = {k: float(res[SEQ][k]) for k in METRICS}  # HOTA, IDF1, MOTA in percent
                except Exception as exc:
                    r["error"] = f"evaluation failed: {type(exc).__name__}: {exc}".splitlines()[0][:200]
                    log(f"{r['tracker']} / {r['dets']}: {r['error']}\n{traceback.format_exc()}")
    finally:
        if args.keep is None:
            shutil.rmtree(out_root, ignore_errors=True)
    log(f"done in {time.time() - t_start:.0f} s")

    table_out.write(fmt_table(results) + "\n")
    table_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
