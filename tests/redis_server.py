"""A real ``redis-server`` on a free loopback port for the fleet tests and benchmarks (no fake broker).

``.ci/install-deps.sh`` installs Debian's ``redis-server``; without it the fleet tests skip and say so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "redis-server not installed (Debian package redis-server): run .ci/install-deps.sh"


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``redis-server`` as a child process with AOF persistence in ``workdir``; ``stop()``/``start()`` keep the
    port and the data (a broker restart), ``kill()`` is SIGKILL.

    Args:
        workdir: where the append-only file lives.
        password: ``requirepass`` (AUTH), or None.
        user: with ``password``, an ACL user with that password (the default user then has none).
    """

    def __init__(self, workdir: str | Path, password: str | None = None, user: str | None = None,
                 port: int | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password, self.user = password, user
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir), "--daemonize", "no",
               "--loglevel", "warning", "--logfile", str(self.dir / "redis.log")]
        if self.password and self.user:
            cmd += ["--user", "default", "off", "--user", self.user, "on", f">{self.password}", "~*", "&*", "+@all"]
        elif self.password:
            cmd += ["--requirepass", self.password]
        return cmd

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: "
                                   f"{(self.dir / 'redis.log').read_text()[-500:]}")
            if self._ping():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {timeout} s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
            return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH") or b"AUTH" in reply
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM and wait (AOF flushed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
