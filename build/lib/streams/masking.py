"""Keep credentials out of logs, errors and outputs.

Camera URLs often carry a user and password (``rtsp://admin:secret@10.0.0.5/stream1``) or
a token in the query (``http://cam/video.mjpg?user=admin&pwd=secret``). Everything in
``streams`` that logs, raises or reports a source goes through ``mask_url`` / ``mask_text``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# Query keys whose values are secrets (compared lower-case).
SECRET_QUERY_KEYS = frozenset({
    "password", "passwd", "pass", "pwd", "psw", "user", "username", "usr", "login", "auth",
    "token", "access_token", "accesstoken", "key", "apikey", "api_key", "secret", "signature", "sig",
    "credentials",
})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.S)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def mask_url(url: str) -> str:
    """``url`` with its user info replaced by ``***`` and secret query values by ``***``.

    ``rtsp://user:pass@host:554/path`` -> ``rtsp://***@host:554/path``. The user info is
    everything up to the last ``@`` in the URL, so a password holding ``@``, ``/``, ``?`` or
    ``#`` is masked whole (a query holding an ``@`` is masked too: safe, if less readable).
    Strings that are not URLs (file paths, webcam indices) come back unchanged.
    """
    url = str(url)
    m = _SCHEME.match(url)
    if not m:
        return url
    scheme, rest = m.groups()
    at = rest.rfind("@")
    if at >= 0:
        rest = "***@" + rest[at + 1:]
    q = rest.find("?")
    if q >= 0:
        head, query = rest[:q], rest[q + 1:]
        query, hash_, fragment = query.partition("#")
        parts = []
        for part in query.split("&"):
            key, eq, _value = part.partition("=")
            if eq and unquote(key).strip().lower() in SECRET_QUERY_KEYS:
                part = f"{key}=***"
            parts.append(part)
        rest = head + "?" + "&".join(parts) + hash_ + fragment
    return scheme + rest


def url_secrets(url: str) -> list[str]:
    """The secret substrings of ``url`` (user info, raw and decoded, and secret query values), longest first."""
    url = str(url)
    m = _SCHEME.match(url)
    if not m:
        return []
    rest = m.group(2)
    found: set[str] = set()
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        found.add(userinfo)
        found.update(p for p in userinfo.split(":") if p)
        found.update(unquote(s) for s in list(found))
    q = rest.find("?")
    if q >= 0:
        for part in rest[q + 1:].partition("#")[0].split("&"):
            key, eq, value = part.partition("=")
            if eq and value and unquote(key).strip().lower() in SECRET_QUERY_KEYS:
                found.update({value, unquote(value)})
    # Very short fragments ("a", "1") would mangle unrelated text; the URL mask already covers them.
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def mask_text(text: str, *urls: str) -> str:
    """``text`` with every URL in it masked, and every secret of ``urls`` replaced by ``***``.

    Pass the raw source URL(s) so that secrets also vanish when a library quotes them
    without their URL around them (say, in an error message).
    """
    text = str(text)
    for url in urls:
        masked = mask_url(url)
        if masked != url:
            text = text.replace(str(url), masked)
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, "***")
    return text
