"""Rendering HTTP/1.1 responses as bytes.

A response is written as three parts: the status line with Date (and a
Connection header when needed), which ``state.ServerState`` caches per
second; the header fields, which are rendered once per answer; and the body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.utils import formatdate
from enum import IntEnum
from pathlib import Path

SERVER = b"modgate"

CT_JSON = b"application/json"
CT_TEXT = b"text/plain; charset=utf-8"
CT_ZIP = b"application/zip"
CT_METRICS = b"text/plain; version=0.0.4"

IMMUTABLE_MAX_AGE = 31536000
CC_IMMUTABLE = b"public, max-age=%d, immutable" % IMMUTABLE_MAX_AGE
CC_NO_STORE = b"no-store"
"""For errors and health pages. Not-found answers are not cached by clients or
shared caches either: the gateway keeps its own short negative cache, and a
front cache holding a 404 would hide a version published a moment later
from the retry of a user who just tagged it."""

ALLOW = b"GET, HEAD"
RETRY_AFTER = b"1"
"""Seconds a client told 503 (a limit reached) should wait before it asks again."""
ETAG_HEX_CHARS = 32

REASONS: dict[int, bytes] = {
    200: b"OK",
    302: b"Found",
    304: b"Not Modified",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    410: b"Gone",
    413: b"Content Too Large",
    414: b"URI Too Long",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


class ConnMode(IntEnum):
    """How the connection continues after a response."""

    KEEP = 0  # HTTP/1.1 persistent: no header needed
    KEEP_10 = 1  # HTTP/1.0 client that asked for keep-alive
    CLOSE = 2


CONNECTION_LINES = (b"", b"Connection: keep-alive\r\n", b"Connection: close\r\n")


def cache_control_max_age(seconds: int) -> bytes:
    return b"public, max-age=%d" % seconds


def http_date(when: float) -> bytes:
    return formatdate(when, usegmt=True).encode("ascii")


def status_prefix(status: int, date: bytes, mode: ConnMode) -> bytes:
    reason = REASONS.get(status, b"Unknown")
    return b"HTTP/1.1 %d %s\r\nDate: %s\r\n%s" % (status, reason, date, CONNECTION_LINES[mode])


def render_fields(
    content_type: bytes | None,
    length: int | None,
    cache_control: bytes,
    etag: bytes | None = None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """The header fields after the status line and Date, ending with the blank line."""
    parts = [b"Server: ", SERVER, b"\r\n"]
    if content_type is not None:
        parts += [b"Content-Type: ", content_type, b"\r\n"]
    if length is not None:
        parts += [b"Content-Length: %d\r\n" % length]
    parts += [b"Cache-Control: ", cache_control, b"\r\n"]
    if etag is not None:
        parts += [b"ETag: ", etag, b"\r\n"]
    for name, value in extra:
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


def etag_for(body: bytes) -> bytes:
    """A strong entity tag derived from the content."""
    return b'"%s"' % hashlib.sha256(body).hexdigest()[:ETAG_HEX_CHARS].encode("ascii")


def weak_etag_for(validator: bytes) -> bytes:
    """A weak entity tag from what names the content (a zip's h1): equal content, equal tag.

    Weak because two zips with the same files can differ in their bytes
    (compression); a weak tag promises equivalent content, not equal bytes.
    """
    return b'W/"%s"' % hashlib.sha256(validator).hexdigest()[:ETAG_HEX_CHARS].encode("ascii")


def etag_for_file(path: Path) -> bytes:
    """``etag_for`` of a file's content, read in chunks (run it off the event loop)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return b'"%s"' % digest.hexdigest()[:ETAG_HEX_CHARS].encode("ascii")


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"`` either way round."""
    value = if_none_match.strip()
    if value == b"*":
        return True
    opaque = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == opaque for tag in value.split(b","))


@dataclass(slots=True)
class Reply:
    """A response ready to write: ``head`` holds the fields after status and Date.

    The body is ``body`` when in memory, or the first ``size`` bytes of
    ``path``. ``route`` labels the metrics; ``hit`` says it came from memory;
    ``fetched`` says a source was asked for it (the ``cache="miss"`` of the
    request-duration histogram).
    """

    status: int
    head: bytes
    body: bytes = b""
    path: Path | None = None
    size: int = 0
    route: str = "other"
    hit: bool = False
    etag: bytes | None = None
    close: bool = False
    fetched: bool = False


def not_modified(etag: bytes, route: str, *, hit: bool) -> Reply:
    """The 304 for an immutable answer whose entity tag the client already has."""
    return Reply(304, render_fields(None, None, CC_IMMUTABLE, etag), route=route, hit=hit,
                 etag=etag)  # fmt: skip


def redirect_reply(location: str, route: str, *, fetched: bool) -> Reply:
    """A 302 to ``location`` (a presigned URL): never stored by caches, since the URL expires."""
    if not location.isascii() or not location.isprintable():
        raise ValueError("a redirect location must be printable ASCII")
    head = render_fields(None, 0, CC_NO_STORE, extra=((b"Location", location.encode("ascii")),))
    return Reply(302, head, route=route, fetched=fetched)


def error_reply(status: int, message: str, route: str = "other", *, close: bool = False) -> Reply:
    """A text/plain error whose body is the one-line reason."""
    line = message.replace("\r", " ").replace("\n", " ")
    body = (line + "\n").encode("utf-8", "replace")
    extra: tuple[tuple[bytes, bytes], ...] = ()
    if status == 405:
        extra = ((b"Allow", ALLOW),)
    elif status == 503:
        extra = ((b"Retry-After", RETRY_AFTER),)  # a limit was reached: soon is fine
    head = render_fields(CT_TEXT, len(body), CC_NO_STORE, extra=extra)
    return Reply(status, head, body, size=len(body), route=route, close=close)
