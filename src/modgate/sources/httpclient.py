"""The one HTTP client every upstream shares.

Corporate networks are the normal case, so the client behaves like the go
command there: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY``
(either case) are honoured, and the trust store is the system's, which
OpenSSL locates through ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when they are set.
A custom CA bundle is *added* to that trust, never a replacement for it.

``NO_PROXY`` is applied literally: loopback addresses are not bypassed unless
listed (``NO_PROXY=localhost,127.0.0.1,::1``), so an HTTP proxy set for the
whole process also sees requests to ``http://127.0.0.1:...`` upstreams.

The client is created once by the composition root, shared by every source,
and closed by its owner. The direct source's ``?go-get=1`` discovery has a
client of its own, made with a :class:`HostGuard`: its connections go only to
addresses the guard checked.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio._backends._asyncio  # noqa: F401 - loaded now, not by the first upstream request
import certifi
import httpx
from httpx._exceptions import request_context  # attaches the request to transport errors
from httpx._utils import URLPattern, get_environment_proxies  # the client's reading of *_PROXY

from modgate import __version__
from modgate.protocol.goproxy import redact_url
from modgate.sources.hostguard import HostGuard, PinnedTransport

USER_AGENT = f"modgate/{__version__}"
MAX_REDIRECTS = 10
KEEPALIVE_EXPIRY = 30.0
"""Seconds an idle pooled connection is kept open."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """The HTTP(S) proxy that requests to one URL go through, fit to show (no credentials)."""

    url: str
    """The proxy's URL, its userinfo hidden."""
    variable: str
    """The variable that set it, spelt as set: ``HTTPS_PROXY``, ``http_proxy``, ..."""

    def __str__(self) -> str:
        return f"the proxy {self.url} (from {self.variable})"


def proxy_for(url: str) -> ProxyRoute | None:
    """The proxy the shared client sends requests to ``url`` through, or None (direct).

    Chosen from the environment exactly as the client chooses: the most
    specific matching pattern wins, and a ``NO_PROXY`` entry means no proxy.
    """
    target = httpx.URL(url)
    mounts = ((URLPattern(key), proxy) for key, proxy in get_environment_proxies().items())
    for pattern, proxy in sorted(mounts, key=lambda mount: mount[0]):
        if pattern.matches(target):
            if proxy is None:
                return None
            scheme = pattern.pattern.partition("://")[0]
            return ProxyRoute(redact_url(proxy), _variable(f"{scheme}_proxy"))
    return None


def _variable(name: str) -> str:
    """``name`` as it is spelt in the environment: lower case wins, as in urllib."""
    return name if os.environ.get(name) else name.upper()


def make_ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system trust store, plus ``ca_bundle`` (PEM) when given.

    When the system has no trust store at all (a bare container), the
    certifi bundle stands in for it. A bundle that cannot be read raises
    ValueError naming the file, for the configuration layer to report.
    """
    ctx = ssl.create_default_context()
    paths = ssl.get_default_verify_paths()
    has_system_trust = bool(
        (paths.cafile and Path(paths.cafile).is_file())
        or (paths.capath and Path(paths.capath).is_dir())
    )
    if not has_system_trust:
        ctx.load_verify_locations(cafile=certifi.where())
    if ca_bundle is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            msg = f"cannot load the CA bundle {ca_bundle}: {reason}; pass a PEM file of CA certs"
            raise ValueError(msg) from exc
    return ctx


def make_client(
    *,
    ca_bundle: Path | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    guard: HostGuard | None = None,
) -> httpx.AsyncClient:
    """A pooled HTTP/1.1 client for upstream proxies; the caller closes it.

    ``read_timeout`` bounds every single read or write, so a hung upstream
    fails after it. Waiting for a free pooled connection is bounded by the
    sum of both timeouts, so that a burst of fetches queues instead of
    failing at once.
    """
    timeout = httpx.Timeout(
        connect=connect_timeout,
        read=read_timeout,
        write=read_timeout,
        pool=connect_timeout + read_timeout,
    )
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    verify = make_ssl_context(ca_bundle)
    transport: httpx.AsyncBaseTransport | None = None
    mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None
    if guard is not None:
        # httpx reads the proxy variables only when it builds the transport itself:
        # with the pinned one, proxies are mounted here, with httpx's own reading
        # of them; hosts that bypass the proxy use the pinned transport
        transport = PinnedTransport(guard, verify=verify, limits=limits)
        mounts = {
            pattern: None
            if proxy is None
            else httpx.AsyncHTTPTransport(verify=verify, limits=limits, proxy=proxy)
            for pattern, proxy in get_environment_proxies().items()
        }
    return httpx.AsyncClient(
        verify=verify,
        transport=transport,
        mounts=mounts,
        trust_env=True,
        http1=True,
        http2=False,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=timeout,
        limits=limits,
        # Zips are already compressed and the other answers are small:
        # identity keeps the size limits simple and decompression bombs out.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def basic_authorization(user: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP basic authentication."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@asynccontextmanager
async def stream_get(
    client: httpx.AsyncClient, url: str, authorization: str | None = None
) -> AsyncIterator[httpx.Response]:
    """``GET url`` through ``client``'s own transports (its pool, its proxies), streamed.

    The same request and the same redirects (at most :data:`MAX_REDIRECTS`,
    the ``Authorization`` header dropped when one leaves the origin, except
    for a plain upgrade to https on the same host) as ``client.stream``, and
    the same exceptions, without the layers a module fetch has no use for:
    no cookie jar (an upstream's cookies are never sent back on behalf of
    other clients), no auth flows, no event hooks. Those layers cost about a
    third of the client's CPU time per request, which a cold miss pays twice.
    """
    request = _get_request(client, httpx.URL(url), authorization)
    response = await _send(client, request)
    redirects = 0
    while response.status_code in REDIRECT_STATUSES and "location" in response.headers:
        await response.aclose()
        if redirects >= MAX_REDIRECTS:
            raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
        redirects += 1
        request = _redirected(client, request, response.headers["location"])
        response = await _send(client, request)
    try:
        yield response
    finally:
        await response.aclose()


def _get_request(
    client: httpx.AsyncClient, url: httpx.URL, authorization: str | None
) -> httpx.Request:
    headers = client.headers.copy()
    if authorization is not None:
        headers["Authorization"] = authorization
    timeout = client.timeout.as_dict()
    return httpx.Request("GET", url, headers=headers, extensions={"timeout": timeout})


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    transport = client._transport_for_url(request.url)  # the client's choice of proxy
    with request_context(request=request):
        response = await transport.handle_async_request(request)
    response.request = request
    return response


def _redirected(client: httpx.AsyncClient, request: httpx.Request, location: str) -> httpx.Request:
    """The request that follows ``location``, resolved against ``request`` as httpx does."""
    try:
        url = httpx.URL(location)
    except httpx.InvalidURL as exc:
        msg = f"Invalid URL in location header: {exc}."
        raise httpx.RemoteProtocolError(msg, request=request) from None
    if url.scheme and not url.host:
        url = url.copy_with(host=request.url.host)
    if url.is_relative_url:
        url = request.url.join(url)
    authorization = request.headers.get("Authorization")
    if authorization is not None and not _keeps_credentials(request.url, url):
        authorization = None
    return _get_request(client, url, authorization)


def _keeps_credentials(origin: httpx.URL, target: httpx.URL) -> bool:
    """Same origin (scheme, host, port); or http to https on the same host, default ports."""
    if (origin.scheme, origin.host, _port(origin)) == (target.scheme, target.host, _port(target)):
        return True
    return (
        origin.host == target.host
        and (origin.scheme, _port(origin)) == ("http", 80)
        and (target.scheme, _port(target)) == ("https", 443)
    )


def _port(url: httpx.URL) -> int | None:
    return url.port if url.port is not None else {"http": 80, "https": 443}.get(url.scheme)
