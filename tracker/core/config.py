"""Configs of the tracking core: frozen dataclasses with documented, range-checked fields.

Defaults live only in the dataclasses below. Every field has a ``doc`` (what it means and
what raising or lowering it trades) and, for numbers, an allowed range. ``from_dict`` builds
one from a mapping (unknown keys and out-of-range values fail with a message naming the key and
what is allowed); ``validate`` checks one built in code. Pure Python: no YAML, no I/O.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from tracker.errors import UserError


def config_field(default, doc: str, lo=None, hi=None, choices=None, int_ok: bool = False):
    return field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi, "choices": choices, "int_ok": int_ok})


_f = config_field


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
    appearance_score_scale: str = _f(
        "absolute", "score_scale used when the detections carry embeddings (appearance joins motion). The "
        "with-appearance defaults were chosen on PETS09-S2L1 with OSNet; score_scale and kalman.std_velocity "
        "by leave-one-out on MOT15-dev, motion only, which has no frames to embed.", choices=("adaptive", "absolute"))
    appearance_std_velocity: float = _f(
        0.3, "kalman.std_velocity used when the detections carry embeddings: appearance carries identity "
        "through turns and gaps, so a stiffer motion model confuses neighbours less. Higher: follows sudden "
        "moves; lower: smoother.", 0.0, 10.0)
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

