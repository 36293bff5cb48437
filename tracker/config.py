"""Configuration: one YAML file per deployment, loaded into frozen dataclasses.

Defaults live only in the dataclasses below. Every field has a ``doc`` (what it means and
what raising or lowering it trades) and, for numbers, an allowed range. Unknown keys and
out-of-range values fail at load time with a message naming the key and what is allowed.
Each component takes only its own section, so tests build configs in code.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


def _f(default, doc: str, lo=None, hi=None, choices=None, int_ok: bool = False):
    return field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi, "choices": choices, "int_ok": int_ok})


@dataclass(frozen=True)
class KalmanConfig:
    """Constant-velocity Kalman filter over (centre x, centre y, width, height), stepped in seconds.

    Noise standard deviations are relative to the box size (width for x/w, height for y/h),
    so one setting works for near and far people.
    """

    std_position: float = _f(
        0.25, "process noise on position, box sizes per sqrt(second). Higher: follows sudden moves, "
        "but gates widen and neighbours are confused more easily.", 0.0, 10.0)
    std_velocity: float = _f(
        2.0, "process noise on velocity, box sizes per second per sqrt(second). Higher: adapts to "
        "turns and speed changes quickly; lower: smoother, better through occlusion.", 0.0, 10.0)
    std_measurement: float = _f(
        0.2, "detection noise, fraction of box size. Higher: trusts the motion model more than "
        "each detection (smoother, laggier).", 1e-4, 1.0)
    init_velocity: float = _f(
        1.0, "standard deviation of the unknown velocity of a new track, box sizes per second. "
        "Higher: wider gates for a new track's second match.", 0.0, 20.0)
    score_scaled_noise: bool = _f(
        False, "scale measurement noise by (1 - score) (NSA Kalman; the score on the tracker's score_scale): "
        "confident detections pull the state harder. Off: every detection weighs the same.")
    max_dt: float = _f(
        2.0, "longest time step in seconds the filter integrates velocity over; lost tracks stop "
        "drifting after this. Higher: predicts longer gaps linearly; lower: safer for long occlusions.",
        0.0, 3600.0)


@dataclass(frozen=True)
class TrackerConfig:
    """Per-camera association and track lifecycle (DeepSORT/ByteTrack style)."""

    score_scale: str = _f(
        "adaptive", "how high_score, new_track_score and the score-scaled Kalman noise read detection scores. "
        "'adaptive': on the range the detector is seen to use (its 1st..99th score percentile so far, "
        "learnt at run time from every detection at or above low_score, starting from a uniform [0, 1] "
        "prior): a threshold t means floor + t * (top - floor), so one setting serves a detector reporting "
        "0.1..0.9 and one reporting 0.5..1.0. 'absolute': the raw scores.", choices=("adaptive", "absolute"))
    high_score: float = _f(
        0.5, "detections at or above this score (see score_scale) enter the first (appearance + motion) "
        "stage and can start tracks. Higher: fewer false tracks, more misses.", 0.0, 1.0)
    low_score: float = _f(
        0.1, "detections below this are ignored; those between low_score and high_score can only "
        "extend existing tracks by IoU (ByteTrack). Lower: keeps tracks through occlusion, more "
        "risk of drifting onto clutter.", 0.0, 1.0)
    new_track_score: float = _f(
        0.7, "minimum score (see score_scale) for an unmatched detection to start a new track. Higher: fewer false "
        "and duplicate tracks, later starts.", 0.0, 1.0)
    n_init: int = _f(
        4, "consecutive matches before a tentative track is confirmed and reported. Higher: fewer "
        "false tracks, each true one reported later.", 1, 100)
    max_age: float = _f(
        5.0, "seconds a lost confirmed track is kept for re-identification before removal. Higher: "
        "survives longer occlusions, more candidates to confuse.", 0.0, 86400.0)
    motion_max_age: float = _f(
        1.0, "seconds a lost confirmed track with no appearance memory (no embeddings given) is kept; "
        "motion alone cannot re-identify someone after a long gap, so such tracks expire sooner than "
        "max_age. Higher: bridges longer misses by motion, more wrong re-links.", 0.0, 86400.0)
    appearance_weight: float = _f(
        0.8, "weight of cosine appearance distance in the first-stage cost; the rest is IoU distance "
        "to the predicted box. Higher: relies on looks (survives long gaps); lower: relies on "
        "motion (robust to similar clothing).", 0.0, 1.0)
    max_cosine_distance: float = _f(
        0.3, "appearance gate: pairs farther apart (1 - cosine similarity) never match in the first "
        "stage. Higher: tolerates pose/light changes, more identity swaps.", 0.0, 2.0)
    match_threshold: float = _f(
        0.8, "largest fused cost accepted in the first stage. Higher: more matches, more wrong ones.",
        0.0, 2.0)
    gating_chi2: float = _f(
        9.4877, "Mahalanobis gate on the Kalman prediction (chi-square, 4 dof; 9.49 = 95 %). "
        "Higher: accepts larger jumps.", 0.0, 1e6)
    iou_threshold: float = _f(
        0.5, "largest IoU distance (1 - IoU) accepted in the IoU stages (recent tracks vs leftover "
        "detections). Higher: more lenient matching of fast or occluded people.", 0.0, 1.0)
    tentative_iou_threshold: float = _f(
        0.7, "largest IoU distance for matching tentative tracks. Higher: new tracks confirm more "
        "easily.", 0.0, 1.0)
    recent_window: float = _f(
        0.5, "seconds since its last match during which a track joins the IoU stages. Higher: IoU "
        "matching after longer gaps (less reliable at low frame rates).", 0.0, 60.0)
    memory: str = _f(
        "ema", "per-track appearance memory: 'ema' (one exponentially averaged vector) or 'gallery' "
        "(the last gallery_size vectors, distance = smallest).", choices=("ema", "gallery"))
    ema_alpha: float = _f(
        0.95, "EMA momentum: weight of the old appearance. Higher: slower to adapt, more robust to "
        "a few bad crops.", 0.0, 1.0)
    gallery_size: int = _f(
        30, "embeddings kept per track with memory 'gallery'. Higher: more robust matching, more "
        "memory and time.", 1, 1000)
    output_box: str = _f(
        "filtered", "box reported for a matched track: 'filtered' (Kalman estimate after the update: "
        "smoother, less detector jitter) or 'detection' (the raw detection box).",
        choices=("filtered", "detection"))
    kalman: KalmanConfig = field(default_factory=KalmanConfig,
                                 metadata={"doc": "the Kalman motion model (section below)"})


# ---------------------------------------------------------------------------------------------
# Generic loader


def _is_optional(tp) -> bool:
    return type(None) in typing.get_args(tp)


def _check_value(section: str, f: dataclasses.Field, tp, value: Any) -> Any:
    key = f"{section}.{f.name}" if section else f.name
    meta = f.metadata
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key '{key}': expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key '{key}': expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key '{key}': expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if meta.get("int_ok") and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise UserError(f"config key '{key}': expected a string, got {value!r}")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}': expected a list, got {value!r}")
        item_type = typing.get_args(tp)[0]
        if dataclasses.is_dataclass(item_type):
            return tuple(v if isinstance(v, item_type) else from_dict(item_type, v, f"{key}[{i}]")
                         for i, v in enumerate(value))
        value = tuple(value)
    elif _is_optional(tp):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _check_value(section, f, inner, value)
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if choices is not None:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in choices:
                allowed = ", ".join(map(str, choices))
                raise UserError(f"config key '{key}': {item!r} is not allowed (allowed: {allowed})")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise UserError(f"config key '{key}': {value!r} is out of range (allowed: {lo} to {hi})")
    return value


def from_dict(cls, data: dict | None, section: str = ""):
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and bad values."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"config section '{section or cls.__name__}': expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"section '{section}'" if section else "the top level"
        raise UserError(f"unknown config key(s) {', '.join(map(repr, unknown))} in {where} "
                        f"(valid: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _check_value(section, fields[name], hints[name], value) for name, value in data.items()}
    obj = cls(**kwargs)
    validate(obj, section)
    return obj


def validate(obj, section: str = "") -> None:
    """Check ranges of a config built in code (``from_dict`` does this for YAML)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{section}.{f.name}" if section else f.name)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                validate(item, f"{section}.{f.name}[{i}]" if section else f"{f.name}[{i}]")
        else:
            _check_value(section, f, hints[f.name], value)
    if isinstance(obj, TrackerConfig) and obj.low_score > obj.high_score:
        raise UserError(f"config key '{section + '.' if section else ''}low_score' ({obj.low_score}) must not "
                        f"exceed high_score ({obj.high_score})")


@dataclass(frozen=True)
class TrackConfig:
    """The config file of ``run.py track``: only the ``tracker`` section."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig,
                                   metadata={"doc": "the per-camera tracker (section above)"})


# ---------------------------------------------------------------------------------------------
# `run.py run`: the live multi-camera pipeline


_PROVIDERS = ("tensorrt", "cuda", "cpu")


@dataclass(frozen=True)
class CameraConfig:
    """One camera: where its frames come from and, optionally, precomputed detections."""

    id: str = _f("", "camera id, unique in the file; names the output files (<id>.txt, <id>.mp4).")
    source: str = _f(
        "", "video file, image folder, rtsp:// or http(s):// URL, or a webcam index (0, 1, ...). "
        "Credentials in URLs are masked in every log and output.", int_ok=True)
    detections: str | None = _f(
        None, "MOTChallenge detection file (frame,-1,left,top,w,h,score,...) used instead of the "
        "detector for this camera (offline benchmarks; frame n of the file = n-th frame of the source).")
    fps: float | None = _f(
        None, "frame rate of the source; needed for image folders, otherwise read from the container. "
        "Sets timestamps (index-1)/fps for files.", 0.0, 1000.0)
    pace: bool = _f(
        False, "play a file at its native frame rate as if it were a live camera (newest frame wins, "
        "drops counted). Off: files are read as fast as the pipeline goes and never drop a frame.")
    transport: str = _f("tcp", "RTSP transport: tcp (reliable through NAT/loss) or udp (lower latency).",
                        choices=("tcp", "udp"))
    open_timeout: float = _f(10.0, "seconds to wait for a live stream to open before retrying. Higher: tolerates "
                             "slow cameras; lower: notices a dead one sooner.", 0.1, 600.0)
    read_timeout: float = _f(5.0, "seconds without a frame before a live stream counts as stalled and is "
                             "reconnected. Lower: faster recovery, more false reconnects on slow streams.",
                             0.1, 600.0)
    queue_size: int = _f(4, "frames buffered between the reader thread and the loop. Higher: absorbs "
                         "hiccups in files, adds latency for live sources.", 1, 1000)


@dataclass(frozen=True)
class DetectorConfig:
    """Person detector, run once per tick over the frames of all cameras."""

    model: str = _f("yolov8n", "detector model: a path or a name in the model directory (.onnx runs on ONNX "
                    "Runtime; .pt/.engine/other formats through Ultralytics). Known names are downloaded.")
    backend: str = _f("auto", "auto (.onnx -> onnx, else ultralytics), onnx or ultralytics.",
                      choices=("auto", "onnx", "ultralytics"))
    providers: tuple[str, ...] = _f(("cuda", "cpu"), "execution providers in preference order; unavailable ones "
                                    "are skipped and the one used is logged.", choices=_PROVIDERS)
    conf: float = _f(0.1, "minimum score kept; must not exceed tracker.low_score to feed its low-score stage. "
                     "Higher: less clutter and work, fewer occluded people.", 0.0, 1.0)
    iou: float = _f(0.7, "NMS IoU threshold. Higher: keeps people standing close, more duplicates.", 0.01, 1.0)
    imgsz: int = _f(0, "input size; 0 = the model's own. Higher: finds smaller people, quadratically slower.",
                    0, 4096)
    cpu_threads: int = _f(0, "CPU inference threads; 0 = all cores.", 0, 256)


@dataclass(frozen=True)
class ReIDConfig:
    """Appearance encoder, run once per tick over the person crops of all cameras."""

    enabled: bool = _f(True, "embed crops for appearance matching. Off: motion only (faster, more id switches).")
    model: str = _f("osnet_x0_25_msmt17", "ReID ONNX model: a path or a name in the model directory.")
    providers: tuple[str, ...] = _f(("cuda", "cpu"), "execution providers in preference order.",
                                    choices=_PROVIDERS)
    cpu_threads: int = _f(0, "CPU inference threads; 0 = all cores.", 0, 256)
    max_batch: int = _f(128, "most crops per inference call (bounds memory). Higher: better GPU use.", 1, 4096)


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes and serves."""

    dir: str = _f("runs/default", "output folder: <camera>.txt (MOTChallenge rows), events.jsonl, <camera>.mp4.")
    mot: bool = _f(True, "write per-camera MOTChallenge rows (id = the identity shown to users).")
    events: bool = _f(True, "write events.jsonl (track started/ended, identity seen in a camera).")
    video: bool = _f(False, "write an annotated video per camera (costs CPU: JPEG/MP4 encoding).")
    http: bool = _f(False, "serve the live view (MJPEG per camera) and /metrics (Prometheus).")
    http_host: str = _f("127.0.0.1", "address the live view listens on; keep localhost unless it must be "
                        "reached from other machines (then set http_token or http_user and http_password; "
                        "without them a warning is logged).")
    http_port: int = _f(8080, "port of the live view; 0 picks a free one.", 0, 65535)
    http_token: str | None = _f(None, "if set, the live view and /metrics accept this bearer token "
                                "(Authorization: Bearer, or ?token=). Give it as ${VAR} from the environment.")
    http_user: str | None = _f(None, "with http_password: HTTP basic authentication for the live view and /metrics "
                               "(the browser asks). With http_token too, either is accepted.")
    http_password: str | None = _f(None, "basic authentication password; give it as ${VAR} so it comes from the "
                                   "environment, not the file. Never logged; sent unencrypted (base64), so use "
                                   "a TLS proxy beyond a trusted network.")
    queue_size: int = _f(64, "ticks buffered for the writer thread; when full, video/live frames are dropped "
                         "(counted) and text outputs are kept.", 1, 100000)


@dataclass(frozen=True)
class PipelineConfig:
    """The loop that batches frames across cameras."""

    max_wait: float = _f(0.05, "seconds a tick waits for stragglers after the first camera has a frame. Higher: "
                         "bigger batches, more latency; lower: cameras at different rates run in smaller ticks.",
                         0.0, 10.0)
    status_interval: float = _f(5.0, "seconds between status lines for live runs (0 = never).", 0.0, 3600.0)
    model_dir: str | None = _f(None, "where model names are looked up before $MCTRACK_MODEL_DIR and the cache.")


@dataclass(frozen=True)
class LinkConfig:
    """A walkable connection between two cameras that do not overlap (blind gap, corridor)."""

    a: str = _f("", "camera id at one end.")
    b: str = _f("", "camera id at the other end.")
    min_travel: float = _f(0.0, "shortest walk in seconds from a's view to b's.", 0.0, 86400.0)
    max_travel: float = _f(30.0, "longest walk in seconds; a person seen later in b is not linked by this route.",
                           0.0, 86400.0)
    bidirectional: bool = _f(True, "the same times apply from b to a.")


@dataclass(frozen=True)
class HomographyConfig:
    """Maps one camera's image pixels to a common plane shared by overlapping cameras."""

    camera: str = _f("", "camera id.")
    matrix: tuple[float, ...] = _f((), "3x3 homography, row-major (9 numbers), image pixels -> common plane.")


@dataclass(frozen=True)
class MulticamConfig:
    """Cross-camera identities: the site description (overlaps, links, homographies) and the registry.

    Only the site description changes between sites; the thresholds are physical (seconds,
    person heights, cosine distance) and meant to be left alone.
    """

    enabled: bool = _f(False, "give each person one global identity across cameras and across re-entries (on "
                       "PETS09-MC: cross-camera IDF1 35.9 -> 51.9, per-camera HOTA 42.5 -> 40.6, public "
                       "detections). Off: ids are per camera and per track.")
    overlaps: tuple[tuple[str, ...], ...] = _f((), "pairs of cameras whose views overlap, e.g. [[cam1, cam2]]: "
                                               "one person may be in both at once.")
    links: tuple[LinkConfig, ...] = _f((), "connections between non-overlapping cameras with travel times. When any "
                                       "overlap or link is given, identities move only along them.")
    homographies: tuple[HomographyConfig, ...] = _f((), "optional per-camera maps to a common plane, so that "
                                                    "people in overlapping views are compared by position too.")
    max_appearance_distance: float = _f(
        0.3, "largest cosine distance between a new track and an identity's gallery for a link. Higher: links "
        "across bigger changes of light and pose, more wrong merges.", 0.0, 2.0)
    match_threshold: float = _f(0.3, "largest total cost accepted when assigning identities (appearance minus "
                                "the geometry bonus).", -1.0, 2.0)
    geometry_weight: float = _f(0.15, "cost bonus when overlapping views agree on the position. Higher: trusts "
                                "geometry over appearance.", 0.0, 1.0)
    overlap_distance: float = _f(1.0, "in overlapping views, the largest distance between positions in the common "
                                 "plane, in person heights. Higher: tolerates homography error.", 0.0, 100.0)
    presence_window: float = _f(1.0, "seconds after its last detection during which a track still holds its "
                                "identity in its camera. Higher: safer against duplicates, slower hand-over.",
                                0.0, 600.0)
    overlap_handover: float = _f(3.0, "seconds between leaving one view and appearing in an overlapping one.",
                                 0.0, 600.0)
    max_speed: float = _f(2.0, "fastest walk in person heights per second, for re-entry into the same camera.",
                          0.0, 100.0)
    reentry_margin: float = _f(1.0, "extra distance in person heights allowed for re-entry.", 0.0, 100.0)
    gap_penalty: float = _f(0.05, "added to the appearance distance for each doubling of the time an identity has "
                            "been out of sight beyond gap_scale: people away longer need a closer look-alike "
                            "(more newcomers to confuse them with).", 0.0, 1.0)
    gap_scale: float = _f(10.0, "seconds of absence that cost one gap_penalty.", 0.1, 1e6)
    correction_seconds: float = _f(1.0, "seconds two identities must stand at the same place in overlapping views "
                                   "before they are merged (or one identity at two places before it is split).",
                                   0.0, 600.0)
    review_embeddings: int = _f(10, "embeddings after which a track's identity is checked again: a newcomer that "
                                "now clearly matches a known identity is merged into it, a linked track farther than "
                                "max_appearance_distance from everything else its identity holds is split off.",
                                1, 100000)
    review_margin: float = _f(0.05, "how much below match_threshold a late match must score to merge.", 0.0, 1.0)
    memory_seconds: float = _f(300.0, "seconds an identity stays matchable after it was last seen; also the "
                               "retention limit of stored appearance summaries (in memory and in the store). Higher: "
                               "recognises people who come back later, more candidates to confuse.", 0.0, 1e7)
    gallery_size: int = _f(10, "track summaries kept per identity.", 1, 1000)
    min_embeddings: int = _f(3, "embeddings a track needs before its summary joins the gallery.", 1, 1000)
    max_identities: int = _f(10000, "identities kept in memory; the longest unseen are forgotten first.",
                             1, 10_000_000)
    store: str | None = _f(None, "SQLite file where the registry (identity ids and appearance summaries) is saved "
                           "on shutdown and every save_interval seconds, and restored on start, so a restart keeps "
                           "identities. Relative paths are under output.dir. Unset: nothing is stored on disk "
                           "(biometric data; stored summaries expire after memory_seconds, and "
                           "`run.py registry purge` deletes one identity).")
    save_interval: float = _f(60.0, "seconds between saves of the registry while running (0 = only on shutdown).",
                              0.0, 86400.0)


@dataclass(frozen=True)
class RunConfig:
    """A deployment: ``python run.py run --config FILE``."""

    cameras: tuple[CameraConfig, ...] = _f((), "the cameras (at least one; ids unique).")
    detector: DetectorConfig = field(default_factory=DetectorConfig,
                                     metadata={"doc": "the person detector (section above)"})
    reid: ReIDConfig = field(default_factory=ReIDConfig, metadata={"doc": "the ReID encoder (section above)"})
    tracker: TrackerConfig = field(default_factory=TrackerConfig,
                                   metadata={"doc": "the per-camera tracker (section above)"})
    multicam: MulticamConfig = field(default_factory=MulticamConfig,
                                     metadata={"doc": "cross-camera identities (section above)"})
    output: OutputConfig = field(default_factory=OutputConfig, metadata={"doc": "outputs (section above)"})
    pipeline: PipelineConfig = field(default_factory=PipelineConfig,
                                     metadata={"doc": "the batching loop (section above)"})


def check_run_config(cfg: RunConfig) -> None:
    """Cross-field checks for a run: cameras present, ids unique and non-empty, sources given."""
    if not cfg.cameras:
        raise UserError("config: 'cameras' must list at least one camera")
    seen = set()
    for i, cam in enumerate(cfg.cameras):
        if not cam.id:
            raise UserError(f"config key 'cameras[{i}].id' is required")
        if not cam.source:
            raise UserError(f"config key 'cameras[{i}].source' is required (camera '{cam.id}')")
        if cam.id in seen:
            raise UserError(f"config: camera id '{cam.id}' is used twice; camera ids must be unique")
        if not all(c.isalnum() or c in "-_." for c in cam.id):
            raise UserError(f"config: camera id '{cam.id}' may contain only letters, digits, '-', '_' and '.'")
        seen.add(cam.id)
    mc = cfg.multicam
    for pair in mc.overlaps:
        if len(pair) != 2 or any(c not in seen for c in pair):
            raise UserError(f"config: multicam.overlaps entry {list(pair)} must name two configured cameras")
    for link in mc.links:
        if link.a not in seen or link.b not in seen:
            raise UserError(f"config: multicam.links {link.a} -> {link.b} must name configured cameras")
        if link.min_travel > link.max_travel:
            raise UserError(f"config: multicam.links {link.a} -> {link.b}: min_travel exceeds max_travel")
    for h in mc.homographies:
        if h.camera not in seen or len(h.matrix) != 9:
            raise UserError(f"config: multicam.homographies for '{h.camera}' needs a configured camera and 9 numbers")
    if bool(cfg.output.http_user) != bool(cfg.output.http_password):
        raise UserError("config: output.http_user and output.http_password go together: set both or neither")


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set key.sub=value`` overrides (YAML-parsed values) to a raw config mapping.

    ``cameras[0].fps=10`` addresses list items. Unknown keys are caught by ``from_dict`` later.
    """
    import re

    import yaml

    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = data
        parts = key.strip().split(".")
        for j, part in enumerate(parts):
            m = re.fullmatch(r"([A-Za-z_]+)(?:\[(\d+)\])?", part)
            if not m:
                raise UserError(f"--set: bad key '{key}'")
            name, idx = m.group(1), m.group(2)
            last = j == len(parts) - 1
            if idx is None:
                if last:
                    node[name] = value
                else:
                    node[name] = dict(node.get(name) or {})
                    node = node[name]
            else:
                items = list(node.get(name) or [])
                i = int(idx)
                if i >= len(items):
                    raise UserError(f"--set: '{key}': there is no item {i} in '{name}'")
                if last:
                    items[i] = value
                else:
                    items[i] = dict(items[i])
                node[name] = items
                if not last:
                    node = items[i]
    return data


def _expand_env(value):
    """Expand ``$VAR`` / ``${VAR}`` in every string of a raw config (paths to data and models)."""
    import os

    if isinstance(value, str):
        out = os.path.expandvars(value)
        import re

        missing = re.search(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", out)
        if missing:
            raise UserError(f"environment variable {missing.group(1)} is not set (used in '{value}')")
        return out
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def load_yaml(path: str | Path, cls=TrackConfig, overrides: list[str] | None = None):
    """Load a YAML config file into ``cls``; errors name the file and the key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path}: expected a mapping at the top level")
    data = _expand_env(data)
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def describe(cls, prefix: str = "") -> list[str]:
    """One line per option: key, default, doc (used to generate the README's option table)."""
    lines = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        default = f.default if f.default is not dataclasses.MISSING else None
        hint = typing.get_type_hints(cls)[f.name]
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            lines.append(f"| `{key}` | (list) | {f.metadata.get('doc', '')} |")
            lines.extend(describe(typing.get_args(hint)[0], key + "[]."))
            continue
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            sub = f.default_factory()  # type: ignore[misc]
            if dataclasses.is_dataclass(sub):
                lines.extend(describe(type(sub), key + "."))
                continue
            default = sub
        lines.append(f"| `{key}` | `{default}` | {f.metadata.get('doc', '')} |")
    return lines
