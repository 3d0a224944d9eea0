"""A ``file://`` entry of a GOPROXY list: a directory in the download-cache layout.

The directory is read the way the go command reads such a proxy: the request
``<escaped module>/@v/<escaped version>.mod`` is the file of that name, a
missing file is "not found" (404, the chain may fall through), and ``@latest``
is a file named ``@latest`` next to ``@v``. A module cache
(``GOMODCACHE/cache/download``) or another modgate store can be used as is.

Reads are bounded by the same limits as an upstream proxy's answers, run in a
worker thread, and never leave the directory: a name or a symbolic link that
resolves outside it is refused.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import BinaryIO

from modgate.protocol.errors import NotFoundError, StoreError, UpstreamError
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion
from modgate.sources.upstream import INFO_MAX_BYTES, LIST_MAX_BYTES, MOD_MAX_BYTES
from modgate.store.base import Kind
from modgate.store.filesystem import VERSIONS_DIR, artifact_relpath, list_relpath

LATEST_FILE = "@latest"
COPY_CHUNK = 1 << 20


class FileProxy:
    """The GOPROXY protocol served from the directory ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.name = self.root.as_uri()

    async def list(self, module: str) -> bytes:
        return await self._read(module, list_relpath(module), LIST_MAX_BYTES)

    async def latest(self, module: str) -> bytes:
        rel = f"{escape_path(module)}/{LATEST_FILE}"
        return await self._read(module, rel, INFO_MAX_BYTES)

    async def info(self, module: str, version: str) -> bytes:
        rel = f"{escape_path(module)}/{VERSIONS_DIR}/{escape_version(version)}.{Kind.INFO.value}"
        return await self._read(f"{module}@{version}", rel, INFO_MAX_BYTES)

    async def mod(self, mv: ModuleVersion) -> bytes:
        return await self._read(str(mv), artifact_relpath(mv, Kind.MOD), MOD_MAX_BYTES)

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        src = self._path(str(mv), artifact_relpath(mv, Kind.ZIP))
        await asyncio.to_thread(self._copy, str(mv), src, dest, max_size)

    async def aclose(self) -> None:
        """Nothing to release: every read opens and closes its own file."""

    def _path(self, subject: str, rel: str) -> Path:
        path = self.root / rel
        if not Path(os.path.realpath(path)).is_relative_to(self.root):
            reason = f"{self.name}/{rel} leads outside {self.name}; refusing it"
            raise UpstreamError(subject, reason)
        return path

    async def _read(self, subject: str, rel: str, limit: int) -> bytes:
        path = self._path(subject, rel)
        return await asyncio.to_thread(self._read_bounded, subject, path, limit)

    def _read_bounded(self, subject: str, path: Path, limit: int) -> bytes:
        try:
            with path.open("rb") as fh:
                data = fh.read(limit + 1)
        except FileNotFoundError as exc:
            raise NotFoundError(subject, f"{self._url(path)} not found") from exc
        except OSError as exc:
            raise self._unreadable(subject, path, exc) from exc
        if len(data) > limit:
            raise _too_large(subject, self._url(path), limit)
        return data

    def _copy(self, subject: str, src: Path, dest: Path, max_size: int) -> None:
        try:
            inp = src.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(subject, f"{self._url(src)} not found") from exc
        except OSError as exc:
            raise self._unreadable(subject, src, exc) from exc
        with inp:
            if _fstat_size(inp.fileno()) > max_size:
                raise _too_large(subject, self._url(src), max_size)
            try:
                out = dest.open("wb")
            except OSError as exc:
                raise _unwritable(subject, dest, exc) from exc
            with out:
                copied = 0
                while chunk := self._read_chunk(subject, src, inp):
                    copied += len(chunk)
                    if copied > max_size:
                        raise _too_large(subject, self._url(src), max_size)
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise _unwritable(subject, dest, exc) from exc

    def _read_chunk(self, subject: str, src: Path, inp: BinaryIO) -> bytes:
        try:
            return inp.read(COPY_CHUNK)
        except OSError as exc:
            raise self._unreadable(subject, src, exc) from exc

    def _url(self, path: Path) -> str:
        return f"{self.name}/{path.relative_to(self.root).as_posix()}"

    def _unreadable(self, subject: str, path: Path, exc: OSError) -> UpstreamError:
        detail = exc.strerror or type(exc).__name__
        reason = (
            f"cannot read {self._url(path)}: {detail}; check the file:// upstream's permissions"
        )
        return UpstreamError(subject, reason)


def _too_large(subject: str, url: str, limit: int) -> UpstreamError:
    return UpstreamError(subject, f"{url} is larger than {limit} bytes; refusing it")


def _unwritable(subject: str, dest: Path, exc: OSError) -> StoreError:
    detail = exc.strerror or type(exc).__name__
    return StoreError(subject, f"cannot write {dest}: {detail}; check the store's disk")


def _fstat_size(fd: int) -> int:
    """The size of an open file (0 if fstat fails; the byte count still applies)."""
    try:
        return os.fstat(fd).st_size
    except OSError:
        return 0
