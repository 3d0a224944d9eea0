"""Store reads made for a request: on the spot from a local store, in a thread from a remote one.

A read of the filesystem store is a ``stat`` or a small file read that the
page cache answers in microseconds: it is made on the event loop (a thread
hop would cost more than the read). A read of an object store (``--store
s3://``) is an HTTP round trip that takes milliseconds, or seconds when the
object store is slow: made on the event loop, it would stall every other
connection meanwhile, so it runs in a worker thread. Artifacts an object
store's local disk cache holds (``cached_path``) are read on the spot like
the filesystem store's: a cached artifact never costs a thread.

A store says its reads are round trips with a true ``reads_block``
attribute; its local copies come from ``cached_path`` when it has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Protocol, TypeVar, cast

from modgate.protocol.module import ModuleVersion
from modgate.store.base import Kind, Stamped, Store, reads_block

T = TypeVar("T")


class Presigning(Protocol):
    def presign(self, mv: ModuleVersion, kind: Kind, expiry: int) -> str: ...


class StoreReads:
    """The reads the gateway makes while it answers a request, never blocking the loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.remote = reads_block(store)
        """Whether a read may be a network round trip (then it runs in a thread)."""
        cached = getattr(store, "cached_path", None)
        self._cached: Callable[[ModuleVersion, Kind], Path | None] | None = (
            cached if self.remote and callable(cached) else None
        )

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self.remote:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def get(self, mv: ModuleVersion, kind: Kind) -> bytes | None:
        """The artifact's bytes, or None when it is not stored."""
        if not self.remote:
            return self.store.get(mv, kind)
        path = self._local(mv, kind)
        if path is not None:
            with suppress(FileNotFoundError):  # evicted meanwhile: read it remotely
                return path.read_bytes()
        return await asyncio.to_thread(self.store.get, mv, kind)

    async def has(self, mv: ModuleVersion, kind: Kind) -> bool:
        """Whether the artifact is stored (complete)."""
        if not self.remote:
            return self.store.size(mv, kind) is not None
        if self._local(mv, kind) is not None:
            return True
        return await asyncio.to_thread(self.store.size, mv, kind) is not None

    async def local_path(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        """A local file of the complete artifact (copied from a remote store if needed)."""
        if not self.remote:
            return self.store.local_path(mv, kind)
        path = self._local(mv, kind)
        if path is not None:
            return path
        return await asyncio.to_thread(self.store.local_path, mv, kind)

    async def get_list(self, module: str) -> Stamped | None:
        return await self._call(self.store.get_list, module)

    async def get_meta(self, name: str) -> Stamped | None:
        return await self._call(self.store.get_meta, name)

    async def versions(self, module: str) -> list[str]:
        return await self._call(self.store.versions, module)

    async def presign(self, mv: ModuleVersion, kind: Kind, expiry: int) -> str:
        """A URL that reads the stored artifact for ``expiry`` seconds (object stores only)."""
        store = cast(Presigning, self.store)
        # signed locally, but fetching credentials (web identity, SSO) may be a round trip
        return await asyncio.to_thread(store.presign, mv, kind, expiry)

    def _local(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        return self._cached(mv, kind) if self._cached is not None else None
