"""Large files: streamed from disk byte for byte, with flow control."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from server_support import ZIP_PATH, Client, FakeGateway, request, serve_test

from modgate.protocol.module import ModuleVersion
from modgate.server.app import ServerHandle
from modgate.server.settings import KIB, ServerSettings
from modgate.service.answer import Answer

SMALL_ENTRIES = ServerSettings(hot_entry_max_bytes=64 * KIB)


@pytest.fixture
def big_zip(tmp_path: Path) -> Path:
    path = tmp_path / "big.zip"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def test_large_file_equals_the_file(big_zip: Path) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):
            resp = await client.get(ZIP_PATH)
            assert resp.status == 200, str(resp)
            assert resp.header("content-length") == str(big_zip.stat().st_size)
            assert resp.body == big_zip.read_bytes(), "body differs from the file"
        assert len(gw.calls) == 2, "a file over the entry limit must not enter the hot set"
        assert len(handle.state.hot) == 0

    serve_test(body, FakeGateway(zip_path=big_zip), settings=SMALL_ENTRIES)


def test_large_file_to_many_clients_at_once(big_zip: Path) -> None:
    expected = big_zip.read_bytes()

    async def fetch(port: int) -> bytes:
        client = await Client.connect(port)
        return (await client.get(ZIP_PATH)).body

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        bodies = await asyncio.gather(*(fetch(handle.port) for _ in range(8)))
        for i, got in enumerate(bodies):
            assert got == expected, f"client {i}: {len(got)} bytes differ from the file"

    serve_test(body, FakeGateway(zip_path=big_zip), settings=SMALL_ENTRIES)


def test_large_file_pipelined_with_small_answers(big_zip: Path) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.send(request(ZIP_PATH) + request("/healthz") + request(ZIP_PATH, "HEAD"))
        assert (await client.read_response()).body == big_zip.read_bytes()
        assert (await client.read_response()).body == b"ok\n"
        head = await client.read_response(head_only=True)
        assert head.header("content-length") == str(big_zip.stat().st_size), str(head)
        assert (await client.get("/healthz")).body == b"ok\n", "HEAD sent a body"

    serve_test(body, FakeGateway(zip_path=big_zip), settings=SMALL_ENTRIES)


def test_small_file_enters_the_hot_set(tmp_path: Path) -> None:
    small = tmp_path / "small.zip"
    small.write_bytes(b"PK" * 5000)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        first = await client.get(ZIP_PATH)
        second = await client.get(ZIP_PATH)
        assert first.body == second.body == small.read_bytes()
        assert len(gw.calls) == 1, f"gateway calls: {gw.calls}"

    serve_test(body, FakeGateway(zip_path=small), settings=SMALL_ENTRIES)


class ShrunkGateway(FakeGateway):
    """Announces more bytes than the file holds, as if it were truncated meanwhile."""

    async def zip(self, mv: ModuleVersion, client: str = "") -> Answer:
        assert self.zip_path is not None
        return Answer(None, self.zip_path, self.zip_path.stat().st_size + 1000, immutable=True)


def test_file_shorter_than_announced_drops_the_connection(big_zip: Path) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.send(request(ZIP_PATH))
        head = await client.read_response(head_only=True)
        assert head.status == 200
        got = b""
        while chunk := await asyncio.wait_for(client.reader.read(1 << 20), 5):
            got += chunk
        assert got == big_zip.read_bytes(), "the bytes that were there should have been sent"

    serve_test(body, ShrunkGateway(zip_path=big_zip), settings=SMALL_ENTRIES)


def test_client_that_stops_reading_is_dropped(tmp_path: Path) -> None:
    huge = tmp_path / "huge.zip"
    huge.write_bytes(b"\0" * (64 * 1024 * 1024))
    settings = ServerSettings(hot_entry_max_bytes=64 * KIB, send_timeout=0.3)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.send(request(ZIP_PATH))
        deadline = time.monotonic() + 5
        while handle.state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not handle.state.connections, "a client that reads nothing was kept"
        other = await Client.connect(handle.port)
        assert (await other.get("/healthz")).status == 200

    serve_test(body, FakeGateway(zip_path=huge), settings=settings)
