"""Connection limits: clients past a limit get a 503 with Retry-After, never a silent close.

Bounds: ``--max-connections`` connections per serving process (by default
the descriptor limit, raised to the hard limit at start, less a reserve of
max(256, 1/8)); ``--max-connections-per-client`` per address; a client
that sends only blank lines keeps its connection for the header timeout,
not for ever.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvloop

from adversarial.conftest import HealthOnly, address_of, status_lines
from helpers import servers
from helpers.servers import ModgateFactory, ModgateHandle, metric_values
from modgate.server.admission import default_max_connections
from modgate.server.app import start_server
from modgate.server.settings import ServerSettings
from modgate.service.answer import Answer

CONNECT_TIMEOUT = 5.0
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: modgate\r\n\r\n"


@contextmanager
def idle_connections(url: str, count: int, source: str = "") -> Iterator[list[socket.socket]]:
    """``count`` connected sockets that send nothing (closed on exit)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(CONNECT_TIMEOUT)
            if source:
                sock.bind((source, 0))
            sock.connect(address_of(url))
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def ask(url: str, source: str = "", timeout: float = 5.0) -> bytes:
    """GET /healthz on a new connection (from ``source``); everything read until close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        if source:
            sock.bind((source, 0))
        sock.connect(address_of(url))
        sock.sendall(HEALTHZ)
        data = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and data.startswith(b"HTTP/1.1 200"):
                break  # keep-alive: the answer is complete
        return bytes(data)


def served_again(url: str, source: str = "", within: float = 10.0) -> bool:
    """Whether a new connection is answered 200 within ``within`` seconds (the server
    notices closed connections on its next loop turn, later on a loaded machine)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if status_lines(ask(url, source=source)) == [200]:
            return True
        time.sleep(0.1)
    return False


def wait_for_open(server: ModgateHandle, count: int) -> None:
    """Until the server counts ``count`` open connections (its accept queue drained)."""
    deadline = time.monotonic() + 10
    seen = -1.0
    while time.monotonic() < deadline:
        seen = sum(metric_values(server.metrics(), "modgate_connections_open").values())
        if seen >= count + 1:  # the /metrics request's own connection
            return
        time.sleep(0.05)
    raise AssertionError(f"the server counts {seen} open connections, expected {count + 1}")


def refused(server: ModgateHandle) -> dict[str, float]:
    return metric_values(server.metrics(), "modgate_connections_refused_total")


def assert_503(raw: bytes) -> None:
    assert status_lines(raw) == [503], f"expected one 503 answer, got {raw[:300]!r}"
    assert b"\r\nRetry-After: 1\r\n" in raw, f"no Retry-After in {raw[:300]!r}"


def test_clients_past_max_connections_get_503_and_are_counted(modgate: ModgateFactory) -> None:
    server = modgate("--upstream", "off", "--max-connections", "20", "--access-log", "off")
    with idle_connections(server.url, 19) as socks, idle_connections(server.url, 0) as last:
        wait_for_open(server, 19)  # the server accepted them (this probe is the 20th)
        last.append(socket.create_connection(address_of(server.url)))  # the 20th
        time.sleep(0.3)
        answer = ask(server.url)
        assert_503(answer)
        assert b"20 connections open" in answer, answer
        socks.pop().close()
        assert served_again(server.url), "a freed slot was not reused"
    counts = refused(server)
    assert counts.get('{reason="max-connections"}', 0) >= 1, counts
    server.wait_for_log("connections_refused")


def test_one_address_cannot_take_every_connection(modgate: ModgateFactory) -> None:
    server = modgate(
        "--upstream", "off", "--max-connections-per-client", "8", "--access-log", "off"
    )
    with idle_connections(server.url, 8, source="127.0.0.1"):
        assert_503(ask(server.url, source="127.0.0.1"))
        # another address is still served
        assert status_lines(ask(server.url, source="127.0.0.2")) == [200]
    assert served_again(server.url, source="127.0.0.1"), "closed connections still counted"
    assert refused(server).get('{reason="per-client"}', 0) >= 1


FD_LIMIT = 1024
IDLE_CLIENTS = 1100


def test_more_idle_clients_than_descriptors_get_answers_not_silence(
    modgate: ModgateFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's scenario: ``ulimit -n 1024`` and 1,100 idle connections."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_CLIENTS + 200:
        pytest.skip(f"the test process needs {IDLE_CLIENTS + 200} descriptors, has {soft}")
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    limit = default_max_connections(FD_LIMIT)
    # modgate starts with soft limit 512, hard 1024, and raises the soft one to 1024
    plain = servers.modgate_argv
    monkeypatch.setattr(
        servers,
        "modgate_argv",
        lambda *args: [prlimit, f"--nofile=512:{FD_LIMIT}", "--", *plain(*args)],
    )
    server = modgate(
        "--upstream", "off", "--access-log", "off", "--max-connections-per-client", "5000"
    )
    with idle_connections(server.url, IDLE_CLIENTS) as socks:
        # every connection past the limit was answered 503 and closed by the server
        answered = 0
        for sock in socks[limit:]:
            sock.settimeout(5)
            data = sock.recv(4096)
            assert_503(data)
            answered += 1
        assert answered == IDLE_CLIENTS - limit
        admitted = socks[limit - 1]
        admitted.settimeout(0.3)
        with pytest.raises(TimeoutError):
            admitted.recv(1)  # admitted and waiting for a request: nothing sent, not closed
        assert_503(ask(server.url))
        for sock in socks[: limit // 2]:
            sock.close()
        assert served_again(server.url), "closed connections still counted"
    counts = refused(server)
    assert counts.get('{reason="max-connections"}', 0) >= IDLE_CLIENTS - limit + 1, counts
    assert server.proc.poll() is None, "modgate died"


# ---- blank lines count against the header timer (in process: a short timer) -------------


def test_blank_lines_between_requests_do_not_keep_a_connection_open() -> None:
    header_timeout, idle_timeout = 0.5, 30.0

    async def main() -> float:
        settings = ServerSettings(header_timeout=header_timeout, idle_timeout=idle_timeout)
        handle = await start_server(HealthOnly(), settings=settings)  # type: ignore[arg-type]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
            writer.write(HEALTHZ)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            start = time.monotonic()
            closed_after = -1.0
            while time.monotonic() - start < 5:
                writer.write(b"\r\n")  # a blank line every 0.1 s: before, this kept it forever
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.1)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    closed_after = time.monotonic() - start
                    break
            writer.close()
            return closed_after
        finally:
            await handle.close(grace=1.0)

    closed_after = uvloop.run(main())
    assert closed_after >= 0, "a client sending blank lines kept its connection for 5 s"
    assert closed_after <= header_timeout + 1.5, f"closed after {closed_after:.1f} s"


class _SlowHealth(HealthOnly):
    """/healthz is answered by the router itself; a slow list answer stands for a fetch."""

    async def list(self, module: str) -> Answer:
        await asyncio.sleep(1.0)
        return Answer(b"v1.0.0\n", None, 7, immutable=False)


def test_a_blank_line_sent_during_a_slow_answer_does_not_close_the_connection_after_it() -> None:
    header_timeout = 0.5

    async def main() -> bytes:
        settings = ServerSettings(header_timeout=header_timeout, idle_timeout=30.0)
        handle = await start_server(_SlowHealth(), settings=settings)  # type: ignore[arg-type]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
            try:
                writer.write(b"GET /example.com/m/@v/list HTTP/1.1\r\nHost: m\r\n\r\n")
                await asyncio.sleep(0.2)
                writer.write(b"\r\n")  # while the answer is on its way (it takes 1 s)
                first = await asyncio.wait_for(reader.readuntil(b"v1.0.0\n"), 10)
                await asyncio.sleep(header_timeout / 2)
                writer.write(HEALTHZ)  # still open: the timer restarted after the answer
                try:
                    second = await asyncio.wait_for(reader.readuntil(b"ok\n"), 10)
                except asyncio.IncompleteReadError as exc:
                    second = exc.partial + b" (closed by the server)"
                return first + second
            finally:
                writer.close()
        finally:
            await handle.close(grace=1.0)

    both = uvloop.run(main())
    assert status_lines(both) == [200, 200], both
