"""Hot responses sent from memory files: when a file is made, renewed, closed; and the bytes."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from pathlib import Path

import pytest
from server_support import ZIP_PATH, Client, FakeGateway, request, serve_test

from modgate.server import memfiles
from modgate.server.app import ServerHandle
from modgate.server.hotcache import HotCache, HotEntry
from modgate.server.memfiles import DISK_AFTER_SENDS, MemFiles
from modgate.server.settings import ServerSettings

KEY = ("zip", 200)
HEAD = b"Content-Length: 10000\r\n\r\n"


def entry(body: bytes = b"z" * 10_000) -> HotEntry:
    return HotEntry(HEAD + body, len(HEAD), None, KEY)


def file_bytes(fd: int) -> bytes:
    return os.pread(fd, 1 << 24, 0)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_file_is_made_on_the_second_hit_of_a_second() -> None:
    files, e = MemFiles(budget=1 << 20), entry()
    assert files.fd_for(e, b"P1") == -1, "a single hit is written from memory"
    fd = files.fd_for(e, b"P1")
    assert fd >= 0 and file_bytes(fd) == b"P1" + e.data
    assert files.fd_for(e, b"P1") == fd, "the same second reuses the file"
    assert files.bytes == 2 + len(e.data) and len(files) == 1
    files.close()
    assert e.fd == -1 and files.bytes == 0


def test_a_new_second_gets_a_new_file_and_the_old_one_is_closed() -> None:
    files, e = MemFiles(budget=1 << 20), entry()
    before = open_fds()
    files.fd_for(e, b"P1")
    files.fd_for(e, b"P1")
    assert files.fd_for(e, b"P2") == -1, "first hit of the new second"
    new = files.fd_for(e, b"P2")
    assert new >= 0 and file_bytes(new) == b"P2" + e.data
    assert open_fds() == before + 1, "the file of the previous second was left open"
    assert len(files) == 1 and files.bytes == 2 + len(e.data)
    files.close()
    assert open_fds() == before


def test_small_bodies_and_oversized_entries_get_no_file() -> None:
    files = MemFiles(budget=20_000, min_body=8 * 1024)
    small = entry(b"s" * 100)
    big = entry(b"b" * 30_000)
    for e in (small, big):
        files.fd_for(e, b"P")
        assert files.fd_for(e, b"P") == -1
    assert len(files) == 0


def test_the_budget_closes_the_oldest_file_first() -> None:
    files = MemFiles(budget=25_000)
    a, b, c = entry(), entry(), entry()
    for e in (a, b, c):
        files.fd_for(e, b"P")
        files.fd_for(e, b"P")
    assert a.fd == -1, "the oldest file was kept over the budget"
    assert b.fd >= 0 and c.fd >= 0
    assert files.bytes <= files.budget
    files.close()


def test_leaving_the_hot_set_closes_the_file() -> None:
    files = MemFiles(budget=1 << 20)
    cache = HotCache(budget=2 * 10_200 + 600, entry_max=1 << 20, files=files)
    before = open_fds()
    first = entry()
    cache.put(b"/a", first)
    files.fd_for(first, b"P")
    files.fd_for(first, b"P")
    assert open_fds() == before + 1
    cache.put(b"/b", entry())
    cache.put(b"/c", entry())  # evicts /a
    assert cache.get(b"/a", 0.0) is None
    assert first.fd == -1 and open_fds() == before, "an evicted entry kept its file"
    cache.close()


def test_without_memfd_nothing_is_sent_from_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", refuse)
    files, e = MemFiles(budget=1 << 20), entry()
    files.fd_for(e, b"P")
    assert files.fd_for(e, b"P") == -1 and not files.enabled


def hot_file(files: MemFiles, e: HotEntry, prefix: bytes) -> int:
    """The file ``e`` gets in the second of ``prefix`` after a second of many sends."""
    e.sends = DISK_AFTER_SENDS
    files.fd_for(e, prefix)
    return files.fd_for(e, prefix)


def test_the_hottest_entries_get_unnamed_files_in_the_directory(tmp_path: Path) -> None:
    files, e = MemFiles(budget=1 << 20, directory=tmp_path), entry()
    files.fd_for(e, b"P1")
    first = files.fd_for(e, b"P1")
    assert os.readlink(f"/proc/self/fd/{first}").startswith("/memfd:"), "not sent often yet"
    e.sends = DISK_AFTER_SENDS - 1
    files.fd_for(e, b"P2")
    assert os.readlink(f"/proc/self/fd/{files.fd_for(e, b'P2')}").startswith("/memfd:")
    fd = hot_file(files, e, b"P3")
    assert fd >= 0 and file_bytes(fd) == b"P3" + e.data
    assert e.sends == 0, "the count starts again with each file"
    info = os.fstat(fd)
    assert stat.S_ISREG(info.st_mode) and info.st_nlink == 0, "not an unnamed regular file"
    assert info.st_dev == tmp_path.stat().st_dev, "the file is not on the directory's filesystem"
    assert os.listdir(tmp_path) == [], "the file has a name"
    before = open_fds()
    files.close()
    assert open_fds() == before - 1 and e.fd == -1


def test_a_directory_that_takes_no_unnamed_files_falls_back_to_memory_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing"
    files, e = MemFiles(budget=1 << 20, directory=missing), entry()
    fd = hot_file(files, e, b"P1")
    assert fd >= 0 and file_bytes(fd) == b"P1" + e.data
    assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:"), "not a memory file"
    assert files.directory is None
    warnings = [r.getMessage() for r in caplog.records if "unnamed files" in r.getMessage()]
    assert len(warnings) == 1 and str(missing) in warnings[0], warnings
    assert hot_file(files, entry(), b"P1") >= 0
    assert len([r for r in caplog.records if "unnamed files" in r.getMessage()]) == 1
    files.close()


def test_a_full_disk_falls_back_to_memory_files_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = os.pwritev
    failed: list[int] = []

    def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            failed.append(fd)
            raise OSError(28, "No space left on device")
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "pwritev", pwritev)
    files, e = MemFiles(budget=1 << 20, directory=tmp_path), entry()
    before = open_fds()
    fd = hot_file(files, e, b"P1")
    assert len(failed) == 1, "the disk file was not tried"
    assert fd >= 0 and file_bytes(fd) == b"P1" + e.data
    assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:"), "not a memory file"
    assert open_fds() == before + 1, "the failed disk file was left open"
    for prefix in (b"P2", b"P3"):
        assert hot_file(files, e, prefix) >= 0
    warnings = [r.getMessage() for r in caplog.records if "unnamed files" in r.getMessage()]
    assert len(failed) == 1 and len(warnings) == 1, warnings
    assert "No space left on device" in warnings[0], warnings
    files.close()


# ---- through the server ------------------------------------------------------------------------


@pytest.fixture
def big_zip(tmp_path: Path) -> Path:
    path = tmp_path / "v1.0.0.zip"
    path.write_bytes(b"PK" + os.urandom(200_000))
    return path


@pytest.mark.parametrize("where", ["memory", "directory"])
def test_hot_zip_bytes_are_the_same_from_memory_and_from_the_file(
    big_zip: Path, tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memfiles, "DISK_AFTER_SENDS", 2)  # hot enough after two sends
    want = big_zip.read_bytes()
    settings = ServerSettings(hot_file_dir=tmp_path if where == "directory" else None)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        dates = set()
        for i in range(12):
            if i == 6:  # a new second: the file is renewed with the new Date
                handle.state.update_clock(time.monotonic(), time.time() + 5)
            resp = await client.get(ZIP_PATH)
            assert resp.status == 200 and resp.body == want, f"request {i}: {resp}"
            assert resp.header("content-length") == str(len(want))
            dates.add(resp.header("date"))
        assert len(dates) == 2, f"Date headers {dates}"
        assert len(handle.state.hot.files) == 1, "the hot zip was never sent from a file"
        (held,) = handle.state.hot.entries.values()
        on_disk = os.fstat(held.fd).st_dev == tmp_path.stat().st_dev
        assert on_disk == (where == "directory"), f"the file is not where asked ({where})"
        await client.close()

    serve_test(body, FakeGateway(zip_path=big_zip), settings=settings)


def test_a_client_that_reads_slowly_gets_every_byte(big_zip: Path) -> None:
    # The socket takes part of the response; the rest goes through the transport.
    big_zip.write_bytes(b"PK" + os.urandom(900_000))
    want = big_zip.read_bytes()

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        warm = await Client.connect(handle.port)
        for _ in range(3):
            assert (await warm.get(ZIP_PATH)).body == want
        await warm.close()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", handle.port))
        while not handle.state.connections:
            await asyncio.sleep(0.001)
        (conn,) = handle.state.connections
        server_side = conn._transport.get_extra_info("socket")  # type: ignore[union-attr]
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await loop.sock_sendall(sock, request(ZIP_PATH) * 3)
        received = bytearray()
        while received.count(want) < 3:
            await asyncio.sleep(0.001)
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
            assert chunk, f"connection closed after {len(received)} bytes"
            received += chunk
        assert received.count(b"HTTP/1.1 200 OK") == 3
        sock.close()

    serve_test(body, FakeGateway(zip_path=big_zip))
