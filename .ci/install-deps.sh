#!/usr/bin/env bash
# System packages the test suite needs beyond requirements*.txt. Idempotent: installs only what is missing.
#   - GStreamer's RTSP server with Python bindings and the MJPEG/RTP elements: tests/rtsp_server.py
#     serves a real RTSP stream on 127.0.0.1 to tests/test_rtsp.py (run under /usr/bin/python3).
#   - Debian's chromium and chromium-driver: tests/test_console.py drives the identity console in headless Chromium
#     (through Selenium), and bench/console_screenshot.py makes docs/console.png.
#   - redis-server (Redis 7): tests/redis_server.py starts a real broker on 127.0.0.1 for tests/test_fleet.py.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

install_redis() {
    if command -v redis-server >/dev/null 2>&1; then
        echo "install-deps: redis-server already installed"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: no apt-get here; install redis-server (Redis >= 6.2) by hand, else the fleet tests skip" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    command -v redis-server >/dev/null
    echo "install-deps: installed redis-server"
}
install_redis

install_browser() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        echo "install-deps: chromium and chromium-driver already installed"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: no apt-get here; install chromium and chromium-driver by hand, else the console's browser test skips" >&2
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    echo "install-deps: installed chromium chromium-driver"
}
install_browser

PACKAGES=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good)

have_rtsp_server() {
    /usr/bin/python3 - <<'PY' >/dev/null 2>&1
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
missing = [e for e in ("appsrc", "videoconvert", "jpegenc", "rtpjpegpay") if Gst.ElementFactory.find(e) is None]
raise SystemExit(1 if missing else 0)
PY
}

if [ -x /usr/bin/python3 ] && have_rtsp_server; then
    echo "install-deps: GStreamer RTSP server already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: no apt-get here; install ${PACKAGES[*]} (or equivalents) by hand, else the RTSP tests skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends python3 "${PACKAGES[@]}" >/dev/null
have_rtsp_server
echo "install-deps: installed ${PACKAGES[*]}"
