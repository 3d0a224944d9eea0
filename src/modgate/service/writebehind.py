"""Small artifacts stored in groups: the writes that wait together are made durable together.

A cold ``go mod download`` makes a ``.mod`` and an ``.info`` write for every
module, answered before they are stored (see ``gateway``). One at a time,
each costs a worker-thread hop and its own fsyncs of the file and its
directories. Here the writes waiting when a group starts go to the store
in one call (``GroupedWrites.put_many``: one hop, shared fsyncs), and the
ones that arrive meanwhile form the next group. Each caller still returns
only once its own bytes are durable, or with its own error.

A store without grouped writes (an object store) gets one ``put`` per
write in worker threads, as before: its writes are requests that gain
nothing from waiting for each other.
"""

from __future__ import annotations

import asyncio

from modgate.protocol.module import ModuleVersion
from modgate.store.base import GroupedWrites, Kind, Store

GROUP_MAX = 256
"""Writes in one group at most."""

_Pending = tuple[ModuleVersion, Kind, bytes, "asyncio.Future[None]"]


class WriteBehind:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._grouped = store if isinstance(store, GroupedWrites) else None
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None:
        """Store ``data`` durably; raises the store's error for this write."""
        if self._grouped is None:
            await asyncio.to_thread(self._store.put, mv, kind, data)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((mv, kind, data, done))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_groups())
        await asyncio.shield(done)  # a cancelled caller's bytes are still stored

    async def _write_groups(self) -> None:
        grouped = self._grouped
        assert grouped is not None
        group: list[_Pending] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
                items = [(mv, kind, data) for mv, kind, data, _ in group]
                try:
                    errors = await asyncio.to_thread(grouped.put_many, items)
                except Exception as exc:  # every caller of the group gets it
                    errors = [exc] * len(group)
                for (*_, done), error in zip(group, errors, strict=True):
                    if done.done():
                        continue
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
                group = []
        except asyncio.CancelledError:
            for *_, done in group + self._waiting:
                done.cancel()
            self._waiting = []
            raise
        finally:
            self._writer = None
