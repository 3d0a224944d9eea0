"""Small writes grouped: each caller waits for its own bytes, with its own error."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from modgate.protocol.errors import StoreError
from modgate.protocol.module import ModuleVersion
from modgate.service.writebehind import WriteBehind
from modgate.store.base import Kind
from modgate.store.filesystem import FilesystemStore

MODS = [ModuleVersion(f"example.com/m{i}", "v1.0.0") for i in range(20)]


class CountingStore(FilesystemStore):
    """Records the size of every group; can hold a group until released."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.groups: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def put_many(self, items: list[tuple[ModuleVersion, Kind, bytes]]) -> list[Exception | None]:
        self.gate.wait(10)
        self.groups.append(len(items))
        return super().put_many(items)


def test_writes_waiting_together_are_stored_together(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    writes = WriteBehind(store)

    async def go() -> None:
        store.gate.clear()
        first = asyncio.ensure_future(writes.put(MODS[0], Kind.MOD, b"module example.com/m0\n"))
        await asyncio.sleep(0.05)  # the first group is being written, held at the gate
        rest = [writes.put(mv, Kind.MOD, b"module %s\n" % mv.path.encode()) for mv in MODS[1:]]
        waiting = asyncio.gather(*rest)
        await asyncio.sleep(0.05)
        store.gate.set()
        await first
        await waiting

    asyncio.run(go())
    assert store.groups == [1, 19], f"groups written: {store.groups}"
    for mv in MODS:
        assert store.get(mv, Kind.MOD) == b"module %s\n" % mv.path.encode()


def test_each_caller_gets_its_own_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FilesystemStore(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "evil.com").symlink_to(outside, target_is_directory=True)
    writes = WriteBehind(store)
    bad = ModuleVersion("evil.com/x", "v1.0.0")

    async def go() -> list[object]:
        return await asyncio.gather(
            writes.put(bad, Kind.MOD, b"module evil.com/x\n"),
            writes.put(MODS[0], Kind.MOD, b"module example.com/m0\n"),
            return_exceptions=True,
        )

    results = asyncio.run(go())
    assert isinstance(results[0], StoreError), results
    assert results[1] is None, results
    assert store.get(MODS[0], Kind.MOD) == b"module example.com/m0\n"


def test_a_cancelled_caller_still_has_its_bytes_stored(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    writes = WriteBehind(store)

    async def go() -> None:
        store.gate.clear()
        task = asyncio.ensure_future(writes.put(MODS[0], Kind.MOD, b"module example.com/m0\n"))
        await asyncio.sleep(0.05)
        task.cancel()
        store.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if store.get(MODS[0], Kind.MOD) is not None:
                break
            await asyncio.sleep(0.01)

    asyncio.run(go())
    assert store.get(MODS[0], Kind.MOD) == b"module example.com/m0\n"


class PlainStore(FilesystemStore):
    """A store without grouped writes (like an object store): one put per write."""

    put_many = None  # type: ignore[assignment]


def test_a_store_without_grouped_writes_gets_one_put_each(tmp_path: Path) -> None:
    store = PlainStore(tmp_path / "store")
    writes = WriteBehind(store)

    async def go() -> None:
        await asyncio.gather(*(writes.put(mv, Kind.MOD, b"module x\n") for mv in MODS[:3]))

    asyncio.run(go())
    assert all(store.get(mv, Kind.MOD) == b"module x\n" for mv in MODS[:3])
