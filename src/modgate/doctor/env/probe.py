"""One GET against a proxy or checksum database, classified the way it matters to go.

The client trusts what the go command trusts on Linux: the system CA store,
replaced by ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set, and it sends
requests through HTTP(S)_PROXY unless NO_PROXY says otherwise. Failures are
classified by exception type (never by message text): name resolution,
refused or unreachable, TLS trust (unknown authority, name mismatch), other
TLS or protocol errors, a connect timeout, and a *hang*: connected, then no
answer within the timeout, which the go command (it has no timeout) would
wait on forever.
"""

from __future__ import annotations

import enum
import errno
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from modgate.doctor.parsers.noproxy import bypasses_proxy
from modgate.protocol.goproxy import redact_url

DEFAULT_TIMEOUT = 5.0
_UNKNOWN_AUTHORITY_CODES = frozenset({18, 19, 20, 21})
"""OpenSSL X509_V_ERR_*: self-signed leaf or chain, unable to get or verify the issuer."""
_NAME_MISMATCH_CODES = frozenset({62, 64})
"""OpenSSL X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH."""
_UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})
_NOT_FOUND = frozenset({404, 410})
_OK = 200


class Outcome(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not found"
    HTTP_ERROR = "HTTP error"
    DNS = "name not resolved"
    REFUSED = "connection refused"
    UNREACHABLE = "network unreachable"
    TLS_UNKNOWN_AUTHORITY = "certificate signed by unknown authority"
    TLS_NAME_MISMATCH = "certificate is for another name"
    TLS_OTHER = "TLS handshake failed"
    CONNECT_TIMEOUT = "connect timed out"
    HUNG = "connected but no answer"
    PROTOCOL = "protocol error"
    OTHER = "request failed"

    @property
    def answered(self) -> bool:
        """The server answered with a status (any status)."""
        return self in (Outcome.OK, Outcome.NOT_FOUND, Outcome.HTTP_ERROR)

    @property
    def is_tls(self) -> bool:
        return self in (Outcome.TLS_UNKNOWN_AUTHORITY, Outcome.TLS_NAME_MISMATCH)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    url: str
    """Redacted."""
    outcome: Outcome
    status: int = 0
    via: str | None = None
    """The outbound proxy (HTTP(S)_PROXY, redacted) the request went through."""

    def describe(self) -> str:
        if self.outcome is Outcome.HTTP_ERROR or self.outcome is Outcome.NOT_FOUND:
            reason: str = httpx.codes.get_reason_phrase(self.status)
            text = f"{self.status} {reason}".strip()
        else:
            text = str(self.outcome.value)
        return text if self.via is None else f"{text} (through the outbound proxy {self.via})"


def ssl_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    cafile = environ.get("SSL_CERT_FILE") or None
    capath = environ.get("SSL_CERT_DIR") or None
    return ssl.create_default_context(cafile=cafile, capath=capath)


_PROXY_NAMES = (("https", ("HTTPS_PROXY", "https_proxy")), ("http", ("HTTP_PROXY", "http_proxy")))


def _proxies(environ: Mapping[str, str], context: ssl.SSLContext) -> dict[str, httpx.HTTPTransport]:
    mounts: dict[str, httpx.HTTPTransport] = {}
    for scheme, names in _PROXY_NAMES:
        proxy = next((environ[n] for n in names if environ.get(n)), None)
        if proxy:
            mounts[f"{scheme}://"] = httpx.HTTPTransport(proxy=proxy, verify=context)
    return mounts


class Prober:
    """Probes with one client; ``close()`` when done."""

    def __init__(self, environ: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT) -> None:
        self._no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
        self._via = {
            scheme: redact_url(value)
            for scheme, names in _PROXY_NAMES
            if (value := next((environ[n] for n in names if environ.get(n)), ""))
        }
        context = ssl_context(environ)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            verify=context,
            trust_env=False,
            follow_redirects=True,
        )
        mounts = _proxies(environ, context)
        self._proxied = (
            httpx.Client(
                timeout=httpx.Timeout(timeout),
                verify=context,
                trust_env=False,
                follow_redirects=True,
                mounts=mounts,
            )
            if mounts
            else self._client
        )

    def close(self) -> None:
        self._client.close()
        if self._proxied is not self._client:
            self._proxied.close()

    def get(self, url: str) -> ProbeResult:
        parsed = httpx.URL(url)
        port = str(parsed.port or (443 if parsed.scheme == "https" else 80))
        via = (
            None
            if bypasses_proxy(self._no_proxy, parsed.host, port)
            else self._via.get(parsed.scheme)
        )
        client = self._client if via is None else self._proxied
        shown = redact_url(url)
        try:
            response = client.get(url)
        except httpx.HTTPError as exc:
            return ProbeResult(shown, classify(exc), via=via)
        status = response.status_code
        if status == _OK:
            return ProbeResult(shown, Outcome.OK, status, via)
        outcome = Outcome.NOT_FOUND if status in _NOT_FOUND else Outcome.HTTP_ERROR
        return ProbeResult(shown, outcome, status, via)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: httpx.HTTPError) -> Outcome:
    if isinstance(exc, httpx.ReadTimeout):
        return Outcome.HUNG
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return Outcome.CONNECT_TIMEOUT
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            if cause.verify_code in _NAME_MISMATCH_CODES:
                return Outcome.TLS_NAME_MISMATCH
            if cause.verify_code in _UNKNOWN_AUTHORITY_CODES:
                return Outcome.TLS_UNKNOWN_AUTHORITY
            return Outcome.TLS_OTHER
        if isinstance(cause, ssl.SSLError):
            return Outcome.TLS_OTHER
        if isinstance(cause, socket.gaierror):
            return Outcome.DNS
        if isinstance(cause, ConnectionRefusedError):
            return Outcome.REFUSED
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
            return Outcome.UNREACHABLE
    if isinstance(exc, httpx.ProtocolError):
        return Outcome.PROTOCOL
    return Outcome.OTHER
