"""A bounded local disk cache in front of a store whose artifacts are not local files.

Artifacts are immutable, so a copy on local disk never goes stale: once an
artifact was read through the cache, ``get``, ``size`` and ``local_path``
answer from the local file (the server sends it with ``sendfile``), and the
object store is asked only on a miss. Everything else (writes, lists, meta,
locks) goes straight to the store behind it.

Layout: ``<directory>/<escaped module>/@v/<escaped version>.<kind>``, the
store's own layout. A copy is written to a temp file and renamed into place,
so the cache holds only complete artifacts. The cache holds at most
``max_bytes``: the least recently used files are removed beyond that (a
reader that has the file open keeps reading it; a file handed out in the
last ``EVICT_GRACE`` seconds stays while the cache holds less than twice its
bound, so that a path is not removed between ``local_path`` and the open).
A cache directory left by a previous run is taken over (its files count
against the bound).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from modgate.protocol.errors import StoreError
from modgate.protocol.module import ModuleVersion
from modgate.store.base import Kind, Stamped
from modgate.store.filesystem import artifact_relpath

if TYPE_CHECKING:
    from modgate.store.base import Store

TEMP_SUFFIX = ".part"
EVICT_GRACE = 10.0
"""Seconds a file just handed out is kept although the cache is over its bound (up to twice
the bound): the server opens the path after ``local_path`` returned it."""


class Remote(Protocol):
    """What the cache needs of the store behind it: the Store port plus a streaming read."""

    root: Path

    def get(self, mv: ModuleVersion, kind: Kind) -> bytes | None: ...
    def size(self, mv: ModuleVersion, kind: Kind) -> int | None: ...
    def download(self, mv: ModuleVersion, kind: Kind, dest: Path) -> bool: ...
    def presign(self, mv: ModuleVersion, kind: Kind, expiry: int) -> str: ...
    def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None: ...
    def put_file(self, mv: ModuleVersion, kind: Kind, src: Path) -> None: ...
    def temp_file(self) -> AbstractContextManager[Path]: ...
    def versions(self, module: str) -> list[str]: ...
    def get_list(self, module: str) -> Stamped | None: ...
    def put_list(self, module: str, data: bytes) -> None: ...
    def get_meta(self, name: str) -> Stamped | None: ...
    def put_meta(self, name: str, data: bytes) -> None: ...
    def lock(self, name: str) -> AbstractContextManager[None]: ...
    def try_lock(self, name: str) -> Callable[[], None] | None: ...
    def modules(self) -> Iterator[str]: ...
    def health(self) -> str | None: ...


class CachedStore:
    """The Store port: ``remote`` with its hot artifacts kept under ``directory``."""

    def __init__(
        self, remote: Remote, directory: Path, max_bytes: int, *, grace: float = EVICT_GRACE
    ) -> None:
        self.remote = remote
        self.root = remote.root
        self.max_bytes = max_bytes
        self._guard = threading.Lock()
        self._used: OrderedDict[Path, int] = OrderedDict()
        self._last: dict[Path, float] = {}
        self.grace = grace
        self._total = 0
        self.hits = self.misses = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.directory = directory.resolve(strict=True)
        except OSError as exc:
            raise StoreError(
                str(directory),
                f"cannot create the local disk cache (--store-cache): {exc.strerror}; "
                "check its permissions and free space",
            ) from exc
        self._adopt()

    # -- cached reads ---------------------------------------------------------

    def get(self, mv: ModuleVersion, kind: Kind) -> bytes | None:
        path = self.local_path(mv, kind)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:  # evicted between the two calls: read it remotely
            return self.remote.get(mv, kind)

    def size(self, mv: ModuleVersion, kind: Kind) -> int | None:
        path = self._path(mv, kind)
        size = self._touch(path)
        return size if size is not None else self.remote.size(mv, kind)

    @property
    def reads_block(self) -> bool:
        """Whether a read that misses the cache is a round trip (the object store's: yes)."""
        return bool(getattr(self.remote, "reads_block", True))

    def cached_path(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        """The artifact's local copy when the cache has one; never asks the remote store."""
        path = self._path(mv, kind)
        if self._touch(path) is not None:
            self.hits += 1
            return path
        return None

    def presign(self, mv: ModuleVersion, kind: Kind, expiry: int) -> str:
        return self.remote.presign(mv, kind, expiry)

    def local_path(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        path = self._path(mv, kind)
        if self._touch(path) is not None:
            self.hits += 1
            return path
        self.misses += 1
        temp = path.parent / f".{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.remote.download(mv, kind, temp):
                return None
            temp.replace(path)
            size = path.stat().st_size
        except OSError as exc:
            raise StoreError(
                str(mv),
                f"cannot write the local disk cache (--store-cache): {exc.strerror}; "
                "check its disk",
            ) from exc
        finally:
            with suppress(OSError):
                temp.unlink(missing_ok=True)
        self._add(path, size)
        return path

    # -- everything else goes to the remote store -------------------------------

    def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None:
        self.remote.put(mv, kind, data)

    def put_file(self, mv: ModuleVersion, kind: Kind, src: Path) -> None:
        self.remote.put_file(mv, kind, src)

    def temp_file(self) -> AbstractContextManager[Path]:
        return self.remote.temp_file()

    def versions(self, module: str) -> list[str]:
        return self.remote.versions(module)

    def get_list(self, module: str) -> Stamped | None:
        return self.remote.get_list(module)

    def put_list(self, module: str, data: bytes) -> None:
        self.remote.put_list(module, data)

    def get_meta(self, name: str) -> Stamped | None:
        return self.remote.get_meta(name)

    def put_meta(self, name: str, data: bytes) -> None:
        self.remote.put_meta(name, data)

    def lock(self, name: str) -> AbstractContextManager[None]:
        return self.remote.lock(name)

    def try_lock(self, name: str) -> Callable[[], None] | None:
        return self.remote.try_lock(name)

    def modules(self) -> Iterator[str]:
        return self.remote.modules()

    def health(self) -> str | None:
        return self.remote.health()

    # -- bookkeeping ------------------------------------------------------------

    def cached_bytes(self) -> int:
        return self._total

    def _path(self, mv: ModuleVersion, kind: Kind) -> Path:
        return self.directory / artifact_relpath(mv, kind)

    def _touch(self, path: Path) -> int | None:
        with self._guard:
            size = self._used.get(path)
            if size is not None:
                self._used.move_to_end(path)
                self._last[path] = time.monotonic()
                return size
        return None

    def _add(self, path: Path, size: int, *, handed_out: bool = True) -> None:
        evict: list[Path] = []
        with self._guard:
            if path in self._used:
                return
            self._used[path] = size
            now = time.monotonic()
            self._last[path] = now if handed_out else 0.0
            self._total += size
            while self._total > self.max_bytes and len(self._used) > 1:
                old, old_size = next(iter(self._used.items()))
                if (
                    now - self._last.get(old, 0.0) < self.grace
                    and self._total <= 2 * self.max_bytes
                ):
                    break  # just handed out: its reader may not have opened it yet
                del self._used[old]
                self._last.pop(old, None)
                self._total -= old_size
                evict.append(old)
        for old in evict:
            with suppress(OSError):
                old.unlink()

    def _adopt(self) -> None:
        """Count (and keep, oldest first) the files a previous run cached; drop its temp files."""
        found: list[tuple[float, Path, int]] = []
        for dirpath, _, names in os.walk(self.directory):
            for name in names:
                path = Path(dirpath) / name
                with suppress(OSError):
                    if name.endswith(TEMP_SUFFIX):
                        path.unlink()
                        continue
                    info = path.lstat()
                    found.append((info.st_mtime, path, info.st_size))
        for _, path, size in sorted(found):
            self._add(path, size, handed_out=False)


if TYPE_CHECKING:

    def _conforms(store: CachedStore) -> Store:
        return store
