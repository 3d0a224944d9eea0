"""Who the client is behind trusted reverse proxies (``--trusted-proxies``).

A reverse proxy (nginx, Caddy, Envoy, a cloud load balancer) connects to
modgate itself, so the peer address is the proxy's. It names the client in
``X-Forwarded-For: client, proxy1, proxy2`` (each proxy appends the address
it was connected from) or ``Forwarded: for=client;proto=https, for=...``
(RFC 7239). Those headers are whatever the client sent plus what each proxy
appended, so only the part added by proxies modgate trusts can be believed:
starting from the peer and walking the list from the right, every address
that is a trusted proxy is skipped, and the first one that is not is the
client. A request from a peer that is not trusted keeps the peer's address
whatever its headers say, and an unreadable entry stops the walk at the last
trusted hop, so a forged header can never make modgate see an address that
no trusted proxy vouched for.

``X-Forwarded-Proto``/``proto=`` is believed from a trusted peer too: it tells
whether the client's leg was https, which decides how a 401 body tells the
developer to write the netrc line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

X_FORWARDED_FOR = b"x-forwarded-for"
FORWARDED = b"forwarded"
X_FORWARDED_PROTO = b"x-forwarded-proto"
NAMES = frozenset((X_FORWARDED_FOR, FORWARDED, X_FORWARDED_PROTO))
MAX_HOPS = 32
"""Entries looked at; a longer chain is cut (its right end, the trusted part, is what counts)."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """``127.0.0.1,10.0.0.0/8,fd00::/8`` (comma-separated); ValueError naming a bad entry."""
    out: list[Network] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (use 10.0.0.0/8, 127.0.0.1, ::1)"
            ) from None
    return tuple(out)


def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.split(":", 1)[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _xff_entries(value: bytes) -> list[str]:
    return value.decode("latin-1").split(",")[-MAX_HOPS:]


def _forwarded_entries(value: bytes) -> tuple[list[str], str | None]:
    """``for=`` values of each element, and the ``proto=`` of the last element that has one."""
    hops: list[str] = []
    proto: str | None = None
    for element in value.decode("latin-1").split(",")[-MAX_HOPS:]:
        seen_for = ""
        for pair in element.split(";"):
            name, _, val = pair.strip().partition("=")
            if name.lower() == "for":
                seen_for = val
            elif name.lower() == "proto":
                proto = val.strip('"').lower()
        hops.append(seen_for)
    return hops, proto


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[Network, ...]

    @classmethod
    def of(cls, networks: Iterable[Network]) -> TrustedProxies | None:
        found = tuple(networks)
        return cls(found) if found else None

    def trusts(self, address: str) -> bool:
        found = _address(address)
        return found is not None and any(found in net for net in self.networks)

    def client(self, peer: str, xff: bytes | None, forwarded: bytes | None) -> str:
        """The client's address: ``peer`` unless trusted proxies vouch for another."""
        if not self.trusts(peer):
            return peer
        hops = _forwarded_entries(forwarded)[0] if forwarded is not None else None
        if hops is None:
            hops = _xff_entries(xff) if xff is not None else []
        current = peer
        for entry in reversed(hops):
            found = _address(entry)
            if found is None:
                return current  # unreadable: the last trusted hop is as far as we can see
            current = str(found)
            if not any(found in net for net in self.networks):
                return current
        return current

    def https(self, peer: str, proto: bytes | None, forwarded: bytes | None) -> bool | None:
        """Whether the client's leg was https, as a trusted peer says; None when unsaid."""
        if not self.trusts(peer):
            return None
        if forwarded is not None:
            said = _forwarded_entries(forwarded)[1]
            if said is not None:
                return said == "https"
        if proto is not None:
            return proto.decode("latin-1").split(",")[0].strip().lower() == "https"
        return None
