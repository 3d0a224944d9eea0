"""Which requests Go's HTTP client sends through HTTP(S)_PROXY (x/net/http/httpproxy).

``https://`` URLs use HTTPS_PROXY (or https_proxy), ``http://`` URLs use
HTTP_PROXY (or http_proxy). ``localhost`` and loopback addresses are never
proxied. NO_PROXY is a comma-separated list of ``*``, IP addresses, CIDR
ranges and domains, each with an optional port: ``corp.example.com`` matches
that host and its subdomains, ``.corp.example.com`` (or ``*.corp...``) only
subdomains.
"""

from __future__ import annotations

import ipaddress

_LOCALHOST = "localhost"


def proxy_variable(scheme: str) -> tuple[str, str] | None:
    """The (upper, lower) variable names that proxy a URL scheme."""
    if scheme == "https":
        return ("HTTPS_PROXY", "https_proxy")
    if scheme == "http":
        return ("HTTP_PROXY", "http_proxy")
    return None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def never_proxied(host: str) -> bool:
    ip = _ip(host)
    return host.lower() == _LOCALHOST or (ip is not None and ip.is_loopback)


def _entry_matches(entry: str, host: str, port: str) -> bool:
    ip = _ip(host)
    if "/" in entry:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
        return ip is not None and ip in network
    entry_host, entry_port = entry, ""
    if entry.count(":") == 1 or entry.startswith("["):
        entry_host, _, entry_port = entry.rpartition(":")
        entry_host = entry_host.strip("[]")
    if not entry_host:
        return False
    if _ip(entry_host) is not None:
        return ip is not None and _ip(entry_host) == ip and entry_port in ("", port)
    if ip is not None:
        return False
    if entry_host.startswith("*."):
        entry_host = entry_host[1:]
    match_host = not entry_host.startswith(".")
    suffix = entry_host if not match_host else "." + entry_host
    hit = host.endswith(suffix) or (match_host and host == suffix[1:])
    return hit and entry_port in ("", port)


def bypasses_proxy(no_proxy: str, host: str, port: str) -> bool:
    """Whether a request to ``host:port`` goes direct rather than through the proxy."""
    host = host.lower().strip()
    if never_proxied(host):
        return True
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if _entry_matches(entry, host, port):
            return True
    return False
