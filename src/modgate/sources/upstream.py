"""One http(s) entry of a GOPROXY list, used as a source.

Every httpx exception is translated here, once, into the error tree::

    200                      -> the body (bounded by a per-kind size limit)
    404                      -> NotFoundError   (the chain may fall through)
    410                      -> GoneError       (the chain may fall through)
    any other status         -> UpstreamError   "<url> answered 503 Service Unavailable: ..."
    DNS, refused, TLS, proxy -> UpstreamError   naming what failed and what to check (a proxy
                                                 from HTTPS_PROXY/HTTP_PROXY that cannot be
                                                 reached is named, not the upstream)
    200 without framing      -> UpstreamError   (no Content-Length, not chunked: a cut
                                                 connection would look like a short body)
    connect/read timeouts    -> UpstreamTimeoutError (also a body under 1 KiB per read timeout)

Transient failures (connection failures, timeouts, broken connections, 429,
502, 503, 504) are retried with jittered exponential backoff; nothing else
is. Every attempt counts in ``modgate_upstream_fetches_total`` and
``modgate_upstream_latency_seconds``; every failed attempt except a plain
404/410 counts in ``modgate_upstream_errors_total`` by kind.

Credentials in the URL (``https://user:token@host``) are sent as basic auth.
They never appear in ``name``, error messages or metric labels: the whole
userinfo shows as ``xxxxx``, and upstream error text is scrubbed of them.
"""

from __future__ import annotations

import asyncio
import http
import os
import random
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from modgate.metrics import Labels, Metrics
from modgate.protocol.errors import (
    GoneError,
    ModgateError,
    NotFoundError,
    StoreError,
    UpstreamError,
    UpstreamTimeoutError,
)
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.goproxy import redact_url
from modgate.protocol.module import ModuleVersion
from modgate.sources.httpclient import ProxyRoute, basic_authorization, proxy_for, stream_get

LIST_MAX_BYTES = 16 << 20
INFO_MAX_BYTES = 64 << 10
"""Limit for .info and @latest answers."""
MOD_MAX_BYTES = 16 << 20
MIN_BYTES_PER_WINDOW = 1024
"""Bytes a body must bring in each read-timeout window (see ``UpstreamProxy._paced``)."""
DEFAULT_PACE_WINDOW = 60.0
ERROR_BODY_PEEK = 4096
"""Bytes read from a failed answer to find its first text line."""
ERROR_LINE_MAX = 200
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF = 5.0
REDACTED = "xxxxx"
URL_SAFE = "/+@"
"""Kept literal in request paths, like the go command; ``!`` goes as ``%21``."""

FETCHES = "modgate_upstream_fetches_total"
ERRORS = "modgate_upstream_errors_total"
LATENCY = "modgate_upstream_latency_seconds"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_T = TypeVar("_T")
_Consumer = Callable[[httpx.Response, str, str], Awaitable[_T]]


class _Failure(Exception):
    """One failed attempt: the error to raise, its metric kind, whether to retry."""

    def __init__(self, error: ModgateError, kind: str | None, transient: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.kind = kind
        self.transient = transient


class UpstreamProxy:
    """A GOPROXY-protocol server at ``url`` (http or https), reached through ``client``.

    ``aclose`` closes nothing: the client is shared and owned by the caller.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        metrics: Metrics,
        *,
        retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        parts = urlsplit(url)
        self.name = redact_url(url).rstrip("/")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"upstream {self.name!r} is not an http:// or https:// URL with a host"
            raise ValueError(msg)
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            msg = f"upstream {self.name!r} has an invalid port"
            raise ValueError(msg) from None
        if parts.query or parts.fragment:
            msg = f"upstream {self.name!r} must not have a query or fragment"
            raise ValueError(msg)
        host = parts.netloc.rpartition("@")[2]
        self._base = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
        self._authorization: str | None = None
        secrets: set[str] = set()
        if parts.username is not None or parts.password is not None:
            user, password = parts.username or "", parts.password or ""
            self._authorization = basic_authorization(unquote(user), unquote(password))
            secrets = {s for s in (user, password, unquote(user), unquote(password)) if s}
        # Longest first, so that a secret containing another is removed whole.
        self._secrets = tuple(sorted(secrets, key=len, reverse=True))
        self._client = client
        self._metrics = metrics
        self._retries = max(0, retries)
        self._backoff = backoff
        self._labels: Labels = (("upstream", self.name),)
        self._proxy = proxy_for(self._base)
        """The HTTP(S) proxy every request goes through, named when it cannot be reached."""

    # -- the Source port ------------------------------------------------

    async def list(self, module: str) -> bytes:
        suffix = f"/{_quote(escape_path(module))}/@v/list"
        return await self._fetch(module, suffix, self._reader(LIST_MAX_BYTES))

    async def latest(self, module: str) -> bytes:
        suffix = f"/{_quote(escape_path(module))}/@latest"
        return await self._fetch(module, suffix, self._reader(INFO_MAX_BYTES))

    async def info(self, module: str, version: str) -> bytes:
        suffix = self._version_suffix(module, version, "info")
        return await self._fetch(f"{module}@{version}", suffix, self._reader(INFO_MAX_BYTES))

    async def mod(self, mv: ModuleVersion) -> bytes:
        suffix = self._version_suffix(mv.path, mv.version, "mod")
        return await self._fetch(str(mv), suffix, self._reader(MOD_MAX_BYTES))

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        """Stream the zip into ``dest``, rewritten from scratch on each attempt."""
        suffix = self._version_suffix(mv.path, mv.version, "zip")

        async def write(resp: httpx.Response, subject: str, shown: str) -> None:
            _check_declared_length(resp, max_size, subject, shown)
            written = 0
            try:
                with dest.open("wb") as out:
                    async for chunk in self._paced(resp, subject, shown):
                        written += len(chunk)
                        if written > max_size:
                            raise _too_large(subject, shown, max_size)
                        out.write(chunk)
            except OSError as exc:
                reason = f"cannot write {dest}: {exc.strerror or exc}; check the store's disk"
                raise StoreError(subject, reason) from exc

        await self._fetch(str(mv), suffix, write)

    async def aclose(self) -> None:
        """Nothing to release: the shared HTTP client is closed by whoever made it."""

    # -- one request, with retries ----------------------------------------

    def _version_suffix(self, module: str, version: str, ext: str) -> str:
        return f"/{_quote(escape_path(module))}/@v/{_quote(escape_version(version))}.{ext}"

    def _reader(self, limit: int) -> _Consumer[bytes]:
        async def read(resp: httpx.Response, subject: str, shown: str) -> bytes:
            _check_declared_length(resp, limit, subject, shown)
            body = bytearray()
            async for chunk in self._paced(resp, subject, shown):
                body += chunk
                if len(body) > limit:
                    raise _too_large(subject, shown, limit)
            return bytes(body)

        return read

    async def _paced(self, resp: httpx.Response, subject: str, shown: str) -> AsyncIterator[bytes]:
        """The body's chunks; a body that trickles is given up like one that stalls.

        The read timeout alone never fires for an upstream that sends a byte
        every few seconds: each read gets something. So every window of one
        read timeout must bring at least :data:`MIN_BYTES_PER_WINDOW` bytes
        (or the end of the body).
        """
        window = self._client.timeout.read or DEFAULT_PACE_WINDOW
        started, received = time.monotonic(), 0
        async for chunk in resp.aiter_bytes():
            received += len(chunk)
            now = time.monotonic()
            if now - started >= window:
                if received < MIN_BYTES_PER_WINDOW:
                    rate = received / (now - started)
                    error = UpstreamTimeoutError(
                        subject,
                        f"{shown} sent its answer at {rate:.0f} bytes/s, under "
                        f"{MIN_BYTES_PER_WINDOW} bytes per {window:g} s; check the upstream "
                        "and the network, or raise --upstream-timeout",
                    )
                    raise _Failure(error, "timeout", transient=True)
                started, received = now, 0
            yield chunk

    async def _fetch(
        self,
        subject: str,
        suffix: str,
        consume: _Consumer[_T],
    ) -> _T:
        url, shown = self._base + suffix, self.name + suffix
        attempt = 0
        while True:
            try:
                return await self._attempt(subject, url, shown, consume)
            except _Failure as failure:
                if failure.kind is not None:
                    kind_labels = (*self._labels, ("kind", failure.kind))
                    self._metrics.inc(ERRORS, kind_labels)
                if not failure.transient or attempt >= self._retries:
                    raise failure.error from failure.__cause__
            await asyncio.sleep(self._delay(attempt))
            attempt += 1

    def _delay(self, attempt: int) -> float:
        jitter = 0.5 + random.random()  # noqa: S311 - jitter, not a secret
        return float(min(MAX_BACKOFF, self._backoff * (2**attempt) * jitter))

    async def _attempt(
        self,
        subject: str,
        url: str,
        shown: str,
        consume: _Consumer[_T],
    ) -> _T:
        self._metrics.inc(FETCHES, self._labels)
        started = time.monotonic()
        try:
            async with stream_get(self._client, url, self._authorization) as resp:
                if resp.status_code != http.HTTPStatus.OK:
                    raise await self._status_failure(subject, shown, resp)
                if not _framed(resp):
                    raise _unframed(subject, shown)
                return await consume(resp, subject, shown)
        except httpx.HTTPError as exc:
            raise self._translate(subject, shown, exc) from exc
        finally:
            self._metrics.observe(LATENCY, time.monotonic() - started, self._labels)

    # -- translating failures ---------------------------------------------

    async def _status_failure(self, subject: str, shown: str, resp: httpx.Response) -> _Failure:
        code = resp.status_code
        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = self._scrub(resp.reason_phrase)
        line = await self._first_line(resp)
        reason = f"{shown} answered {code} {phrase}" + (f": {line}" if line else "")
        if code == http.HTTPStatus.NOT_FOUND:
            return _Failure(NotFoundError(subject, reason), None, transient=False)
        if code == http.HTTPStatus.GONE:
            return _Failure(GoneError(subject, reason), None, transient=False)
        if code in (http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN):
            hint = "check the credentials for this upstream"
        elif code in TRANSIENT_STATUSES or code >= http.HTTPStatus.INTERNAL_SERVER_ERROR:
            hint = "the upstream is failing; try again later or use another --upstream"
        else:
            hint = "check --upstream"
        return _Failure(
            UpstreamError(subject, f"{reason}; {hint}"),
            "status",
            transient=code in TRANSIENT_STATUSES,
        )

    async def _first_line(self, resp: httpx.Response) -> str:
        """The first non-blank line of a text/plain body, scrubbed; "" otherwise."""
        media, _, params = resp.headers.get("content-type", "").partition(";")
        if media.strip().lower() != "text/plain":
            return ""
        charset = params.strip().lower().removeprefix("charset=").strip('"')
        if charset not in ("", "utf-8", "us-ascii"):
            return ""
        peek = bytearray()
        try:
            async for chunk in resp.aiter_bytes():
                peek += chunk
                if len(peek) >= ERROR_BODY_PEEK:
                    break
        except httpx.HTTPError:
            pass  # the status alone is the answer; the body was only a detail
        text = peek[:ERROR_BODY_PEEK].decode("utf-8", errors="replace")
        line = next((ln for ln in text.splitlines() if ln.strip()), "")
        return self._scrub(line)

    def _scrub(self, text: str) -> str:
        """Printable, credential-free, at most ERROR_LINE_MAX characters."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
        text = "".join(ch for ch in text if ch.isprintable()).strip()
        if len(text) > ERROR_LINE_MAX:
            text = text[: ERROR_LINE_MAX - 3] + "..."
        return text

    def _translate(self, subject: str, shown: str, exc: httpx.HTTPError) -> _Failure:
        if isinstance(exc, httpx.TimeoutException):
            return _Failure(self._timeout_error(subject, shown, exc), "timeout", transient=True)
        kind, reason, transient = self._classify(shown, exc)
        return _Failure(UpstreamError(subject, reason), kind, transient)

    def _timeout_error(
        self, subject: str, shown: str, exc: httpx.TimeoutException
    ) -> UpstreamTimeoutError:
        timeout = self._client.timeout
        if isinstance(exc, httpx.ConnectTimeout) and self._proxy is not None:
            what = (
                f"{self._proxy} did not accept a connection within {timeout.connect}s "
                f"(requests to {self.name} go through it)"
            )
            hint = f"check {self._proxy.variable}, NO_PROXY and the proxy"
        elif isinstance(exc, httpx.ConnectTimeout):
            what = f"{self.name} did not accept a connection within {timeout.connect}s"
            hint = "check --upstream and the network, or raise --connect-timeout"
        elif isinstance(exc, httpx.PoolTimeout):
            what = f"no free connection to {self.name} within {timeout.pool}s"
            hint = "too many upstream requests are under way; try again later"
        elif isinstance(exc, httpx.WriteTimeout):
            what = f"{shown} did not take the request within {timeout.write}s"
            hint = "check the upstream and the network, or raise --upstream-timeout"
        else:
            what = f"{shown} did not answer within {timeout.read}s"
            hint = "check the upstream and the network, or raise --upstream-timeout"
        return UpstreamTimeoutError(subject, f"{what}; {hint}")

    def _classify(self, shown: str, exc: httpx.HTTPError) -> tuple[str, str, bool]:
        """(metric kind, reason, transient) for a failure without a status."""
        check = "check --upstream, the network and any HTTP(S)_PROXY setting"
        if isinstance(exc, httpx.ConnectError):
            causes = list(_causes(exc))
            for cause in causes:
                if isinstance(cause, ssl.SSLCertVerificationError):
                    detail = cause.verify_message or "certificate not trusted"
                    return (
                        "tls",
                        f"TLS certificate of {self.name} rejected: {detail}; add its CA "
                        "with --ca-bundle or SSL_CERT_FILE",
                        False,
                    )
            for cause in causes:
                if isinstance(cause, ssl.SSLError):
                    detail = cause.reason or type(cause).__name__
                    return "tls", f"TLS handshake with {self.name} failed: {detail}; {check}", False
            proxy = self._proxy
            for cause in causes:
                if isinstance(cause, socket.gaierror):
                    detail = cause.strerror or "no such host"
                    if proxy is not None:
                        return "proxy", self._proxy_unreachable(proxy, "resolve", detail), True
                    return "dns", f"cannot resolve the host of {self.name}: {detail}; {check}", True
            detail = "connection failed"
            for cause in causes:
                if isinstance(cause, OSError) and cause.errno:
                    detail = os.strerror(cause.errno).lower()
                    break
            if proxy is not None:
                return "proxy", self._proxy_unreachable(proxy, "connect to", detail), True
            return "connect", f"cannot connect to {self.name}: {detail}; {check}", True
        if isinstance(exc, httpx.ProxyError):
            proxy = self._proxy
            via = "the HTTP proxy" if proxy is None else str(proxy)
            names = "HTTPS_PROXY, HTTP_PROXY" if proxy is None else proxy.variable
            answer = self._scrub(str(exc))
            answer = f" ({answer})" if answer else ""
            reason = f"{via} failed the request to {self.name}{answer}; check {names} and NO_PROXY"
            return "proxy", reason, False
        if isinstance(exc, httpx.TooManyRedirects):
            return "redirect", f"{shown} redirected too many times; check --upstream", False
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return "network", f"the connection to {self.name} broke during {shown}; {check}", True
        if isinstance(exc, httpx.UnsupportedProtocol):
            return "protocol", f"{shown} redirected to an unsupported URL scheme", False
        return (
            "protocol",
            f"{shown} sent an answer modgate cannot read ({type(exc).__name__})",
            False,
        )

    def _proxy_unreachable(self, proxy: ProxyRoute, verb: str, detail: str) -> str:
        return (
            f"cannot {verb} {proxy}, which requests to {self.name} go through: {detail}; "
            f"check {proxy.variable} and NO_PROXY, and that the proxy is up"
        )


def _quote(escaped: str) -> str:
    return quote(escaped, safe=URL_SAFE)


def _check_declared_length(resp: httpx.Response, limit: int, subject: str, shown: str) -> None:
    """Fail early on a declared oversize body; the byte count is still enforced."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(subject, shown, limit)


def _framed(resp: httpx.Response) -> bool:
    """Whether the answer's end is marked, so that a cut connection shows as an error.

    Without Content-Length or chunked encoding (HTTP/1.0 style), the body ends
    where the connection closes: a connection cut halfway through a .mod
    would yield a shorter go.mod that still parses.
    """
    if resp.http_version not in ("HTTP/1.0", "HTTP/1.1"):
        return True  # HTTP/2 frames every stream
    declared = resp.headers.get("content-length", "")
    chunked = "chunked" in resp.headers.get("transfer-encoding", "").lower()
    return chunked or declared.isdigit()


def _unframed(subject: str, shown: str) -> _Failure:
    error = UpstreamError(
        subject,
        f"{shown} answered without Content-Length or chunked encoding, so a cut connection "
        "cannot be told from the end of the answer; fix the upstream (or the proxy in front "
        "of it) to frame its answers",
    )
    return _Failure(error, "unframed", transient=False)


def _too_large(subject: str, shown: str, limit: int) -> _Failure:
    error = UpstreamError(
        subject, f"{shown} sent more than {limit} bytes; the upstream answer is too large"
    )
    return _Failure(error, "too_large", transient=False)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it was raised from, exception groups included."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__context__, current.__cause__):
            if linked is not None:
                stack.append(linked)
