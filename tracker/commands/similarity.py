"""ReID similarity commands: ``similarity`` (two person images) and ``reid-table`` (models x pairs).

    python run.py similarity IMG1 IMG2 [--model M] [--boxes L,T,W,H L,T,W,H] [--providers cpu]
    python run.py reid-table --pairs PAIRS.csv --models M1 M2 ...

Scores (torchreid convention; embeddings are L2-normalised by ``ReIDEncoder``):

- cosine similarity ``cos = f1 . f2`` in [-1, 1], higher = more alike;
- Euclidean distance between the normalised features ``d = |f1 - f2| = sqrt(2 - 2 cos)`` in [0, 2];
- distance similarity ``1 / (1 + d)`` in [1/3, 1], higher = more alike.

Image specs (command line and pairs files):

- ``photo.jpg``: a still image (any format OpenCV reads);
- ``video.avi@N``: frame N (1-based, frame 1 = the first frame) of a video file;
- ``${DATA}`` anywhere in a spec is replaced by the data folder: ``--data-dir``, else
  ``$MCTRACK_DATA_DIR``, else ``../shared/data`` beside the project. In a pairs file a relative
  path is taken relative to the pairs file's folder.

Boxes are ``left,top,width,height`` pixels in the image (``l;t;w;h`` in pairs files); no box (or
``-``) means the whole image is the person crop. A box must lie inside its image (1 px slack).

Pairs file (CSV, lines starting with ``#`` are comments)::

    name,image1,box1,image2,box2,id1,id2
    same01,${DATA}/PETS09-S2L1/video/vtest.avi@12,100;50;40;90,${DATA}/PETS09-S2L1/video/vtest.avi@300,...,3,3

``id1``/``id2`` are optional; with them the table adds mean same-/different-person similarity and
rank-1 (see ``rank1``).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker.errors import UserError

DEFAULT_MODEL = "osnet_x0_25_msmt17"
ENV_DATA_DIR = "MCTRACK_DATA_DIR"
DATA_VAR = "${DATA}"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_VIDEO_FRAME = re.compile(r"(.+)@(\d+)")
_BOX_SLACK_PX = 1.0
_PAIR_COLUMNS = ("name", "image1", "box1", "image2", "box2")


def default_data_dir() -> Path:
    """``$MCTRACK_DATA_DIR``, else ``../shared/data`` next to the project root (the dev/CI layout)."""
    return Path(os.environ.get(ENV_DATA_DIR) or _PROJECT_ROOT.parent / "shared" / "data")


# ----------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ImageSpec:
    """A still image (``frame is None``) or frame ``frame`` (1-based) of the video ``path``."""

    path: Path
    frame: int | None
    text: str = field(compare=False)  # as the user wrote it, for messages

    def __str__(self) -> str:
        return self.text


def parse_image_spec(text: str, data_dir: str | os.PathLike | None = None,
                     base_dir: str | os.PathLike | None = None) -> ImageSpec:
    """Resolve ``IMAGE`` or ``VIDEO@N``, expanding ``${DATA}`` and ``~``.

    Args:
        text: the spec.
        data_dir: what ``${DATA}`` stands for (default: ``default_data_dir()``).
        base_dir: folder that relative paths are taken from (default: the current directory).
    Raises:
        UserError: the file does not exist, or the frame number is 0.
    """
    raw = text.strip()
    if not raw:
        raise UserError("empty image spec (expected IMAGE or VIDEO@FRAME)")
    expanded = raw.replace(DATA_VAR, str(data_dir or default_data_dir()))

    def _path(p: str) -> Path:
        path = Path(p).expanduser()
        return Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path

    still = _path(expanded)
    if still.is_file():
        return ImageSpec(still, None, raw)
    m = _VIDEO_FRAME.fullmatch(expanded)
    if m:
        video, frame = _path(m.group(1)), int(m.group(2))
        if frame < 1:
            raise UserError(f"{raw}: video frames are numbered from 1")
        if not video.is_file():
            raise UserError(f"video file not found: {video} (in image spec '{raw}')")
        return ImageSpec(video, frame, raw)
    raise UserError(f"image file not found: {still} (an image is a file path or VIDEO@FRAME, frame 1-based)")


def parse_box_tlwh(text: str | None, sep: str = ",") -> np.ndarray | None:
    """Parse ``L<sep>T<sep>W<sep>H`` pixels into a (4,) float64 tlwh array; empty or ``-`` gives None.

    Raises:
        UserError: not four finite numbers, or width/height not positive.
    """
    if text is None or text.strip() in ("", "-"):
        return None
    parts = text.strip().split(sep)
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or vals[2] <= 0 or vals[3] <= 0:
        raise UserError(f"bad box '{text}': expected LEFT{sep}TOP{sep}WIDTH{sep}HEIGHT in pixels "
                        f"with width and height > 0 (or '-' for the whole image)")
    return np.asarray(vals, np.float64)


def box_tlbr_in_image(box_tlwh: np.ndarray | None, image_shape: Sequence[int], where: str) -> np.ndarray:
    """Check a box against its image and convert it.

    Args:
        box_tlwh: (4,) left, top, width, height in pixels, or None for the whole image.
        image_shape: the image's (H, W, ...) shape.
        where: the image spec, for the message.
    Returns:
        (4,) float32 tlbr pixels.
    Raises:
        UserError: the box reaches more than 1 px outside the image.
    """
    ih, iw = int(image_shape[0]), int(image_shape[1])
    if box_tlwh is None:
        return np.asarray([0, 0, iw, ih], np.float32)
    l, t, w, h = (float(v) for v in box_tlwh)
    s = _BOX_SLACK_PX
    if l < -s or t < -s or l + w > iw + s or t + h > ih + s:
        raise UserError(f"box {l:g},{t:g},{w:g},{h:g} (left,top,width,height px) lies outside {where} "
                        f"({iw}x{ih} px)")
    return np.asarray([l, t, l + w, t + h], np.float32)


# ----------------------------------------------------------------------------------------- images


def load_images(specs: Sequence[ImageSpec]) -> dict[ImageSpec, np.ndarray]:
    """Read every distinct spec once: stills with OpenCV, video frames in one sequential pass per video.

    Returns:
        spec -> (H, W, 3) uint8 BGR image.
    Raises:
        UserError: unreadable image or video, or a frame past the end of its video.
    """
    import cv2

    from streams import SourceReader

    out: dict[ImageSpec, np.ndarray] = {}
    by_video: dict[Path, dict[int, list[ImageSpec]]] = {}
    for spec in dict.fromkeys(specs):
        if spec.frame is None:
            img = cv2.imread(str(spec.path), cv2.IMREAD_COLOR)
            if img is None:
                raise UserError(f"cannot read image {spec.path} (not an image file, or a format OpenCV cannot "
                                f"decode; for a video frame write VIDEO@FRAME)")
            out[spec] = img
        else:
            by_video.setdefault(spec.path, {}).setdefault(spec.frame, []).append(spec)
    for path, frames in by_video.items():
        last = max(frames)
        n = 0
        with SourceReader("image", str(path)) as source:
            for frame in source:  # sequential decoding: exact frame numbers for any codec
                n = frame.index
                for spec in frames.get(n, ()):
                    out[spec] = frame.image
                if n >= last:
                    break
        if n < last:
            raise UserError(f"{path} has {n} frames; frame {last} was asked for")
    return out


# ----------------------------------------------------------------------------------------- scores


def pair_scores(f1: np.ndarray, f2: np.ndarray) -> tuple[float, float, float]:
    """Cosine similarity, Euclidean distance and distance similarity of two embeddings.

    Args:
        f1, f2: (D,) float32 unit-norm embeddings.
    Returns:
        (cos, d, 1 / (1 + d)) with cos = f1 . f2 in [-1, 1] and d = |f1 - f2| = sqrt(2 - 2 cos) in [0, 2].
    """
    a = np.asarray(f1, np.float64)
    b = np.asarray(f2, np.float64)
    cos = float(a @ b)
    dist = float(np.linalg.norm(a - b))
    return cos, dist, 1.0 / (1.0 + dist)


def rank1(emb: np.ndarray, ids: Sequence[int | None]) -> tuple[float | None, int]:
    """Rank-1 identification rate over a set of distinct crops.

    Queries are the crops with an id that have at least one other crop with the same id; the
    gallery of a query is every other crop with an id (itself excluded). A query is a hit when
    its most cosine-similar gallery crop has its id (ties: the first in input order).

    Args:
        emb: (N, D) float32 unit-norm embeddings of N distinct crops.
        ids: N person ids, None where unknown (such crops are neither queries nor gallery).
    Returns:
        (fraction of queries that are hits, number of queries); (None, 0) when there is no query.
    """
    known = [i for i, x in enumerate(ids) if x is not None]
    if len(known) < 2:
        return None, 0
    e = np.asarray(emb, np.float64)[known]
    lab = np.asarray([ids[i] for i in known])
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    same = lab[:, None] == lab[None, :]
    np.fill_diagonal(same, False)
    queries = same.any(axis=1)
    if not queries.any():
        return None, 0
    best = sim.argmax(axis=1)
    hits = (lab[best] == lab)[queries]
    return float(hits.mean()), int(queries.sum())


# ----------------------------------------------------------------------------------------- encoder


def _model_label(arg: str) -> str:
    name = Path(arg).name
    for ext in (".onnx", ".engine"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _resolve(model: str, args: argparse.Namespace) -> Path:
    from tracker.models.lookup import resolve_model

    return resolve_model(model, args.model_dir)


def _open_encoder(path: Path, args: argparse.Namespace):
    from tracker.models.reid import ReIDEncoder

    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    return ReIDEncoder(path, providers=providers, cpu_threads=args.threads)


def embed_crops(encoder, images: dict[ImageSpec, np.ndarray], crops: Sequence[tuple[ImageSpec, np.ndarray]]
                ) -> np.ndarray:
    """Embed crops of several images in one batched ``ReIDEncoder.embed`` call.

    Args:
        encoder: a ``ReIDEncoder``.
        images: spec -> (H, W, 3) uint8 BGR image.
        crops: (spec, (4,) float32 tlbr pixels) per crop.
    Returns:
        (len(crops), D) float32 unit-norm embeddings, in the order of ``crops``.
    """
    order = list(dict.fromkeys(spec for spec, _ in crops))
    rows: dict[ImageSpec, list[int]] = {spec: [] for spec in order}
    for i, (spec, _) in enumerate(crops):
        rows[spec].append(i)
    frames = [images[spec] for spec in order]
    boxes = [np.stack([crops[i][1] for i in rows[spec]]).astype(np.float32) for spec in order]
    per_image = encoder.embed(frames, boxes)
    out = None
    for spec, emb in zip(order, per_image, strict=True):
        emb = np.asarray(emb, np.float32)
        if out is None:
            out = np.empty((len(crops), emb.shape[1]), np.float32)
        out[rows[spec]] = emb
    return out


# ----------------------------------------------------------------------------------------- similarity


def cmd_similarity(args: argparse.Namespace) -> int:
    path = _resolve(args.model, args)
    specs = [parse_image_spec(t, args.data_dir) for t in (args.image1, args.image2)]
    boxes_tlwh = [parse_box_tlwh(b) for b in (args.boxes or (None, None))]
    images = load_images(specs)
    crops = [(s, box_tlbr_in_image(b, images[s].shape, str(s))) for s, b in zip(specs, boxes_tlwh, strict=True)]
    encoder = _open_encoder(path, args)
    emb = embed_crops(encoder, images, crops)
    cos, dist, dsim = pair_scores(emb[0], emb[1])
    print(f"model                {_model_label(args.model)} ({path})")
    for k, (spec, tlbr) in enumerate(crops, 1):
        l, t, r, b = (float(v) for v in tlbr)
        print(f"image{k}               {spec}  box {l:g},{t:g},{r - l:g},{b - t:g} (left,top,width,height px)")
    print(f"cosine_similarity    {cos:.4f}  (inner product of the L2-normalised features; -1..1, higher = more alike)")
    print(f"euclidean_distance   {dist:.4f}  (|f1 - f2| of the L2-normalised features = sqrt(2 - 2 cos); 0..2)")
    print(f"distance_similarity  {dsim:.4f}  (1 / (1 + euclidean_distance); 1/3..1, higher = more alike)")
    return 0


# ----------------------------------------------------------------------------------------- reid-table


@dataclass(frozen=True)
class Pair:
    """One row of a pairs file. Boxes are (4,) tlwh pixels or None (whole image)."""

    name: str
    spec1: ImageSpec
    box1_tlwh: np.ndarray | None
    spec2: ImageSpec
    box2_tlwh: np.ndarray | None
    id1: int | None
    id2: int | None


def _parse_id(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"id '{text}' is not an integer") from None


def read_pairs(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[Pair]:
    """Read a pairs CSV (``name,image1,box1,image2,box2[,id1,id2]``; ``#`` lines are comments).

    Boxes are ``l;t;w;h`` pixels or empty; relative image paths are relative to the file's folder.

    Raises:
        UserError: missing file or columns, a bad box, image spec or id (the message names the line).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"pairs file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read pairs file {p}: {exc}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise UserError(f"{p}: empty pairs file (expected a header {','.join(_PAIR_COLUMNS)},id1,id2)")
    rows = list(csv.reader([line for _, line in lines]))
    header = [h.strip() for h in rows[0]]
    missing = [c for c in _PAIR_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{p}:{lines[0][0]}: missing column(s) {', '.join(missing)} "
                        f"(header must name {','.join(_PAIR_COLUMNS)} and optionally id1,id2)")
    col = {h: i for i, h in enumerate(header)}
    pairs: list[Pair] = []
    names: set[str] = set()
    for (lineno, _), row in zip(lines[1:], rows[1:], strict=True):
        where = f"{p}:{lineno}"
        value = {key: (row[i].strip() if i < len(row) else "") for key, i in col.items()}
        name = value.get("name") or f"pair{len(pairs) + 1}"
        if name in names:
            raise UserError(f"{where}: duplicate pair name '{name}'")
        names.add(name)
        try:
            pairs.append(Pair(name,
                              parse_image_spec(value["image1"], data_dir, p.parent), parse_box_tlwh(value["box1"], ";"),
                              parse_image_spec(value["image2"], data_dir, p.parent), parse_box_tlwh(value["box2"], ";"),
                              _parse_id(value.get("id1", "")), _parse_id(value.get("id2", ""))))
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
    if not pairs:
        raise UserError(f"{p}: no pairs below the header")
    return pairs


@dataclass(frozen=True)
class TableRow:
    """Scores of one model: ``cos[k]`` is the cosine of pair k; summaries are None when not computable."""

    model: str
    cos: list[float]
    mean_same: float | None
    mean_diff: float | None
    rank1: float | None


def _crop_key(spec: ImageSpec, tlbr: np.ndarray) -> tuple:
    return (spec, tuple(round(float(v), 2) for v in tlbr))


def score_models(pairs: Sequence[Pair], models: Sequence[str], args: argparse.Namespace,
                 transforms: dict | None = None) -> tuple[list[TableRow], dict]:
    """Embed every distinct crop once per model (one batched call) and score the pairs.

    ``transforms`` (suffix -> function of the (N, D) unit-norm crop features, e.g. a site adaptation) adds one
    row per model and suffix, scored on the transformed features.

    Returns:
        (one row per model, info) with info keys ``crops`` (distinct crops), ``queries`` (rank-1 queries),
        ``same``/``diff`` (number of same-/different-person pairs).
    Raises:
        UserError: as ``load_images``/``box_tlbr_in_image``/``resolve_model``, or a crop given two ids.
    """
    paths = [_resolve(m, args) for m in models]  # fail on a missing model before any work
    images = load_images([s for pr in pairs for s in (pr.spec1, pr.spec2)])
    crops: dict[tuple, int] = {}
    crop_list: list[tuple[ImageSpec, np.ndarray]] = []
    crop_ids: list[int | None] = []
    pair_idx: list[tuple[int, int]] = []
    for pr in pairs:
        idx = []
        for spec, box, pid in ((pr.spec1, pr.box1_tlwh, pr.id1), (pr.spec2, pr.box2_tlwh, pr.id2)):
            tlbr = box_tlbr_in_image(box, images[spec].shape, f"{spec} (pair {pr.name})")
            key = _crop_key(spec, tlbr)
            if key not in crops:
                crops[key] = len(crop_list)
                crop_list.append((spec, tlbr))
                crop_ids.append(pid)
            k = crops[key]
            if pid is not None:
                if crop_ids[k] is None:
                    crop_ids[k] = pid
                elif crop_ids[k] != pid:
                    raise UserError(f"pair {pr.name}: the crop {spec} {tlbr.tolist()} has ids {crop_ids[k]} and {pid}")
            idx.append(k)
        pair_idx.append((idx[0], idx[1]))
    kind = [None if pr.id1 is None or pr.id2 is None else pr.id1 == pr.id2 for pr in pairs]
    rows = []
    queries = 0
    for model, path in zip(models, paths, strict=True):
        encoder = _open_encoder(path, args)
        raw = embed_crops(encoder, images, crop_list)
        for suffix, fn in [("", None), *(transforms or {}).items()]:
            emb = raw if fn is None else np.asarray(fn(raw), np.float32)
            cos = [pair_scores(emb[a], emb[b])[0] for a, b in pair_idx]
            same = [c for c, k in zip(cos, kind, strict=True) if k is True]
            diff = [c for c, k in zip(cos, kind, strict=True) if k is False]
            r1, queries = rank1(emb, crop_ids)
            rows.append(TableRow(_model_label(model) + suffix, cos, float(np.mean(same)) if same else None,
                                 float(np.mean(diff)) if diff else None, r1))
    info = {"crops": len(crop_list), "queries": queries, "same": kind.count(True), "diff": kind.count(False),
            "ids": len({i for i in crop_ids if i is not None})}
    return rows, info


def format_table(pair_names: Sequence[str], rows: Sequence[TableRow], info: dict) -> str:
    """One line per model: the cosine of every pair, then mean_same, mean_diff and rank1; then the definitions."""
    with_ids = info["same"] + info["diff"] > 0
    extra = ["mean_same", "mean_diff", "rank1"] if with_ids else []
    mw = max([len("model")] + [len(r.model) for r in rows])
    widths = [max(len(n), 6) for n in list(pair_names) + extra]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = ["  ".join(["model".ljust(mw)] + [n.rjust(w) for n, w in zip(list(pair_names) + extra, widths,
                                                                          strict=True)])]
    for r in rows:
        vals = list(r.cos) + ([r.mean_same, r.mean_diff, r.rank1] if with_ids else [])
        lines.append("  ".join([r.model.ljust(mw)] + [fmt(v).rjust(w) for v, w in zip(vals, widths, strict=True)]))
    lines.append("")
    lines.append(f"cells: cosine similarity (inner product of the L2-normalised features, -1..1) of each pair; "
                 f"{len(pair_names)} pairs, {info['crops']} distinct crops.")
    if with_ids:
        lines.append(f"mean_same / mean_diff: mean cosine over the {info['same']} pairs with id1 == id2 / "
                     f"the {info['diff']} pairs with id1 != id2.")
        lines.append(f"rank1: fraction of the {info['queries']} queries whose most cosine-similar other crop has the "
                     f"same id; queries = distinct crops with an id and at least one other crop of that id, "
                     f"gallery = every other distinct crop with an id ({info['ids']} ids), the query itself excluded.")
    return "\n".join(lines)


def cmd_reid_table(args: argparse.Namespace) -> int:
    pairs = read_pairs(args.pairs, args.data_dir)
    rows, info = score_models(pairs, args.models, args)
    print(format_table([p.name for p in pairs], rows, info))
    return 0


# ----------------------------------------------------------------------------------------- CLI


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", help="where model names are looked up (default: $MCTRACK_MODEL_DIR, then cache)")
    p.add_argument("--data-dir", help="what ${DATA} in image specs stands for "
                                      "(default: $MCTRACK_DATA_DIR, else ../shared/data beside the project)")
    p.add_argument("--providers", default="cuda,cpu",
                   help="ONNX Runtime execution providers in preference order (tensorrt,cuda,cpu)")
    p.add_argument("--threads", type=int, default=0, help="CPU inference threads (0 = all cores)")


def register(subparsers) -> None:
    """Add the ``similarity`` and ``reid-table`` subcommands to an argparse subparsers object."""
    s = subparsers.add_parser(
        "similarity", help="ReID similarity of two person images (cosine, Euclidean, distance-based)",
        description="Embed two person crops with a ReID model and print their cosine similarity, the Euclidean "
                    "distance between the L2-normalised features (sqrt(2 - 2 cos)) and the distance similarity "
                    "1 / (1 + distance). An image is a file or VIDEO@FRAME (1-based); ${DATA} stands for the data "
                    "folder.")
    s.add_argument("image1", help="person crop, or a full frame with --boxes (IMAGE or VIDEO@FRAME)")
    s.add_argument("image2", help="the second image, as image1")
    s.add_argument("--model", default=DEFAULT_MODEL, help=f"ReID ONNX model: path or name (default {DEFAULT_MODEL})")
    s.add_argument("--boxes", nargs=2, metavar=("L,T,W,H", "L,T,W,H"),
                   help="one box per image (left,top,width,height px; '-' = whole image); default: whole images")
    _common_options(s)
    s.set_defaults(func=cmd_similarity)

    t = subparsers.add_parser(
        "reid-table", help="cosine similarity of every pair in a CSV for one or more ReID models",
        description="One row per model, one column per pair (cosine similarity), plus mean same-/different-person "
                    "similarity and rank-1 when the file has id1,id2. CSV columns: name,image1,box1,image2,box2,"
                    "id1,id2 (box l;t;w;h px or empty = whole image; '#' lines are comments).")
    t.add_argument("--pairs", required=True, help="pairs CSV (e.g. bench/results/pets09_pairs.csv)")
    t.add_argument("--models", nargs="+", default=[DEFAULT_MODEL], help="ReID ONNX models: paths or names")
    _common_options(t)
    t.set_defaults(func=cmd_reid_table)
