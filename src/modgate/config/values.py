"""Reading one setting's text: a port, a size, seconds, a count, on/off, patterns.

Each reader takes the text and ``bad``, which makes the ``ConfigError`` that
names the setting and echoes its value, and returns the parsed value.
"""

from __future__ import annotations

import re
from typing import Any

from modgate.protocol.patterns import PatternList, parse_patterns
from modgate.server.forwarded import Network, parse_networks
from modgate.sources.vcs_resolve import parse_rewrites

MIN_LEASE = 0.5
"""Shortest --redis-lease, in seconds."""
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
FALSE_WORDS = frozenset({"", "false", "off", "no", "0"})
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
}


def on_off(value: str, bad: Any) -> bool:
    word = value.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS or not word:
        raise bad("use on or off")
    return word in TRUE_WORDS


def networks(value: str, bad: Any) -> tuple[Network, ...]:
    try:
        return parse_networks(value)
    except ValueError as exc:
        raise bad(str(exc)) from None


MAX_CONNECTIONS_LIMIT = 1 << 20


def connections(value: str, bad: Any, *, auto: bool = True) -> int:
    """A connection count from 1 up; with ``auto``, also ``auto`` (0: the descriptor limit)."""
    text = value.strip().lower()
    if auto and text == "auto":
        return 0
    if not text.isdigit() or not 1 <= int(text) <= MAX_CONNECTIONS_LIMIT:
        raise bad(
            f"use a whole number from 1 to {MAX_CONNECTIONS_LIMIT}" + (", or auto" if auto else "")
        )
    return int(text)


def host_patterns(value: str, bad: Any) -> PatternList:
    """GOPRIVATE-style globs matched against host names (so without a ``/``)."""
    try:
        patterns = parse_patterns(value)
    except ValueError as exc:
        raise bad("direct_allow_hosts", str(exc)) from None
    for pattern in patterns.patterns:
        if "/" in pattern:
            raise bad(
                "direct_allow_hosts",
                f"pattern {pattern!r} has a '/'; these patterns match host names only",
            )
    return patterns


def git_rewrites(value: str, bad: Any) -> tuple[tuple[str, str], ...]:
    """``PREFIX=URL,PREFIX=URL``: which git repository serves a module path prefix."""
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        prefix, sep, url = item.partition("=")
        if not sep:
            raise bad("use PREFIX=URL pairs, e.g. corp.example.com/lib=https://git.corp/lib.git")
        pairs[prefix.strip()] = url.strip()
    try:
        return parse_rewrites(pairs)
    except ValueError as exc:
        raise bad(str(exc)) from None


def parse_listen(value: str, bad: Any) -> tuple[str, int]:
    m = re.fullmatch(r"\s*(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]*):(\d{1,5})\s*", value)
    if not m:
        raise bad("use HOST:PORT, for example 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080")
    host, port = m.group(1).strip("[]") or "0.0.0.0", int(m.group(2))
    if port > 65535:
        raise bad("the port must be 0 to 65535")
    return host, port


def parse_size(value: str, bad: Any) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value)
    if not m or m.group(2).upper() not in SIZE_UNITS:
        raise bad(
            "use a byte count such as 67108864, 64MiB or 1GiB "
            "(KiB, MiB, GiB are powers of 1024; KB, MB, GB powers of 1000)"
        )
    return int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]


def lease(value: str, bad: Any) -> float:
    time = seconds(value, bad)
    if time < MIN_LEASE:
        raise bad(f"use at least {MIN_LEASE} seconds (the lease is extended every third of it)")
    return time


def seconds(value: str, bad: Any) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise bad("use a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise bad("use a non-negative number of seconds")
    return seconds


def workers(value: str, bad: Any) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 256:
        raise bad("use a whole number of processes from 1 to 256")
    return int(value)
