"""Connection limits over HTTPS: a connection counts from its TCP accept, not its handshake.

Bounds: a client that opens TCP connections and never finishes (or never
starts) the TLS handshake holds at most ``--max-connections`` (and
``--max-connections-per-client`` from one address) slots, each for at most
the handshake timeout (the header timeout); a connection past a limit is
closed before its handshake. In process, with short timers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from adversarial.conftest import HealthOnly
from helpers.tlscerts import TestCA
from modgate.server.admission import REFUSAL_LINGER_MAX
from modgate.server.app import ServerHandle, start_server
from modgate.server.forwarded import TrustedProxies
from modgate.server.settings import ServerSettings
from modgate.server.tls import TlsCertificate

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: modgate\r\n\r\n"
IO_TIMEOUT = 5.0
# A TLS 1.2 ClientHello record header and the start of its handshake header: a handshake
# that has begun, then stalls.
PARTIAL_CLIENT_HELLO = bytes.fromhex("16030100c8010000c40303")


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def serve(
    ca: TestCA,
    settings: ServerSettings,
    body: Callable[[ServerHandle, ssl.SSLContext], Awaitable[None]],
) -> None:
    pair = ca.issue("modgate")
    tls = TlsCertificate(pair.cert, pair.key)

    async def main() -> None:
        handle = await start_server(HealthOnly(), settings=settings, tls=tls)  # type: ignore[arg-type]
        try:
            await body(handle, ca.client_context())
        finally:
            await handle.close(grace=1.0)

    uvloop.run(main())


async def raw(handle: ServerHandle, source: str = "127.0.0.1") -> asyncio.StreamWriter:
    """A TCP connection that sends no ClientHello."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", handle.port, local_addr=(source, 0)), IO_TIMEOUT
    )
    return writer


async def https_healthz(
    handle: ServerHandle, context: ssl.SSLContext, source: str = "127.0.0.1"
) -> bytes:
    """GET /healthz over a new HTTPS connection: the answer's head, or what went wrong."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1",
                handle.port,
                ssl=context,
                server_hostname="localhost",
                local_addr=(source, 0),
            ),
            IO_TIMEOUT,
        )
    except (OSError, ssl.SSLError) as exc:
        return f"handshake failed: {exc!r}".encode()
    try:
        writer.write(HEALTHZ)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        return head + await asyncio.wait_for(reader.readexactly(length), IO_TIMEOUT)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, IndexError) as exc:
        return f"no answer: {exc!r}".encode()
    finally:
        writer.close()


def assert_503(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 503 "), f"expected a 503 answer, got {answer[:300]!r}"
    assert b"\r\nRetry-After: 1\r\n" in answer, f"no Retry-After in {answer[:300]!r}"


async def until(check: Callable[[], bool], what: str, within: float = IO_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


def test_connections_without_a_client_hello_count_and_new_ones_past_the_limit_get_503(
    ca: TestCA,
) -> None:
    limit = 12

    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        admission = handle.state.admission
        silent = [await raw(handle) for _ in range(limit)]
        await until(lambda: admission.open == limit, f"{limit} silent connections counted")
        answer = await https_healthz(handle, context)
        assert_503(answer)
        assert b"12 connections open" in answer, answer
        assert admission.refused["max-connections"] >= 1, admission.refused
        assert admission.open == limit, "a refused connection was counted"
        silent.pop().close()
        await until(lambda: admission.open == limit - 1, "the closed connection released")
        answer = await https_healthz(handle, context)
        assert answer.startswith(b"HTTP/1.1 200"), f"a freed slot was not reused: {answer!r}"
        for writer in silent:
            writer.close()
        await until(lambda: admission.open == 0, "every connection released")

    serve(ca, ServerSettings(max_connections=limit, max_connections_per_client=1000), body)


def test_one_address_cannot_hold_every_handshake(ca: TestCA) -> None:
    per_client = 6

    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        admission = handle.state.admission
        silent = [await raw(handle, "127.0.0.1") for _ in range(per_client)]
        await until(lambda: admission.open == per_client, "silent connections counted")
        answer = await https_healthz(handle, context, "127.0.0.1")
        assert_503(answer)
        assert b"too many connections from this address" in answer, answer
        assert admission.refused["per-client"] >= 1, admission.refused
        other = await https_healthz(handle, context, "127.0.0.2")
        assert other.startswith(b"HTTP/1.1 200"), f"another address was refused: {other!r}"
        for writer in silent:
            writer.close()
        await until(lambda: admission.open == 0, "every connection released")
        again = await https_healthz(handle, context, "127.0.0.1")
        assert again.startswith(b"HTTP/1.1 200"), again

    serve(ca, ServerSettings(max_connections=100, max_connections_per_client=per_client), body)


def test_a_trusted_proxy_counts_against_the_total_only(ca: TestCA) -> None:
    per_client = 3
    proxies = TrustedProxies.of([ipaddress.ip_network("127.0.0.1/32")])

    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        admission = handle.state.admission
        silent = [await raw(handle, "127.0.0.1") for _ in range(per_client + 2)]
        await until(lambda: admission.open == per_client + 2, "the proxy's connections")
        answer = await https_healthz(handle, context, "127.0.0.1")
        assert answer.startswith(b"HTTP/1.1 200"), f"the proxy was limited per client: {answer!r}"
        assert admission.per_client == {}, admission.per_client
        for writer in silent:
            writer.close()
        await until(lambda: admission.open == 0, "every connection released")

    settings = ServerSettings(
        max_connections=100, max_connections_per_client=per_client, trusted_proxies=proxies
    )
    serve(ca, settings, body)


@pytest.mark.parametrize("sent", [b"", PARTIAL_CLIENT_HELLO], ids=["nothing", "partial-hello"])
def test_a_stalled_handshake_is_closed_after_the_handshake_timeout(ca: TestCA, sent: bytes) -> None:
    timeout = 0.5

    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        admission = handle.state.admission
        reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
        writer.write(sent)
        await until(lambda: admission.open == 1, "the stalled connection counted")
        start = time.monotonic()
        try:
            data = await asyncio.wait_for(reader.read(65536), timeout + IO_TIMEOUT)
        except ConnectionResetError:
            data = b""
        took = time.monotonic() - start
        assert data == b"", f"the server sent {data[:100]!r} to a stalled handshake"
        assert took <= timeout + 2.0, f"closed after {took:.1f} s, timeout {timeout} s"
        await until(lambda: admission.open == 0, "the stalled connection's slot freed", 2.0)
        assert not handle.tls_acceptor or not handle.tls_acceptor.handshakes
        writer.close()
        answer = await https_healthz(handle, context)
        assert answer.startswith(b"HTTP/1.1 200"), answer

    settings = ServerSettings(max_connections=1, header_timeout=timeout, idle_timeout=30.0)
    serve(ca, settings, body)


def test_shutdown_ends_handshakes_under_way(ca: TestCA) -> None:
    pair = ca.issue("modgate")
    tls = TlsCertificate(pair.cert, pair.key)

    async def main() -> tuple[float, int, int]:
        settings = ServerSettings(header_timeout=30.0)
        handle = await start_server(HealthOnly(), settings=settings, tls=tls)  # type: ignore[arg-type]
        silent = [await raw(handle) for _ in range(5)]
        await until(lambda: handle.state.admission.open == 5, "silent connections counted")
        start = time.monotonic()
        await handle.close(grace=10.0)
        took = time.monotonic() - start
        assert handle.tls_acceptor is not None
        pending = sum(not task.done() for task in handle.tls_acceptor.handshakes)
        for writer in silent:
            writer.close()
        return took, handle.state.admission.open, pending

    took, still_open, pending = uvloop.run(main())
    assert took < 2.0, f"shutdown waited {took:.1f} s for handshakes that never came"
    assert (still_open, pending) == (0, 0), f"open {still_open}, handshakes {pending}"


async def _memory_bio_client(port: int, context: ssl.SSLContext) -> bytes:
    """A TLS client that sends its first request in the same segment as its ``Finished``."""
    loop = asyncio.get_running_loop()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), IO_TIMEOUT)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await loop.sock_sendall(sock, outgoing.read())
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), IO_TIMEOUT)
                if not data:
                    return b"closed during the handshake"
                incoming.write(data)
        tls.write(HEALTHZ)
        await loop.sock_sendall(sock, outgoing.read())  # Finished and the request at once
        answer = b""
        while b"ok\n" not in answer:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), IO_TIMEOUT)
            if not data:
                break
            incoming.write(data)
            answer += _drain(tls)
        return answer
    finally:
        sock.close()


def _drain(tls: ssl.SSLObject) -> bytes:
    """Every byte of application data the TLS object can decrypt now."""
    out = b""
    while True:
        try:
            chunk = tls.read(65536)
        except ssl.SSLWantReadError:
            return out
        if not chunk:
            return out
        out += chunk


def test_a_request_sent_with_the_last_handshake_message_is_answered(ca: TestCA) -> None:
    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            context.minimum_version = context.maximum_version = version
            answer = await _memory_bio_client(handle.port, context)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok\n"), (
                f"{version.name}: {answer!r}"
            )
        await until(lambda: handle.state.admission.open == 0, "the connections released")

    serve(ca, ServerSettings(), body)


def test_connections_reset_before_or_during_their_handshake_free_their_slots(ca: TestCA) -> None:
    count = 40

    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        for index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", handle.port)), IO_TIMEOUT)
            if index % 2:
                await loop.sock_sendall(sock, PARTIAL_CLIENT_HELLO)
            # close with a reset, at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        # the handshake timeout is 30 s: only the resets can have freed the slots
        await until(lambda: handle.state.admission.open == 0, "every reset connection released")
        answer = await https_healthz(handle, context)
        assert answer.startswith(b"HTTP/1.1 200"), answer

    serve(ca, ServerSettings(header_timeout=30.0, max_connections=count), body)


class _GoneTransport:
    """A TCP transport whose client left before its handshake task ever ran."""

    def __init__(self) -> None:
        self.aborted = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def test_a_handshake_cancelled_before_it_starts_frees_its_slot(ca: TestCA) -> None:
    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        acceptor = handle.tls_acceptor
        assert acceptor is not None
        transport = _GoneTransport()
        task = acceptor.accepted(transport, [])  # type: ignore[arg-type]
        assert task is not None and handle.state.admission.open == 1
        task.cancel()  # what the plain protocol does when the client leaves this early
        await asyncio.wait([task])
        await asyncio.sleep(0)
        assert handle.state.admission.open == 0, "a cancelled handshake kept its slot"
        assert transport.aborted and not acceptor.handshakes

    serve(ca, ServerSettings(), body)


def test_past_the_refusal_budget_refused_connections_are_closed_before_a_handshake(
    ca: TestCA,
) -> None:
    async def body(handle: ServerHandle, context: ssl.SSLContext) -> None:
        admission = handle.state.admission
        admitted = [await raw(handle)]
        await until(lambda: admission.open == 1, "the admitted connection counted")
        # refused, and silent in their handshake: each holds one of the refusal budget
        refused = [await raw(handle) for _ in range(REFUSAL_LINGER_MAX)]
        await until(lambda: admission.lingering == REFUSAL_LINGER_MAX, "the budget used up")
        answer = await https_healthz(handle, context)
        assert answer.startswith(b"handshake failed"), f"answered past the budget: {answer!r}"
        assert admission.lingering == REFUSAL_LINGER_MAX, admission.lingering
        # the silent ones are dropped after the refusal's handshake timeout (2 s)
        await until(lambda: admission.lingering == 0, "the refusal budget freed", 4.0)
        assert_503(await https_healthz(handle, context))
        for writer in admitted + refused:
            writer.close()

    serve(ca, ServerSettings(max_connections=1, header_timeout=30.0), body)
