"""Admission of connections: totals, per-address counts, refusals counted and logged."""

from __future__ import annotations

import logging

import pytest

from modgate.server.admission import (
    MAX_CONNECTIONS,
    PER_CLIENT,
    Admission,
    client_key,
    default_max_connections,
    refusal_response,
)


@pytest.mark.parametrize(
    ("fd_limit", "want"),
    [(1024, 768), (4096, 3584), (65536, 57344), (1 << 20, 65536), (300, 44), (100, 16)],
)
def test_default_limit_leaves_a_reserve_of_descriptors(fd_limit: int, want: int) -> None:
    assert default_max_connections(fd_limit) == want


def test_limits_count_open_connections_and_release_them() -> None:
    adm = Admission(max_connections=3, max_per_client=2)
    assert adm.admit("10.0.0.1", 0.0) is None
    assert adm.admit("10.0.0.1", 0.0) is None
    assert adm.admit("10.0.0.1", 0.0) == PER_CLIENT
    assert adm.admit("10.0.0.2", 0.0) is None
    assert adm.admit("10.0.0.3", 0.0) == MAX_CONNECTIONS
    adm.release("10.0.0.1")
    assert adm.admit("10.0.0.3", 0.0) is None
    assert adm.open == 3
    for remote in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        adm.release(remote)
    assert adm.open == 0 and adm.per_client == {}, "released addresses must not stay in the table"
    assert adm.unflushed() == {MAX_CONNECTIONS: 1, PER_CLIENT: 1}
    assert adm.unflushed() == {MAX_CONNECTIONS: 0, PER_CLIENT: 0}


def test_refusals_are_logged_once_a_second_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adm = Admission(max_connections=0, max_per_client=1)
    with caplog.at_level(logging.WARNING, logger="modgate.server"):
        for i in range(100):
            adm.admit("10.0.0.9", 5.0 + i * 0.001)
        adm.admit("10.0.0.9", 6.5)
    lines = [r for r in caplog.records if getattr(r, "event", "") == "connections_refused"]
    assert len(lines) == 2, f"{len(lines)} log lines for 101 refusals in 1.5 s"
    assert lines[1].refused_max_connections == 100


def test_the_refusal_is_a_complete_503_with_retry_after() -> None:
    raw = refusal_response(b"HTTP/1.1 503 Service Unavailable\r\nDate: x\r\n", 10, PER_CLIENT)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Retry-After: 1" in head
    assert b"Content-Length: %d" % len(body) in head
    assert body == b"modgate: too many connections from this address; retry in a moment\n"


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("-", "-"),
    ],
)
def test_clients_are_ipv4_addresses_or_ipv6_networks(remote: str, key: str) -> None:
    assert client_key(remote) == key


def test_one_ipv6_network_cannot_escape_the_limit_by_changing_addresses() -> None:
    adm = Admission(max_connections=1000, max_per_client=4)
    refused = [adm.admit(f"2001:db8:0:1::{i:x}", 0.0) for i in range(1, 10)]
    assert refused.count(None) == 4 and refused.count(PER_CLIENT) == 5
    assert adm.admit("2001:db8:0:2::1", 0.0) is None, "another /64 is another client"
