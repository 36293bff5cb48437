"""Find model files: explicit path, then the model directory, then the user cache, then download.

The model directory comes from (first set wins) the ``model_dir`` argument, the
``MCTRACK_MODEL_DIR`` environment variable. Names are looked up there and in its
``reid/`` and ``detector/`` sub-folders, with and without a file extension. Known
models missing everywhere are downloaded into the cache (``MCTRACK_CACHE`` or
``~/.cache/mctrack``) and checked against their sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tracker.errors import UserError
from tracker.io.atomic import atomic_path

ENV_MODEL_DIR = "MCTRACK_MODEL_DIR"
ENV_CACHE = "MCTRACK_CACHE"
_EXTENSIONS = (".onnx", ".engine", ".pt", ".pth")
_SUBDIRS = ("", "reid", "detector")


@dataclass(frozen=True)
class KnownModel:
    filename: str
    url: str
    sha256: str | None  # None: size/sha not pinned upstream; the file is still verified to be non-empty


KNOWN_MODELS: dict[str, KnownModel] = {
    "yolov8n": KnownModel(
        "yolov8n.pt", "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt", None
    ),
    "yolo11n": KnownModel(
        "yolo11n.pt", "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n.pt", None
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "mctrack")


def _candidates(root: Path, name: str):
    for sub in _SUBDIRS:
        base = root / sub / name if sub else root / name
        yield base
        if not base.suffix:
            for ext in _EXTENSIONS:
                yield base.with_name(base.name + ext)


def resolve_model(name_or_path: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                  download: bool = True) -> Path:
    """Return an existing file for a model path or name, downloading known models when allowed.

    Raises:
        UserError: with one line saying where it looked, when nothing is found.
    """
    raw = str(name_or_path)
    path = Path(raw).expanduser()
    if path.is_file():
        return path
    roots = [Path(p).expanduser() for p in (model_dir, os.environ.get(ENV_MODEL_DIR)) if p]
    roots.append(cache_dir())
    looked = []
    for root in roots:
        for cand in _candidates(root, raw):
            looked.append(str(cand.parent))
            if cand.is_file():
                return cand
    stem = Path(raw).stem if Path(raw).suffix in _EXTENSIONS else raw
    known = KNOWN_MODELS.get(stem)
    if known is not None and download:
        return _download(known, cache_dir() / known.filename)
    where = ", ".join(dict.fromkeys(looked))
    hint = f" Known names: {', '.join(sorted(KNOWN_MODELS))}." if KNOWN_MODELS else ""
    raise UserError(f"model '{raw}' not found (looked in: {where}). Give a file path or set {ENV_MODEL_DIR}.{hint}")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(model: KnownModel, dest: Path) -> Path:
    try:
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(model.url, timeout=30) as resp:
                shutil.copyfileobj(resp, out)
            if os.path.getsize(tmp) == 0:
                raise UserError(f"download of {model.url} gave an empty file")
            if model.sha256 and sha256_of(tmp) != model.sha256:
                raise UserError(f"download of {model.url} failed its checksum; not using it")
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(f"cannot download model {model.filename} from {model.url}: {exc}") from None
