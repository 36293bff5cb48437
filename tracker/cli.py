"""Command-line interface of the multi-camera person tracker: ``mctrack`` (installed) or ``python run.py``.

    mctrack track --dets DET.txt --out OUT.txt --fps F [--video FILE | --frames DIR] [--reid MODEL] [--config CFG]
    mctrack run --config configs/NAME.yaml [--set key.sub=value ...]
    mctrack eval --gt-root DIR --results DIR [--seqs SEQ ...]
    mctrack config [--config CFG]      # every config option, its default and what it trades
    mctrack eval-mc --gt-root DIR --results DIR [--cameras ...]   # per-camera and cross-camera scores
    mctrack export-detector --weights yolo.pt [--dynamic] [--half]
    mctrack export-reid --arch osnet_x0_25 --weights file.pth --out file.onnx
    mctrack similarity IMG1 IMG2 [--model M] [--boxes L,T,W,H L,T,W,H]
    mctrack reid-table --pairs PAIRS.csv --models M1 M2 ...
    mctrack registry list|purge --store FILE [--id GID ...]   # saved identities (multicam.store)
    mctrack identity-service --config central.yaml   # a fleet's identity service (edges: run with fleet.enabled)
    mctrack registry topology --store FILE [--config F]      # learned overlaps and links, as YAML

Run ``mctrack COMMAND --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tracker.errors import USER_ERRORS, UserError

log = logging.getLogger("mctrack")

#: optional module -> the extra that installs it (pyproject.toml); the core needs none of them.
EXTRAS = {"cv2": "models", "onnxruntime": "models", "yaml": "models", "tqdm": "models", "trackeval": "eval",
          "ultralytics": "export", "torch": "export", "torchreid": "export", "onnx": "export", "onnxslim": "export"}


def _load_tracker_config(path: str | None):
    from tracker.config import TrackConfig
    from tracker.io.config_file import load_yaml

    return load_yaml(path).tracker if path else TrackConfig().tracker


def cmd_track(args: argparse.Namespace) -> int:
    """One sequence from a detection file, through the same pipeline as ``run`` (one camera, no live view)."""
    import os
    import signal
    import tempfile

    import numpy as np

    from tracker.commands.signals import stop_on_signals
    from tracker.config import CameraConfig, OutputConfig, PipelineConfig, ReIDConfig, RunConfig
    from tracker.io.motio import read_mot_detections
    from tracker.pipeline import Pipeline

    if args.fps <= 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    cfg = _load_tracker_config(args.config)
    dets = read_mot_detections(args.dets)  # checked here: one clear error before anything starts
    n_frames = max(dets) if dets else 0
    log.info("%s: %d detections in %d frames", args.dets, sum(len(s) for _, s in dets.values()), len(dets))
    source = args.video or args.frames or ""
    if args.reid and not source:
        log.warning("--reid needs --video or --frames to cut person crops from; tracking on motion only")
    elif source and not args.reid:
        log.info("no --reid model given: tracking on motion only")
    reid = ReIDConfig(enabled=bool(args.reid and source), model=args.reid or ReIDConfig().model,
                      providers=tuple(p.strip() for p in args.providers.split(",") if p.strip()),
                      cpu_threads=args.threads)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    with tmp as work:
        run_cfg = RunConfig(cameras=(CameraConfig(id="seq", source=str(source), detections=str(args.dets),
                                                  fps=args.fps),),
                            tracker=cfg, reid=reid, output=OutputConfig(dir=work, events=False),
                            pipeline=PipelineConfig(model_dir=args.model_dir, status_interval=0.0))
        pipeline = Pipeline(run_cfg)
        # Ctrl-C stays KeyboardInterrupt here: nothing is written (the result file is whole or absent).
        with stop_on_signals(pipeline.stop, "stopping; nothing is written", (signal.SIGTERM,)):
            summary = pipeline.run(progress=not args.quiet)
        if summary["interrupted"]:
            raise KeyboardInterrupt
        done = summary["cameras"]["seq"]["frames"]
        if reid.enabled:
            n = sum(len(s) for f, (_, s) in dets.items() if f <= done)
            secs = pipeline.stage_seconds["reid"]
            log.info("embedded %d crops in %.1f s (%.0f crops/s)", n, secs, n / max(secs, 1e-9))
        if source and done < n_frames:
            raise UserError(f"the video/frames end after frame {done}, before detection frame {n_frames}; "
                            f"nothing written")
        os.replace(Path(work) / "seq.txt", out)
    rows = np.loadtxt(out, delimiter=",", ndmin=2) if out.stat().st_size else np.zeros((0, 10))
    ids = len(set(rows[:, 1].astype(int).tolist())) if len(rows) else 0
    print(f"wrote {len(rows)} rows, {ids} tracks, {max(done, n_frames)} frames to {out} "
          f"(tracking {summary['stage_ms_per_tick']['track']:.2f} ms/frame)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tracker.commands.signals import stop_on_signals
    from tracker.pipeline import Pipeline, load_run_config

    cfg = load_run_config(args.config, args.set)
    pipeline = Pipeline(cfg)

    with stop_on_signals(pipeline.stop, "finishing the current tick and closing outputs"):
        summary = pipeline.run(progress=not args.quiet, max_ticks=args.max_ticks)
    secs = max(summary["seconds"], 1e-9)
    print(f"{'stopped' if summary['interrupted'] else 'finished'}: {summary['frames']} frames from "
          f"{len(summary['cameras'])} cameras in {summary['seconds']:.1f} s ({summary['frames'] / secs:.1f} frames/s)")
    for cid, c in summary["cameras"].items():
        # Latency from capture to result means something only for live sources (files are read ahead).
        latency = (f", latency p50 {c['latency_p50_ms']:.0f} ms / p95 {c['latency_p95_ms']:.0f} ms"
                   if summary["live"] else "")
        print(f"  {cid}: {c['frames']} frames, {c['dropped']} dropped, {c['reconnects']} reconnects{latency}")
    print(f"outputs in {cfg.output.dir}/:")
    for name, path in summary["outputs"].items():
        print(f"  {name}: {path}")
    fl = summary.get("fleet")
    if fl is not None:
        lat = ("" if fl["latency_p50_ms"] is None else
               f", id latency p50 {fl['latency_p50_ms']:.0f} ms / p95 {fl['latency_p95_ms']:.0f} ms")
        print(f"fleet: edge {fl['node']} published {fl['published']} messages, {fl['assignments']} global ids back"
              f"{lat}; {fl['outbox']} undelivered, {fl['dropped']} dropped")
    reg = summary.get("registry")
    if reg is not None:
        if reg["error"] is None:
            print(f"registry: {reg['saved']} identities saved to {reg['store']} ({reg['restored']} restored at start)")
        else:  # the outputs are complete, but the identities of this run would be lost: not a success
            print(f"registry: NOT saved to {reg['store']} (see the error above)")
            return 2
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tracker.scoring.mot import evaluate_dirs, format_table

    results = evaluate_dirs(args.gt_root, args.results, args.seqs)
    print(format_table(results))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mctrack", description="Real-time multi-camera person tracker.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("track", help="track one sequence from a MOTChallenge detection file")
    t.add_argument("--dets", required=True, help="MOTChallenge detections: frame,-1,left,top,w,h,score,...")
    t.add_argument("--out", required=True, help="output MOTChallenge results: frame,id,left,top,w,h,score,-1,-1,-1")
    t.add_argument("--fps", required=True, type=float, help="frame rate; frame f has timestamp (f-1)/fps seconds")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--video", help="video file whose frame n is detection frame n (for ReID crops)")
    src.add_argument("--frames", help="folder of images, n-th file = frame n (for ReID crops)")
    t.add_argument("--reid", help="ReID ONNX model: a path or a name found in the model directory "
                                  "(e.g. osnet_x0_25_msmt17); without it, tracking uses motion only")
    t.add_argument("--config", help="YAML file with a 'tracker:' section (see configs/default.yaml)")
    t.add_argument("--model-dir", help="where model names are looked up (default: $MCTRACK_MODEL_DIR, then cache)")
    t.add_argument("--providers", default="cuda,cpu",
                   help="ONNX Runtime execution providers in preference order (tensorrt,cuda,cpu)")
    t.add_argument("--threads", type=int, default=0, help="CPU inference threads (0 = all cores)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_track)

    r = sub.add_parser("run", help="track people on many cameras at once, live, from a YAML config")
    r.add_argument("--config", required=True, help="deployment YAML (cameras, detector, reid, tracker, output)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set output.dir=runs/x --set cameras[0].fps=10")
    r.add_argument("--max-ticks", type=int, default=None, help="stop after this many ticks (smoke tests)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("eval", help="HOTA/IDF1/MOTA of result files against MOTChallenge ground truth")
    e.add_argument("--gt-root", required=True, help="folder with <seq>/gt/gt.txt")
    e.add_argument("--results", required=True, help="folder with <seq>.txt result files")
    e.add_argument("--seqs", nargs="*", help="sequences to score (default: every result file with a gt)")
    e.set_defaults(func=cmd_eval)

    # Model tools: each module adds its own subcommands (their heavy imports happen inside the handlers).
    from tracker.commands import config, detector, eval_mc, fleet, registry, reid_export, similarity

    for module in (config, eval_mc, registry, fleet, detector, reid_export, similarity):
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency this command needs is not installed
        root = (exc.name or "").split(".")[0]
        if root not in EXTRAS:
            log.debug("unexpected error", exc_info=True)
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"error: this command needs {root}, which is not installed: pip install 'mctrack[{EXTRAS[root]}]'",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no partial output written (result files are written whole or not at all)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # not a user mistake: one line; the traceback with -v
        log.debug("unexpected error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
