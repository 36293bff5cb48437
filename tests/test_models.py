"""Model lookup order (path, model dir, env, cache) and the checked download, on loopback."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from tracker.errors import UserError
from tracker.models import lookup as models


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(models.ENV_MODEL_DIR, raising=False)
    return tmp_path


def test_lookup_order(isolated, model_dir, monkeypatch):
    explicit = model_dir / "reid" / "osnet_x0_25_msmt17.onnx"
    assert models.resolve_model(explicit) == explicit
    assert models.resolve_model("osnet_x0_25_msmt17", model_dir=model_dir) == explicit
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(model_dir))
    assert models.resolve_model("osnet_x0_25_msmt17.onnx") == explicit
    assert models.resolve_model("yolov8n_int8") == model_dir / "detector" / "yolov8n_int8.onnx"
    cached = isolated / "cache" / "mine.onnx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    monkeypatch.delenv(models.ENV_MODEL_DIR)
    assert models.resolve_model("mine") == cached


def test_unknown_model_is_one_clear_line(isolated):
    with pytest.raises(UserError) as exc:
        models.resolve_model("no_such_model")
    msg = str(exc.value)
    assert "model 'no_such_model' not found" in msg and models.ENV_MODEL_DIR in msg and "\n" not in msg


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    payload = b"pretend weights" * 100
    (root / "m.pt").write_bytes(payload)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", payload
    httpd.shutdown()


def test_download_with_checksum(isolated, server, monkeypatch):
    url, payload = server
    good = models.KnownModel("m.pt", f"{url}/m.pt", hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(models.KNOWN_MODELS, "m", good)
    path = models.resolve_model("m")
    assert path.read_bytes() == payload and path.parent == isolated / "cache"
    assert models.resolve_model("m") == path  # second time from the cache


def test_download_bad_checksum_or_unreachable(isolated, server, monkeypatch):
    url, _ = server
    monkeypatch.setitem(models.KNOWN_MODELS, "bad", models.KnownModel("bad.pt", f"{url}/m.pt", "0" * 64))
    with pytest.raises(UserError, match="failed its checksum"):
        models.resolve_model("bad")
    assert not list((isolated / "cache").glob("bad*"))  # nothing half-written left behind
    monkeypatch.setitem(models.KNOWN_MODELS, "gone", models.KnownModel("gone.pt", f"{url}/missing.pt", None))
    with pytest.raises(UserError, match="cannot download model gone.pt"):
        models.resolve_model("gone")
