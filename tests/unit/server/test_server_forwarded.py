"""Trusted reverse proxies: only what they vouch for names the client."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from modgate.server.forwarded import TrustedProxies, parse_networks

PROXIES = TrustedProxies(parse_networks("127.0.0.1, 10.0.0.0/8, fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "xff", "forwarded", "client"),
    [
        # an untrusted peer is the client, whatever it claims
        ("203.0.113.9", b"198.51.100.1", None, "203.0.113.9"),
        # one trusted proxy: the address it appended
        ("127.0.0.1", b"198.51.100.1", None, "198.51.100.1"),
        # the client's own (forged) entries left of the trusted part are not believed
        ("127.0.0.1", b"6.6.6.6, 198.51.100.1", None, "198.51.100.1"),
        # a chain of trusted proxies is walked from the right
        ("127.0.0.1", b"198.51.100.1, 10.1.2.3, 10.9.9.9", None, "198.51.100.1"),
        # an unreadable entry stops at the last trusted hop
        ("127.0.0.1", b"198.51.100.1, garbage", None, "127.0.0.1"),
        # no header: the proxy itself
        ("127.0.0.1", None, None, "127.0.0.1"),
        # RFC 7239 Forwarded wins over X-Forwarded-For, with ports and IPv6 brackets
        ("127.0.0.1", b"6.6.6.6", b'for="[2001:db8::7]:4711";proto=https', "2001:db8::7"),
        ("127.0.0.1", None, b"for=192.0.2.60:80;proto=http, for=10.0.0.5", "192.0.2.60"),
        # IPv4-mapped peers are IPv4
        ("::ffff:127.0.0.1", b"198.51.100.1", None, "198.51.100.1"),
        # repeated header fields are one list
        ("fd00::1", b"198.51.100.1,fd00::2", None, "198.51.100.1"),
    ],
)
def test_client(peer: str, xff: bytes | None, forwarded: bytes | None, client: str) -> None:
    assert PROXIES.client(peer, xff, forwarded) == client


@given(
    peer=st.ip_addresses(v=4).map(str),
    claimed=st.lists(st.ip_addresses().map(str), max_size=5),
)
def test_an_untrusted_peer_can_never_name_another_client(peer: str, claimed: list[str]) -> None:
    assume(not PROXIES.trusts(peer))
    xff = ", ".join(claimed).encode()
    forwarded = ", ".join(f'for="{c}"' for c in claimed).encode()
    assert PROXIES.client(peer, xff or None, forwarded or None) == peer


@given(claimed=st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=5))
def test_the_client_is_never_left_of_the_first_untrusted_entry(claimed: list[str]) -> None:
    client = PROXIES.client("127.0.0.1", ", ".join(claimed).encode(), None)
    untrusted = [c for c in claimed if not PROXIES.trusts(c)]
    if untrusted:
        assert client == untrusted[-1], (claimed, client)
    else:
        assert client == claimed[0], (claimed, client)


@pytest.mark.parametrize(
    ("peer", "proto", "forwarded", "https"),
    [
        ("127.0.0.1", b"https", None, True),
        ("127.0.0.1", b"http", None, False),
        ("127.0.0.1", None, b"for=192.0.2.1;proto=https", True),
        ("127.0.0.1", None, None, None),
        ("203.0.113.9", b"https", None, None),  # not a trusted peer: not believed
    ],
)
def test_https(peer: str, proto: bytes | None, forwarded: bytes | None, https: bool | None) -> None:
    assert PROXIES.https(peer, proto, forwarded) is https


def test_parse_networks_names_a_bad_entry() -> None:
    assert parse_networks("") == ()
    assert parse_networks("10.1.2.3/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    with pytest.raises(ValueError, match=r"'proxy\.corp' is not an IP address or network"):
        parse_networks("127.0.0.1, proxy.corp")
