"""``--trusted-proxies``: behind a reverse proxy, the client is the one the proxy names.

Bound: only a peer in ``--trusted-proxies`` can name another client; a
forged X-Forwarded-For from any other peer changes nothing; a trusted proxy
is not held to the per-client connection limit (it carries many clients).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from adversarial.conftest import address_of, status_lines
from helpers.servers import ModgateFactory

MISSING = b"/example.com/m/@v/v9.9.9.info"


def _exchange(url: str, requests: list[bytes], source: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect(address_of(url))
        sock.sendall(b"".join(requests))
        data = bytearray()
        while data.count(b"HTTP/1.1 ") < len(requests) or not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return bytes(data)


def _request(path: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"GET " + path + b" HTTP/1.1\r\nHost: modgate\r\n" + extra + b"\r\n"


def _remotes(log: Path, count: int) -> list[str]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [line["remote"] for line in lines[-count:]]


def test_a_trusted_proxy_names_the_client_and_others_cannot(
    modgate: ModgateFactory, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    server = modgate(
        "--upstream", "off", "--trusted-proxies", "127.0.0.1", "--access-log", str(log)
    )
    forged = b"X-Forwarded-For: 6.6.6.6, 198.51.100.7"
    requests = [
        _request(b"/healthz", forged),
        _request(MISSING, b"Forwarded: for=192.0.2.60;proto=https"),
        _request(b"/healthz"),
    ]
    answer = _exchange(server.url, requests, "127.0.0.1")
    assert status_lines(answer) == [200, 404, 200], answer[:400]
    # an untrusted peer (127.0.0.2) cannot name anyone
    answer = _exchange(server.url, [_request(b"/healthz", forged)], "127.0.0.2")
    assert status_lines(answer) == [200], answer
    server.stop()
    assert _remotes(log, 4) == ["198.51.100.7", "192.0.2.60", "127.0.0.1", "127.0.0.2"]


def test_without_trusted_proxies_forwarding_headers_are_ignored(
    modgate: ModgateFactory, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    server = modgate("--upstream", "off", "--access-log", str(log))
    answer = _exchange(
        server.url, [_request(b"/healthz", b"X-Forwarded-For: 6.6.6.6")], "127.0.0.1"
    )
    assert status_lines(answer) == [200]
    server.stop()
    assert _remotes(log, 1) == ["127.0.0.1"]


def test_a_trusted_proxy_is_not_held_to_the_per_client_limit(modgate: ModgateFactory) -> None:
    server = modgate(
        "--upstream", "off", "--access-log", "off", "--max-connections-per-client", "4",
        "--trusted-proxies", "127.0.0.1",
    )  # fmt: skip
    socks = [socket.create_connection(address_of(server.url), timeout=5) for _ in range(6)]
    try:
        answer = _exchange(server.url, [_request(b"/healthz")], "127.0.0.1")
        assert status_lines(answer) == [200], answer
        # an untrusted address still is
        held = []
        for _ in range(4):
            sock = socket.socket()
            sock.bind(("127.0.0.3", 0))
            sock.connect(address_of(server.url))
            held.append(sock)
        try:
            refused = _exchange(server.url, [_request(b"/healthz")], "127.0.0.3")
            assert status_lines(refused) == [503], refused[:200]
        finally:
            for sock in held:
                sock.close()
    finally:
        for sock in socks:
            sock.close()
