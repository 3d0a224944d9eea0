"""The store port: where artifacts live.

A store is keyed by (module, version, kind). Artifacts of a canonical
version are immutable: once ``put`` has returned, the bytes never change and
a reader never sees a partial artifact. Everything modgate keeps for itself
(TTL records, latest answers, locks, later mirrors and sumdb state) lives
under ``meta`` names, outside the module namespace.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from modgate.protocol.module import ModuleVersion


class Kind(enum.Enum):
    INFO = "info"
    MOD = "mod"
    ZIP = "zip"
    ZIPHASH = "ziphash"


@dataclass(frozen=True, slots=True)
class Stamped:
    """Bytes with the time (Unix seconds) they were written."""

    data: bytes
    written: float


class Store(Protocol):
    def get(self, mv: ModuleVersion, kind: Kind) -> bytes | None:
        """The artifact's bytes, or None when absent."""

    def local_path(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        """A filesystem path of a complete artifact (for zero-copy serving), or None."""

    def size(self, mv: ModuleVersion, kind: Kind) -> int | None:
        """The artifact's size in bytes, or None when absent."""

    def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None:
        """Store bytes atomically. An existing artifact is left as it is."""

    def put_file(self, mv: ModuleVersion, kind: Kind, src: Path) -> None:
        """Move a finished temp file (from ``temp_file``) into place atomically."""

    def temp_file(self) -> AbstractContextManager[Path]:
        """A fresh temp file path on the store's filesystem, removed on exit if still there."""

    def versions(self, module: str) -> list[str]:
        """Versions with a stored .mod, unsorted."""

    def get_list(self, module: str) -> Stamped | None:
        """The last stored ``@v/list`` answer with its write time."""

    def put_list(self, module: str, data: bytes) -> None: ...

    def get_meta(self, name: str) -> Stamped | None:
        """modgate's own state under a relative name such as ``latest/<escaped>``."""

    def put_meta(self, name: str, data: bytes) -> None: ...

    def lock(self, name: str) -> AbstractContextManager[None]:
        """An exclusive lock shared by every process that uses this store (blocking)."""

    def try_lock(self, name: str) -> Callable[[], None] | None:
        """Take ``lock(name)`` only if it is free: returns its release, or None when held."""

    def modules(self) -> Iterator[str]:
        """Every module path that has at least one stored version."""


def reads_block(store: Store) -> bool:
    """Whether a read of ``store`` may be a network round trip (an object store): such a
    store says so with a true ``reads_block`` attribute."""
    return bool(getattr(store, "reads_block", False))


@runtime_checkable
class GroupedWrites(Protocol):
    """A store that makes several small writes durable together (fewer fsyncs)."""

    def put_many(self, items: list[tuple[ModuleVersion, Kind, bytes]]) -> list[Exception | None]:
        """``put`` each item, all made durable before it returns; each item's error or None."""
