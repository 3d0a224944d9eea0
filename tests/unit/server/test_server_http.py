"""HTTP/1.1 behaviour: keep-alive, pipelining, limits, malformed and slow clients."""

from __future__ import annotations

import asyncio
import time

import pytest
from server_support import (
    INFO_PATH,
    LIST_PATH,
    MOD_PATH,
    Client,
    FakeGateway,
    request,
    serve_test,
)

from modgate.server.app import ServerHandle
from modgate.server.settings import ServerSettings


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for path in (INFO_PATH, MOD_PATH, LIST_PATH, INFO_PATH, "/healthz"):
            resp = await client.get(path)
            assert resp.status == 200, f"GET {path}: {resp}"
            assert resp.header("connection") is None, str(resp)
        await client.close()

    serve_test(body)


def test_pipelined_requests_in_one_write_answer_in_order() -> None:
    paths = [INFO_PATH, "/example.com/mod/@v/v1.0.1.mod", INFO_PATH, "/nope", "/healthz"]
    paths += [f"/example.com/mod/@v/v1.0.{i}.info" for i in range(20)] + [INFO_PATH]

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        # Warm one entry so hits and slow misses interleave.
        await client.get(INFO_PATH)
        gw.delay = 0.01
        await client.send(b"".join(request(p) for p in paths))
        for path in paths:
            resp = await client.read_response()
            if path.endswith(".info"):
                version = path.rsplit("/", 1)[1].removesuffix(".info")
                assert f'"Version":"{version}"'.encode() in resp.body, f"{path}: {resp}"
            elif path.endswith(".mod"):
                assert resp.body.startswith(b"module "), f"{path}: {resp}"
            elif path == "/nope":
                assert resp.status == 400, f"{path}: {resp}"
            else:
                assert resp.body == b"ok\n", f"{path}: {resp}"
        await client.close()

    serve_test(body)


def test_long_pipeline_is_served_completely_with_reading_paused() -> None:
    count = 300
    paths = [f"/example.com/mod/@v/v1.0.{i}.info" for i in range(count)]

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        gw.delay = 0.001
        await client.send(b"".join(request(p) for p in paths))
        for i in range(count):
            resp = await client.read_response()
            assert f'"Version":"v1.0.{i}"'.encode() in resp.body, f"response {i}: {resp}"
        await client.close()

    serve_test(body, settings=ServerSettings(max_pipelined=4))


@pytest.mark.parametrize(
    ("version", "headers", "expect_connection", "stays_open"),
    [
        ("1.1", "", None, True),
        ("1.1", "Connection: keep-alive\r\n", None, True),
        ("1.1", "Connection: close\r\n", "close", False),
        ("1.0", "", "close", False),
        ("1.0", "Connection: keep-alive\r\n", "keep-alive", True),
    ],
)
@pytest.mark.parametrize("path", [INFO_PATH, "/healthz"])
def test_connection_persistence(
    path: str, version: str, headers: str, expect_connection: str | None, stays_open: bool
) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.get(path)  # a hot-set entry for the second round
        for _ in range(2):
            if not stays_open:
                client = await Client.connect(handle.port)
            # A second pipelined request after a "close" one must be ignored.
            await client.send(request(path, "GET", headers, version) + request("/healthz"))
            resp = await client.read_response()
            assert resp.status == 200, str(resp)
            assert resp.header("connection") == expect_connection, str(resp)
            if stays_open:
                assert (await client.read_response()).body == b"ok\n"
            else:
                assert await client.closed_by_server(), "server kept the connection open"
        await client.close()

    serve_test(body)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: 5\r\n", 413),
        ("Transfer-Encoding: chunked\r\n", 400),
    ],
)
def test_requests_with_a_body_are_rejected_and_closed(headers: str, status: int) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        payload = b"hello" if "Length" in headers else b"5\r\nhello\r\n0\r\n\r\n"
        await client.send(request(INFO_PATH, "GET", headers) + payload + request("/healthz"))
        resp = await client.read_response()
        assert resp.status == status, str(resp)
        assert resp.header("connection") == "close", str(resp)
        assert await client.closed_by_server(), "connection left open after a body"
        assert gw.calls == []

    serve_test(body)


def test_content_length_zero_is_accepted() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        resp = await client.get(INFO_PATH, headers="Content-Length: 0\r\n")
        assert resp.status == 200, str(resp)
        assert (await client.get("/healthz")).status == 200

    serve_test(body)


LIMITS = ServerSettings(max_target=256, max_header_bytes=1024, max_headers=10)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request("/" + "a" * 300), 414),
        (request(INFO_PATH, headers="".join(f"X-{i}: y\r\n" for i in range(11))), 431),
        (request(INFO_PATH, headers="X-Big: " + "b" * 1100 + "\r\n"), 431),
        # A header line that never ends: caught by the raw head size before it completes.
        (b"GET / HTTP/1.1\r\nX-Endless: " + b"c" * 200_000, 431),
    ],
    ids=["target", "header-count", "header-bytes", "unfinished-header"],
)
def test_limits(raw: bytes, status: int) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.send(raw)
        resp = await client.read_response()
        assert resp.status == status, str(resp)
        assert resp.header("connection") == "close", str(resp)
        assert await client.closed_by_server()
        assert gw.calls == []

    serve_test(body, settings=LIMITS)


def test_requests_within_limits_pass() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        headers = "".join(f"X-{i}: y\r\n" for i in range(9))
        resp = await client.get("/example.com/mod/@v/v1.0.0.info", headers=headers)
        assert resp.status == 200, str(resp)

    serve_test(body, settings=LIMITS)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS client hello
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET /a b HTTP/1.1\r\n\r\n",
        b"FOO / HTTP/1.1\r\n\r\n",
    ],
    ids=["tls", "version", "no-colon", "nul", "space-in-target", "unknown-method"],
)
def test_malformed_requests_get_400_and_close(raw: bytes) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.send(raw)
        resp = await client.read_response()
        assert resp.status == 400, str(resp)
        assert resp.body.startswith(b"malformed request"), str(resp)
        assert await client.closed_by_server()

    serve_test(body)


def test_answers_before_a_malformed_request_are_kept() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        gw.delay = 0.02
        await client.send(request(INFO_PATH) + request("/healthz") + b"GARBAGE\r\n\r\n")
        assert (await client.read_response()).status == 200
        assert (await client.read_response()).body == b"ok\n"
        assert (await client.read_response()).status == 400
        assert await client.closed_by_server()

    serve_test(body)


SHORT = ServerSettings(header_timeout=0.3, idle_timeout=0.4)


def test_slow_client_gets_408_and_is_closed() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        start = time.monotonic()
        await client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # slowloris: a byte now and then never completes the head
            await asyncio.sleep(0.1)
            await client.send(b"X")
        resp = await client.read_response()
        assert resp.status == 408, str(resp)
        assert await client.closed_by_server()
        elapsed = time.monotonic() - start
        assert elapsed < 3.0, f"closed after {elapsed:.2f} s with a 0.3 s header timeout"

    serve_test(body, settings=SHORT)


def test_silent_connection_is_closed_without_answer() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        assert await client.closed_by_server()

    serve_test(body, settings=SHORT)


def test_idle_keep_alive_connection_is_closed() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        assert (await client.get("/healthz")).status == 200
        start = time.monotonic()
        assert await client.closed_by_server()
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 3.0, f"idle connection closed after {elapsed:.2f} s, not ~0.4 s"

    serve_test(body, settings=SHORT)


def test_slow_gateway_is_not_cut_by_the_header_timeout() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        gw.delay = 0.8
        resp = await client.get(INFO_PATH)
        assert resp.status == 200, str(resp)
        assert (await client.get("/healthz")).status == 200

    serve_test(body, settings=SHORT)
