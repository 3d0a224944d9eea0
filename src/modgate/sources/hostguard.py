"""Which hosts the direct source may reach, and reaching only the address that was checked.

In direct mode a module path is a host name chosen by whoever sends the
request, so without a check any client could make modgate fetch
``https://169.254.169.254/...`` (a cloud metadata service) or probe the
internal network and read the answer back from the error body. The rules:

- a host the operator allowed (``--direct-allow-hosts``, GOPRIVATE glob
  syntax matched against the host name) or configured (the hosts of
  ``--git-rewrite`` targets) is reached like any other, by the system's
  resolver;
- any other host must be a name, not an IP literal (legacy forms such as
  ``127.1`` or ``0x7f.1`` included), not ``localhost`` or a name under
  ``.localhost``, and every address it resolves to must be public: not
  loopback, private, shared, link-local, multicast, reserved, documentation
  or otherwise special, also when an IPv4 address hides inside an IPv6 one
  (mapped, 6to4, Teredo, NAT64);
- the connection then goes to the address that was checked, never to a
  second resolution of the name: :class:`PinnedBackend` does that for the
  HTTP client of ``?go-get=1`` discovery (every redirect is a new connect,
  so it is checked too; TLS still verifies the certificate against the
  name and sends it as SNI), and :meth:`HostGuard.git_options` does it for
  git over HTTP(S) with curl's resolve option and redirects turned off.

A refusal is a :class:`HostNotAllowedError`, whose text names the host and
nothing about what it resolved to or what answered there. Through an HTTP
proxy (``HTTPS_PROXY``), the proxy resolves and connects: modgate still
refuses literals and ``localhost``, and internal destinations must be
closed at the proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

import httpcore
import httpx

from modgate.metrics import Metrics
from modgate.protocol.patterns import PatternList

log = logging.getLogger("modgate.hostguard")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], list[str]]
"""``(host, port) -> addresses``: the resolver seam (the system's resolver by default)."""

_LOCALHOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_EXTRA_SPECIAL = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git+ssh": 22, "git": 9418}
REFUSED_METRIC = "modgate_direct_hosts_refused_total"
ALLOW_HELP = "ask the modgate operator to list it in --direct-allow-hosts"


class HostNotAllowedError(Exception):
    """Direct mode must not reach ``host``; ``str()`` is safe to show to any client."""

    def __init__(self, host: str, why: str = "") -> None:
        super().__init__(
            f"host {host} is not allowed: modgate fetches directly only from public hosts; "
            + ALLOW_HELP
        )
        self.host = host
        self.why = why
        """For the server's log only (may name the address the host resolved to)."""


def special_address(address: IPAddress) -> bool:
    """Whether ``address`` is anything but a public unicast address."""
    if address.is_multicast or not address.is_global:
        return True
    if any(address in net for net in _EXTRA_SPECIAL if net.version == address.version):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return any(special_address(v4) for v4 in embedded)
    return False


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form a resolver accepts (``127.1``, ``0x7f.1``)."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system's resolver (empty when it has none)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    out: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return out


class HostGuard:
    """The direct source's host policy; one per server, shared by discovery and git."""

    def __init__(
        self,
        allow: PatternList | None = None,
        *,
        trusted: Iterable[str] = (),
        resolve: Resolve = system_resolve,
        special: Callable[[IPAddress], bool] = special_address,
        metrics: Metrics | None = None,
    ) -> None:
        self.allow = allow or PatternList(())
        self.metrics = metrics
        self.trusted = frozenset(h.lower().rstrip(".") for h in trusted if h)
        self._resolve = resolve
        self._special = special

    @classmethod
    def trusting_urls(
        cls,
        allow: PatternList | None,
        urls: Iterable[str],
        **kw: Resolve | Callable[[IPAddress], bool] | Metrics,
    ) -> HostGuard:
        """A guard that also trusts the hosts of the operator's own repository URLs."""
        hosts = [urlsplit(u).hostname or "" for u in urls]
        return cls(allow, trusted=hosts, **kw)  # type: ignore[arg-type]

    def allowed(self, host: str) -> bool:
        """Whether the operator allowed or configured ``host`` (no checks, no pinning)."""
        name = host.lower().rstrip(".")
        return name in self.trusted or self.allow.matches(name)

    def check_name(self, host: str) -> None:
        """Refuse IP literals and localhost names unless allowed (no resolution)."""
        if self.allowed(host):
            return
        name = host.lower().rstrip(".")
        literal = ip_literal(name)
        if literal is not None:
            raise HostNotAllowedError(host, f"IP literal {literal}")
        if name in _LOCALHOST_NAMES or name.endswith(".localhost"):
            raise HostNotAllowedError(host, "localhost")

    def pin(self, host: str, port: int) -> str | None:
        """The first checked address to connect to for ``host``; None when allowed as is."""
        addresses = self.pin_all(host, port)
        return addresses[0] if addresses else None

    def pin_all(self, host: str, port: int) -> list[str]:
        """Every checked address of ``host``, in the resolver's order; [] when allowed as is.

        Raises :class:`HostNotAllowedError` for a refused host, and for a
        name with no address (nothing could be checked).
        """
        if self.allowed(host):
            return []
        self.check_name(host)
        addresses = self._resolve(host, port)
        if not addresses:
            raise HostNotAllowedError(host, "the name has no address")
        for text in addresses:
            address = ip_literal(text)
            if address is None or self._special(address):
                raise HostNotAllowedError(host, f"resolves to {text}")
        return addresses

    def git_options(self, url: str, environ: Mapping[str, str]) -> list[str]:
        """``-c`` options that make git reach ``url`` at its checked address only.

        ``url`` is the one git will use (after the operator's ``insteadOf``
        rules). Allowed hosts and local files need nothing; HTTP(S) through a
        proxy needs the literal check only; ssh and git:// cannot be pinned,
        so they are refused for hosts that are not allowed.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        if scheme == "file" or not host or self.allowed(host):
            return []
        self.check_name(host)
        if scheme not in ("https", "http"):
            raise HostNotAllowedError(host, f"{scheme} cannot be pinned to a checked address")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise HostNotAllowedError(host, "bad port") from None
        options = ["-c", "http.followRedirects=false"]
        if proxied(environ, scheme, host):
            return options
        addresses = self.pin_all(host, port)
        if not addresses:
            return []
        shown = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        return [*options, "-c", f"http.curloptResolve={host}:{port}:{shown}"]

    def log_refusal(self, exc: HostNotAllowedError, subject: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(REFUSED_METRIC)
        log.warning(
            "direct fetch refused: host not allowed",
            extra={
                "event": "direct_host_refused",
                "subject": subject,
                "host": exc.host,
                "why": exc.why,
            },
        )


def proxied(environ: Mapping[str, str], scheme: str, host: str) -> bool:
    """Whether curl would send a request for ``scheme://host`` through a proxy."""

    def var(name: str) -> str:
        return environ.get(name.lower()) or environ.get(name.upper()) or ""

    proxy = var(f"{scheme}_proxy") if scheme != "http" else environ.get("http_proxy", "")
    proxy = proxy or var("all_proxy")
    if not proxy:
        return False
    name = host.lower().rstrip(".")
    for raw in var("no_proxy").split(","):
        entry = raw.strip().lower().lstrip(".")
        if entry == "*" or (entry and (name == entry or name.endswith("." + entry))):
            return False
    return True


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address :meth:`HostGuard.pin` checked, never to a new resolution."""

    def __init__(self, guard: HostGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(self._guard.pin_all, host, port)
        if not addresses:  # allowed as is: the system's resolver decides
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        for address in addresses[:-1]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next checked address
        return await self._inner.connect_tcp(
            addresses[-1], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise HostNotAllowedError(path, "unix sockets are never used for discovery")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a :class:`PinnedBackend` (TLS, pooling and errors as usual)."""

    def __init__(
        self,
        guard: HostGuard,
        *,
        verify: ssl.SSLContext,
        limits: httpx.Limits,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=verify, limits=limits)
        # The pool httpx built is replaced by the same pool over the pinning
        # backend; the transport keeps translating its errors and streams.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=PinnedBackend(guard, inner),
        )
