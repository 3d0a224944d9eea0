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

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
import httpx
from httpx._utils import URLPattern, get_environment_proxies  # the client's reading of *_PROXY

from modgate import __version__
from modgate.protocol.goproxy import redact_url
from modgate.sources.hostguard import HostGuard, PinnedTransport

USER_AGENT = f"modgate/{__version__}"
MAX_REDIRECTS = 10
KEEPALIVE_EXPIRY = 30.0
"""Seconds an idle pooled connection is kept open."""


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
