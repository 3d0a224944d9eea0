"""Named exclusive locks for stores that have no shared filesystem to lock files on.

The filesystem store locks files (``filelock``), which every process on the
machine sees. An object store has no such thing: its locks come from a
:class:`Locks` implementation handed to it. :class:`ProcessLocks` is the one
without any server: exclusive between the threads of one process only, so
several replicas on one bucket without Redis may each fetch the same
artifact once (never more per process, and never a wrong answer, because
artifacts are created with a conditional write). ``redislease.RedisLocks``
makes them exclusive across replicas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Locks(Protocol):
    def lock(self, name: str) -> AbstractContextManager[None]:
        """Hold ``name`` exclusively for the ``with`` block (blocking)."""

    def try_lock(self, name: str) -> Callable[[], None] | None:
        """Take ``name`` only if it is free: its release, or None when held."""

    def health(self) -> str | None:
        """None when the locks work as configured, else what is degraded (for /readyz)."""

    def check_fence(self, name: str) -> None:
        """Raise StoreError when ``name`` lies under a lease that has ended (fencing)."""


class ProcessLocks:
    """Exclusive between the threads of this process; entries exist only while used."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    def _enter(self, name: str) -> threading.Lock:
        with self._guard:
            lock, users = self._locks.get(name, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[name] = (lock, users + 1)
            return lock

    def _leave(self, name: str) -> None:
        with self._guard:
            lock, users = self._locks[name]
            if users <= 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        held = self._enter(name)
        try:
            held.acquire()
        except BaseException:
            self._leave(name)
            raise
        try:
            yield
        finally:
            held.release()
            self._leave(name)

    def health(self) -> str | None:
        return None

    def check_fence(self, name: str) -> None:
        return None  # in one process a lock cannot end while its holder runs

    def try_lock(self, name: str) -> Callable[[], None] | None:
        held = self._enter(name)
        if not held.acquire(blocking=False):
            self._leave(name)
            return None
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                held.release()
                self._leave(name)

        return release
