"""``--redis`` URLs: which forms are accepted, how they are shown, how a client is made.

Three kinds of URL name a Redis:

- ``redis://[USER:PASSWORD@]HOST[:PORT][/DB]``, ``rediss://...`` (TLS) and
  ``unix://PATH``: one server, as redis-py reads them;
- ``redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``:
  the master of ``SERVICE`` as Redis Sentinel reports it, asked of the
  sentinels listed (``[::1]:26379`` for an IPv6 address). The credentials are
  the master's; the sentinels are asked without them. After a failover the
  client follows the new master.

Parsing is pure and strict: a bad URL is refused at start with one line
saying what is accepted. Passwords never leave ``redacted``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

SCHEMES = ("redis://", "rediss://", "unix://")
SENTINEL_SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379
MAX_SENTINELS = 16
MAX_DB = 1 << 16
SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
_ACCEPTED = (
    "use redis://HOST[:PORT][/DB], rediss://... (TLS), unix://PATH or "
    "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
)


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def check_url(url: str) -> str:
    """``url`` when it is an accepted Redis URL; raises ValueError saying what is accepted."""
    if url.startswith(SENTINEL_SCHEME):
        parse_sentinel(url)
        return url
    if not url.startswith(SCHEMES) or any(c.isspace() for c in url):
        raise ValueError(_ACCEPTED)
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError as exc:
        raise ValueError(f"{exc}; {_ACCEPTED}") from None
    if not (host or url.startswith("unix://")):
        raise ValueError(_ACCEPTED)
    return url


def parse_sentinel(url: str) -> SentinelURL:
    """The parts of a ``redis+sentinel://`` URL; ValueError naming the bad part."""
    if not url.startswith(SENTINEL_SCHEME) or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(_ACCEPTED)
    rest = url[len(SENTINEL_SCHEME) :]
    if "?" in rest or "#" in rest:
        raise ValueError("a redis+sentinel:// URL takes no query or fragment")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part) for part in hosts.split(","))
    if len(sentinels) > MAX_SENTINELS:
        raise ValueError(f"at most {MAX_SENTINELS} sentinels in a redis+sentinel:// URL")
    parts = path.split("/")
    if not parts[0]:
        raise ValueError("redis+sentinel:// needs the service name: .../SERVICE[/DB]")
    if not SERVICE_NAME.fullmatch(parts[0]):
        raise ValueError(
            "the sentinel service name must be letters, digits, '.', '_' or '-' "
            "(64 at most), as in 'sentinel monitor NAME ...'"
        )
    if len(parts) > 2 or (len(parts) == 2 and not _is_db(parts[1])):
        raise ValueError(f"after the service name only a database number: /SERVICE[/DB < {MAX_DB}]")
    db = int(parts[1]) if len(parts) == 2 else 0
    return SentinelURL(sentinels, parts[0], db, username, password)


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or not _is_ipv6(host) or (port and not port.startswith(":")):
            raise ValueError(f"bad sentinel address {text!r}: use [IPV6]:PORT")
        port = port[1:]
    else:
        host, _, port = text.partition(":")
        if not _HOST.fullmatch(host):
            raise ValueError(f"bad sentinel address {text!r}: use HOST:PORT")
    if not port:
        return host, DEFAULT_SENTINEL_PORT
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad sentinel port in {text!r}: use a number from 1 to 65535")
    return host, int(port)


def _is_ipv6(host: str) -> bool:
    return bool(host) and len(host) <= 45 and all(c in "0123456789abcdefABCDEF:." for c in host)


def _is_db(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 6 and int(text) < MAX_DB


def redacted(url: str) -> str:
    """``url`` without its password (for logs and /readyz)."""
    if url.startswith(SENTINEL_SCHEME):
        netloc = url[len(SENTINEL_SCHEME) :].partition("/")[0]
        userinfo, at, hosts = netloc.rpartition("@")
        if not at:
            return url
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}:***" if colon and user else "***"
        return f"{SENTINEL_SCHEME}{shown}@{hosts}{url[len(SENTINEL_SCHEME) + len(netloc) :]}"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return parts._replace(netloc=user + netloc).geturl()


def connect(url: str, *, connect_timeout: float, timeout: float, retries: int) -> Any:
    """A redis-py client for ``url`` (checked by ``check_url``); connects on first use.

    ``retries`` is how often a command that failed on a connection or a
    timeout is sent again, at once. The handshake of a new connection is
    retried as often inside each try, so a server that accepts connections
    and never answers holds the caller ``(retries + 1) ** 2`` timeouts.
    """
    import redis  # noqa: PLC0415  (only a process given --redis pays for the import)
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415
    from redis.sentinel import Sentinel  # noqa: PLC0415

    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), retries),
    }
    if not url.startswith(SENTINEL_SCHEME):
        return redis.Redis.from_url(url, health_check_interval=10, **options)
    parsed = parse_sentinel(url)
    sentinel = Sentinel(list(parsed.sentinels), **options)
    return sentinel.master_for(
        parsed.service,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        health_check_interval=10,
    )
