"""The transport between edges and the identity service, and its Redis Streams implementation.

The interface is deliberately narrow so that another broker (Kafka: topics for streams, consumer
groups with committed offsets for acknowledgements) can be added without touching the registry or
the service: ``publish`` (append, bounded retention), ``consume`` (a consumer group's new or pending
entries) + ``ack``, ``read`` (replay one stream from an id), ``trim_age``, and one counter
(``get_counter``/``set_counter``) that keeps the highest global id ever published.

Entries are ``(entry_id, fields)`` with ``fields`` a ``dict[bytes, bytes]``; ``entry_id`` is the
broker's id (for Redis ``<ms>-<seq>``, the broker's clock in milliseconds).
"""

from __future__ import annotations

import logging
import time

from streams.masking import mask_url
from tracker.errors import UserError

log = logging.getLogger(__name__)


class TransportDown(Exception):
    """The broker cannot be reached now (connection refused, timed out, restarting). Retry later."""


class Transport:
    """What the fleet needs from a broker."""

    def publish(self, items: list[tuple[str, dict]]) -> list[str]:
        """Append each ``(stream, fields)`` in order (one round trip); returns the entry ids."""
        raise NotImplementedError

    def ensure_group(self, stream: str, group: str) -> None:
        """Create the consumer group at the start of ``stream`` when it does not exist."""
        raise NotImplementedError

    def consume(self, stream: str, group: str, consumer: str, count: int, block_ms: int,
                pending: bool = False, after: str = "0-0") -> list[tuple[str, dict]]:
        """New entries for ``consumer`` (or, ``pending``, those delivered to it, not acknowledged, after
        id ``after``)."""
        raise NotImplementedError

    def claim(self, stream: str, group: str, consumer: str) -> int:
        """Move every pending entry of the group to ``consumer``; returns how many."""
        raise NotImplementedError

    def ack(self, stream: str, group: str, ids: list[str]) -> None:
        raise NotImplementedError

    def read(self, stream: str, after: str, count: int, block_ms: int) -> list[tuple[str, dict]]:
        """Entries of ``stream`` after id ``after`` (``"0"``: from the start; ``"$"``: only new ones)."""
        raise NotImplementedError

    def last_id(self, stream: str) -> str:
        """The id of the newest entry of ``stream`` ("0-0" when empty)."""
        raise NotImplementedError

    def trim_age(self, stream: str, seconds: float) -> None:
        raise NotImplementedError

    def get_counter(self, key: str) -> int:
        raise NotImplementedError

    def set_counter(self, key: str, value: int) -> None:
        """Raise the counter to ``value`` (never lowers it)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


_RAISE_TO = "local v = tonumber(redis.call('GET', KEYS[1]) or '0'); " \
            "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) end; return 1"


class RedisStreamsTransport(Transport):
    """Redis Streams (Redis >= 6.2 for XAUTOCLAIM; Debian's redis-server 7 in CI).

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS).
        username, password: override those of the URL (Redis ACL user / AUTH password).
        tls_ca: CA file for ``rediss://``.
        maxlen: entries kept per stream (``XADD MAXLEN ~``).
        timeout: socket connect/read timeout in seconds (a blocking read adds its block time).

    Raises:
        UserError: wrong password or user (one line, credentials masked), bad URL.
    """

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 tls_ca: str | None = None, maxlen: int = 200_000, timeout: float = 2.0):
        import redis

        self.url = mask_url(url)
        self.maxlen = int(maxlen)
        kwargs = {"socket_connect_timeout": timeout, "socket_timeout": timeout + 5.0, "health_check_interval": 10}
        if username:
            kwargs["username"] = username
        if password:
            kwargs["password"] = password
        if url.startswith("rediss://") and tls_ca:
            kwargs["ssl_ca_certs"] = tls_ca
        try:
            self.r = redis.Redis.from_url(url, **kwargs)
        except ValueError as exc:
            raise UserError(f"fleet.broker {self.url}: {exc}") from None
        self._errors = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)
        self._auth_errors = (redis.AuthenticationError, redis.exceptions.AuthorizationError)
        self._raise_to = self.r.register_script(_RAISE_TO)

    def _call(self, fn, *args, **kwargs):
        import redis

        try:
            return fn(*args, **kwargs)
        except self._auth_errors as exc:
            raise UserError(f"broker {self.url} refused the credentials ({_short(exc)}): check fleet.username / "
                            "fleet.password") from None
        except redis.ResponseError as exc:
            text = str(exc)
            if "NOAUTH" in text or "WRONGPASS" in text or "NOPERM" in text:
                raise UserError(f"broker {self.url} refused the credentials or permissions ({_short(exc)}): check "
                                "fleet.username / fleet.password and the user's ACL") from None
            if text.startswith(("LOADING", "BUSY ", "MASTERDOWN", "TRYAGAIN")):
                raise TransportDown(f"{self.url}: {_short(exc)}") from None
            raise
        except self._errors as exc:
            raise TransportDown(f"{self.url}: {_short(exc)}") from None

    def ping(self) -> None:
        """Check that the broker answers and accepts the credentials (UserError / TransportDown)."""
        self._call(self.r.ping)

    def publish(self, items):
        def run():
            pipe = self.r.pipeline(transaction=False)
            for stream, fields in items:
                pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=True)
            return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]
        return self._call(run)

    def ensure_group(self, stream, group):
        import redis

        try:
            self._call(self.r.xgroup_create, stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def consume(self, stream, group, consumer, count, block_ms, pending=False, after="0-0"):
        res = self._call(self.r.xreadgroup, group, consumer, {stream: after if pending else ">"}, count=count,
                         block=None if pending else (block_ms or None))
        return _entries(res)

    def claim(self, stream, group, consumer):
        n, start = 0, "0-0"
        while True:
            res = self._call(self.r.xautoclaim, stream, group, consumer, 0, start, count=1000)
            start, ids = res[0], res[1]
            n += len(ids)
            if start in (b"0-0", "0-0") or not ids:
                return n

    def ack(self, stream, group, ids):
        for k in range(0, len(ids), 1000):
            self._call(self.r.xack, stream, group, *ids[k:k + 1000])

    def read(self, stream, after, count, block_ms):
        return _entries(self._call(self.r.xread, {stream: after}, count=count, block=block_ms or None))

    def last_id(self, stream):
        res = self._call(self.r.xrevrange, stream, count=1)
        return res[0][0].decode() if res else "0-0"

    def trim_age(self, stream, seconds):
        minid = f"{int((time.time() - seconds) * 1000)}-0"
        self._call(self.r.xtrim, stream, minid=minid, approximate=True)

    def get_counter(self, key):
        v = self._call(self.r.get, key)
        return int(v) if v else 0

    def set_counter(self, key, value):
        self._call(self._raise_to, keys=[key], args=[int(value)])

    def close(self):
        try:
            self.r.close()
        except Exception:  # noqa: BLE001 - closing must not raise
            pass


def _short(exc: BaseException) -> str:
    return mask_url(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _entries(res) -> list[tuple[str, dict]]:
    out = []
    for _stream, entries in res or []:
        for eid, fields in entries:
            out.append((eid.decode() if isinstance(eid, bytes) else str(eid), fields or {}))
    return out


def open_transport(cfg, timeout: float = 2.0) -> Transport:
    """The transport for a ``FleetConfig`` (Redis Streams: ``redis://`` / ``rediss://``)."""
    return RedisStreamsTransport(cfg.broker, cfg.username, cfg.password, cfg.tls_ca, cfg.maxlen, timeout)
