"""Deployment settings: the sections of a run config (cameras, detector, ReID, outputs, loop).

``RunConfig`` is what ``run.py run --config FILE`` loads (``tracker.io.config_file.load_yaml``);
the tracker and registry sections are the core's own configs (``tracker.core.config``,
``tracker.multicam.config``). ``check_run_config`` holds the cross-field checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker.core.config import TrackerConfig
from tracker.core.config import config_field as _f
from tracker.errors import UserError
from tracker.multicam.config import MulticamConfig


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
        "Credentials in URLs are masked in every log and output. Empty with detections and fps: replay the "
        "detection file without pictures (motion only).", int_ok=True)
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
    mot_delay: float = _f(3.0, "seconds MOT rows wait before they are written, with the identity their track holds "
                          "by then: the registry's corrections of the last seconds (merges, splits) reach the file. "
                          "0: written at once, as first shown. Everything waiting is written on exit, Ctrl-C "
                          "included.", 0.0, 3600.0)
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
    console: bool = _f(True, "with http: serve the identity console (/identities): every global identity with "
                       "its cameras, times and thumbnails, search by photo. Thumbnails are chosen and encoded on "
                       "the frame writer thread, stored only beside multicam.store and purged with it.")
    console_thumbs_per_frame: int = _f(2, "most thumbnails the console encodes per camera frame (small JPEGs of "
                                       "the best crops). Higher: better thumbnails sooner, more CPU on the writer "
                                       "thread.", 1, 100)
    console_max_identities: int = _f(2000, "identities the console keeps; the longest unseen are forgotten first "
                                     "(each costs a few thumbnails: see bench/results/console_cost.txt).",
                                     1, 1_000_000)
    http_linger: float = _f(0.0, "seconds the live view keeps serving after file sources end, so the final "
                            "identities can be looked at (Ctrl-C ends it sooner). 0: it stops with the run.",
                            0.0, 86400.0)
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
class FleetConfig:
    """Edge boxes and one identity service over a broker (``tracker.fleet``). Off by default.

    On an edge (``run.py run``) the per-camera tracks are published to the broker instead of running the
    identity registry locally, and the global ids the identity service sends back are applied. The identity
    service (``run.py identity-service``) reads ``broker``, ``site``, ``cameras``, ``lateness``, ``max_skew``
    and the retention keys from the same section.
    """

    enabled: bool = _f(False, "publish tracks to the identity service (edge) instead of running multicam locally. "
                       "Off: one process owns every camera.")
    broker: str = _f("redis://127.0.0.1:6379/0", "broker URL: redis://[user:password@]host:port/db or rediss:// "
                     "(TLS). Give credentials as ${VAR} from the environment; masked in every log.")
    username: str | None = _f(None, "Redis ACL user (overrides one in the URL); give it as ${VAR}.")
    password: str | None = _f(None, "Redis AUTH password (overrides one in the URL); give it as ${VAR}. Never "
                              "logged.")
    tls_ca: str | None = _f(None, "CA certificate file to verify a rediss:// broker (default: the system's).")
    site: str = _f("site", "site name: one identity service and one set of streams per site (letters, digits, "
                   "'-', '_', '.').")
    node: str = _f("", "this edge's name, unique in the site (default: the host name).")
    cameras: tuple[str, ...] = _f((), "identity service only: every camera id of the site (their MOT files; the "
                                  "topology in multicam names them).")
    embedding_dtype: str = _f("float32", "how ReID embeddings travel: float32 (the service gives the same answer "
                              "as one box) or float16 (half the bytes; cosine distances change by ~1e-3).",
                              choices=("float32", "float16"))
    lateness: float = _f(0.5, "seconds (wall) the service holds observations back while a camera has not yet "
                         "published that far, so ticks are applied in timestamp order across edges. Higher: the "
                         "same order as one box for slower edges, later ids; lower: faster ids.", 0.0, 3600.0)
    max_skew: float = _f(1.0, "largest clock difference, in seconds, between an edge and the broker that is "
                         "tolerated without a warning (logged once per edge).", 0.0, 3600.0)
    outbox_messages: int = _f(20000, "messages an edge buffers while the broker is unreachable; the oldest are "
                              "dropped beyond this (counted, one warning).", 1, 10_000_000)
    outbox_mb: float = _f(64.0, "megabytes an edge buffers while the broker is unreachable (oldest dropped "
                          "beyond).", 0.01, 100000.0)
    maxlen: int = _f(200000, "entries kept per stream (XADD MAXLEN ~). Must exceed what the service may fall "
                     "behind (a stopped service loses what is trimmed). Higher: more broker memory.",
                     100, 100_000_000)
    retention: float = _f(3600.0, "seconds an entry stays on a stream at most (trimmed by age by the service).",
                          10.0, 30 * 86400.0)
    checkpoint_interval: float = _f(5.0, "identity service: seconds between checkpoints (registry saved to "
                                    "multicam.store, processed entries acknowledged). A killed service replays "
                                    "what came after. Lower: less replay, more writes.", 0.1, 3600.0)


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
    fleet: FleetConfig = field(default_factory=FleetConfig,
                               metadata={"doc": "edge boxes and the identity service (section above)"})


def _check_name(what: str, value: str) -> None:
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise UserError(f"config: {what} '{value}' may contain only letters, digits, '-', '_' and '.'")


def check_fleet_config(cfg: FleetConfig) -> None:
    """Cross-field checks of the ``fleet`` section (edge and service)."""
    from urllib.parse import urlsplit

    _check_name("fleet.site", cfg.site)
    if cfg.node:
        _check_name("fleet.node", cfg.node)
    scheme = urlsplit(cfg.broker).scheme
    if scheme not in ("redis", "rediss"):
        raise UserError("config: fleet.broker must be a redis:// or rediss:// URL (Redis Streams is the only "
                        f"transport so far), got scheme '{scheme}'")


def check_run_config(cfg: RunConfig) -> None:
    """Cross-field checks for a run: cameras present, ids unique and non-empty, sources given."""
    if not cfg.cameras:
        raise UserError("config: 'cameras' must list at least one camera")
    seen = set()
    for i, cam in enumerate(cfg.cameras):
        if not cam.id:
            raise UserError(f"config key 'cameras[{i}].id' is required")
        if not cam.source and not (cam.detections and cam.fps):
            raise UserError(f"config key 'cameras[{i}].source' is required (camera '{cam.id}'), unless the camera "
                            "replays a detection file without pictures (then give detections and fps)")
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
    if cfg.fleet.enabled:
        check_fleet_config(cfg.fleet)
        if cfg.multicam.enabled:
            raise UserError("config: with fleet.enabled the identity registry runs in the identity service "
                            "(run.py identity-service); set multicam.enabled to false on the edge")

