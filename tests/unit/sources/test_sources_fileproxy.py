"""FileProxy: a file:// GOPROXY entry read from a directory in the download-cache layout."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modgate.protocol.errors import (
    InvalidRequestError,
    ModgateError,
    NotFoundError,
    StoreError,
    UpstreamError,
)
from modgate.protocol.module import ModuleVersion
from modgate.sources import fileproxy
from modgate.sources.fileproxy import FileProxy
from modgate.store.base import Kind
from modgate.store.filesystem import FilesystemStore

T = TypeVar("T")
MV = ModuleVersion("github.com/Azure/x", "v1.0.0")
ZIP = b"PK" + bytes(range(256)) * 64
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run(proxy: FileProxy, op: Callable[[FileProxy], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await op(proxy)
        finally:
            await proxy.aclose()

    return asyncio.run(main())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A store written by FilesystemStore, plus an @latest file as a proxy may have."""
    root = tmp_path / "proxy"
    store = FilesystemStore(root)
    store.put(MV, Kind.INFO, b'{"Version":"v1.0.0"}')
    store.put(MV, Kind.MOD, b"module github.com/Azure/x\n")
    store.put(MV, Kind.ZIP, ZIP)
    store.put_list(MV.path, b"v1.0.0\n")
    (root / "github.com/!azure/x/@latest").write_bytes(b'{"Version":"v1.0.0"}')
    return root


@pytest.fixture
def proxy(root: Path) -> FileProxy:
    return FileProxy(root)


def test_name_is_the_file_url(proxy: FileProxy, root: Path) -> None:
    assert proxy.name == root.resolve().as_uri()


@pytest.mark.parametrize(
    ("op", "want"),
    [
        (lambda p: p.list(MV.path), b"v1.0.0\n"),
        (lambda p: p.latest(MV.path), b'{"Version":"v1.0.0"}'),
        (lambda p: p.info(MV.path, "v1.0.0"), b'{"Version":"v1.0.0"}'),
        (lambda p: p.mod(MV), b"module github.com/Azure/x\n"),
    ],
    ids=["list", "latest", "info", "mod"],
)
def test_reads_the_cache_layout(
    proxy: FileProxy, op: Callable[[FileProxy], Awaitable[bytes]], want: bytes
) -> None:
    assert run(proxy, op) == want


def test_zip_is_copied_to_dest(proxy: FileProxy, tmp_path: Path) -> None:
    dest = tmp_path / "dest.zip"
    dest.write_bytes(b"stale bytes from an earlier attempt")
    run(proxy, lambda p: p.zip(MV, dest, len(ZIP)))
    assert dest.read_bytes() == ZIP


@pytest.mark.parametrize(
    "op",
    [
        lambda p: p.list("example.com/none"),
        lambda p: p.latest("example.com/none"),
        lambda p: p.info(MV.path, "v9.9.9"),
        lambda p: p.mod(ModuleVersion(MV.path, "v9.9.9")),
        lambda p: p.zip(ModuleVersion(MV.path, "v9.9.9"), Path("unused"), 1 << 20),
    ],
    ids=["list", "latest", "info", "mod", "zip"],
)
def test_missing_files_are_not_found(
    proxy: FileProxy, op: Callable[[FileProxy], Awaitable[object]]
) -> None:
    with pytest.raises(NotFoundError) as info:
        run(proxy, op)
    assert type(info.value) is NotFoundError
    assert proxy.name in str(info.value) and "not found" in str(info.value)


def test_oversized_files_are_refused(proxy: FileProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileproxy, "MOD_MAX_BYTES", 10)
    with pytest.raises(UpstreamError, match="larger than 10 bytes"):
        run(proxy, lambda p: p.mod(MV))


def test_zip_beyond_max_size_is_refused(proxy: FileProxy, tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match=f"larger than {len(ZIP) - 1} bytes"):
        run(proxy, lambda p: p.zip(MV, tmp_path / "dest.zip", len(ZIP) - 1))


def test_zip_into_an_unwritable_dest_is_a_store_error(proxy: FileProxy, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot write"):
        run(proxy, lambda p: p.zip(MV, tmp_path / "no" / "such" / "dir.zip", len(ZIP)))


def test_names_escaping_root_are_refused(proxy: FileProxy, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "@v").mkdir(parents=True)
    (outside / "@v" / "v1.0.0.mod").write_bytes(b"secret")
    (root / "evil.com").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UpstreamError, match="leads outside"):
        run(proxy, lambda p: p.mod(ModuleVersion("evil.com", "v1.0.0")))
    bad: list[Callable[[FileProxy], Awaitable[object]]] = [
        lambda p: p.mod(ModuleVersion("../outside", "v1.0.0")),
        lambda p: p.info("example.com/x", "../../../outside/@v/v1.0.0"),
        lambda p: p.list("/abs.com"),
    ]
    for op in bad:
        with pytest.raises(InvalidRequestError):
            run(proxy, op)


def test_a_directory_in_place_of_a_file_is_not_not_found(proxy: FileProxy, root: Path) -> None:
    (root / "example.com/d/@v/v1.0.0.mod").mkdir(parents=True)
    with pytest.raises(ModgateError) as info:
        run(proxy, lambda p: p.mod(ModuleVersion("example.com/d", "v1.0.0")))
    assert type(info.value) is UpstreamError, f"got {type(info.value).__name__}: {info.value}"


def test_os_errors_are_not_not_found(proxy: FileProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def failing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "v1.0.0.mod":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing_open)
    with pytest.raises(UpstreamError, match="Permission denied") as info:
        run(proxy, lambda p: p.mod(MV))
    assert "github.com/!azure/x/@v/v1.0.0.mod" in str(info.value)


@pytest.mark.skipif(IS_ROOT, reason="root bypasses file permissions")
def test_permission_denied_is_not_not_found(proxy: FileProxy, root: Path) -> None:
    path = root / "github.com/!azure/x/@v/v1.0.0.mod"
    path.chmod(0)
    try:
        with pytest.raises(UpstreamError, match="Permission denied"):
            run(proxy, lambda p: p.mod(MV))
    finally:
        path.chmod(0o644)
