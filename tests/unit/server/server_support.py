"""A fake gateway, a raw HTTP/1.1 client and a runner for the server tests."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import uvloop

from modgate.metrics import Metrics
from modgate.protocol.errors import NotFoundError
from modgate.protocol.module import ModuleVersion
from modgate.server.app import ServerHandle, start_server
from modgate.server.settings import ServerSettings
from modgate.service.answer import Answer

T = TypeVar("T")
IO_TIMEOUT = 5.0
MODULE = "example.com/mod"
INFO_PATH = "/example.com/mod/@v/v1.0.0.info"
MOD_PATH = "/example.com/mod/@v/v1.0.0.mod"
ZIP_PATH = "/example.com/mod/@v/v1.0.0.zip"
LIST_PATH = "/example.com/mod/@v/list"
LATEST_PATH = "/example.com/mod/@latest"
QUERY_INFO_PATH = "/example.com/mod/@v/master.info"


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return uvloop.run(main())


@dataclass
class FakeGateway:
    """Answers from dicts; counts calls; can delay answers or raise a given error."""

    zip_path: Path | None = None
    zip_validator: bytes | None = None
    list_max_age: int = 60
    delay: float = 0.0
    error: BaseException | None = None
    ready_state: tuple[bool, str] = (True, "ok")
    metrics: Metrics = field(default_factory=Metrics)
    calls: list[str] = field(default_factory=list)
    closed: bool = False

    async def ready(self) -> tuple[bool, str]:
        return self.ready_state

    async def _answer(self, what: str, body: bytes | None, immutable: bool) -> Answer:
        self.calls.append(what)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        if body is None:
            assert self.zip_path is not None, "FakeGateway needs zip_path to answer .zip"
            size = self.zip_path.stat().st_size
            return Answer(
                None, self.zip_path, size, immutable=immutable, validator=self.zip_validator
            )
        return Answer(body, None, len(body), immutable=immutable)

    async def list(self, module: str) -> Answer:
        return await self._answer(f"list {module}", b"v1.0.0\nv1.1.0\n", immutable=False)

    async def latest(self, module: str) -> Answer:
        body = b'{"Version":"v1.1.0","Time":"2024-01-02T03:04:05Z"}'
        return await self._answer(f"latest {module}", body, immutable=False)

    async def info(self, module: str, version: str, client: str = "") -> Answer:
        canonical = version.startswith("v")
        resolved = version if canonical else "v1.1.0"
        body = b'{"Version":"%s","Time":"2024-01-02T03:04:05Z"}' % resolved.encode()
        return await self._answer(f"info {module}@{version}", body, immutable=canonical)

    async def mod(self, mv: ModuleVersion) -> Answer:
        return await self._answer(f"mod {mv}", b"module %s\n" % mv.path.encode(), True)

    async def zip(self, mv: ModuleVersion, client: str = "") -> Answer:
        if self.zip_path is None:
            raise NotFoundError(str(mv), "no zip in this fake")
        return await self._answer(f"zip {mv}", None, immutable=True)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    raw_head: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __str__(self) -> str:
        return f"{self.status} {self.reason} {self.headers} body={self.body[:200]!r}"


class Client:
    """A raw HTTP/1.1 client over one connection: send bytes, read whole responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        client = cls(reader, writer)
        _OPEN.append(client)
        return client

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def get(self, path: str, method: str = "GET", headers: str = "") -> Response:
        await self.send(request(path, method, headers))
        return await self.read_response(head_only=method == "HEAD")

    async def read_response(self, *, head_only: bool = False) -> Response:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        lines = raw.decode("latin-1").split("\r\n")
        version, status, reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", f"status line {lines[0]!r}"
        headers = {}
        for line in lines[1:]:
            if line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = b""
        if not head_only and int(status) != 304:
            length = int(headers.get("content-length", "0"))
            body = await asyncio.wait_for(self.reader.readexactly(length), IO_TIMEOUT)
        return Response(int(status), reason, headers, body, raw)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (EOF) with nothing more to read."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), IO_TIMEOUT)
        except ConnectionResetError:
            return True
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def request(path: str, method: str = "GET", headers: str = "", version: str = "1.1") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: test\r\n{headers}\r\n".encode()


_OPEN: list[Client] = []
"""Clients still open; ``serving`` closes them, also when a test fails."""


@asynccontextmanager
async def serving(
    gateway: FakeGateway | None = None,
    settings: ServerSettings | None = None,
    access_log: io.StringIO | None = None,
) -> AsyncIterator[tuple[ServerHandle, FakeGateway]]:
    gateway = gateway or FakeGateway()
    handle = await start_server(gateway, settings=settings, access_log=access_log)
    try:
        yield handle, gateway
    finally:
        while _OPEN:
            await _OPEN.pop().close()
        await handle.close(grace=1.0)


def serve_test(
    body: Callable[[ServerHandle, FakeGateway], Awaitable[None]],
    gateway: FakeGateway | None = None,
    settings: ServerSettings | None = None,
    access_log: io.StringIO | None = None,
) -> None:
    """Run ``body`` against a fresh server in a fresh uvloop."""

    async def main() -> None:
        async with serving(gateway, settings, access_log) as (handle, gw):
            await body(handle, gw)

    run(main())
