"""The repositories the direct source has open: bounded in number, closed when idle.

Each open repository holds up to two long-lived ``git cat-file`` processes
(four descriptors) and its caches (refs, resolved revisions). A client that
names many repositories would otherwise keep all of them for the life of
the server. So:

- a repository unused for ``idle_close`` seconds has its cat-file processes
  closed (they start again on the next read);
- one unused for ``idle_drop`` seconds is dropped with its caches;
- at most ``max_open`` are kept: the least recently used idle ones go first.

A repository in use by a request is never closed or dropped; while more
than ``max_open`` are in use at once (bounded by the worker threads), the
table is over its limit until they finish. :meth:`sweep` runs from a
background thread every ``SWEEP_INTERVAL`` seconds and on each new
repository.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modgate.sources.gitrepo import GitRepo

MAX_OPEN = 64
"""Repositories kept open at most (each with up to two cat-file processes)."""
IDLE_CLOSE = 60.0
"""Seconds unused before a repository's cat-file processes are closed."""
IDLE_DROP = 600.0
"""Seconds unused before a repository and its caches are dropped."""
SWEEP_INTERVAL = 10.0


@dataclass(slots=True)
class _Entry:
    repo: GitRepo
    users: int = 0
    last_used: float = 0.0
    processes_closed: bool = False


class RepoTable:
    """Open repositories by URL; thread-safe."""

    def __init__(
        self,
        make: Callable[[str, str], GitRepo],
        *,
        max_open: int = MAX_OPEN,
        idle_close: float = IDLE_CLOSE,
        idle_drop: float = IDLE_DROP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make = make
        self.max_open = max_open
        self.idle_close = idle_close
        self.idle_drop = idle_drop
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @contextmanager
    def using(self, url: str, origin_url: str) -> Iterator[GitRepo]:
        """The repository of ``url``, kept open (not closed or dropped) inside the block."""
        entry = self._enter(url, origin_url, count=True)
        try:
            yield entry.repo
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = self._clock()

    def get(self, url: str, origin_url: str) -> GitRepo:
        """The repository of ``url`` (opened if needed) without holding it open."""
        return self._enter(url, origin_url, count=False).repo

    def sweep(self) -> None:
        """Close idle repositories' processes, drop long-idle ones, and cut to ``max_open``."""
        now = self._clock()
        to_close: list[GitRepo] = []
        with self._lock:
            idle = [(u, e) for u, e in self._entries.items() if e.users == 0]
            excess = len(self._entries) - self.max_open
            for url, entry in idle:  # least recently used first
                if excess > 0 or now - entry.last_used >= self.idle_drop:
                    del self._entries[url]
                    excess -= 1
                    to_close.append(entry.repo)
                elif not entry.processes_closed and now - entry.last_used >= self.idle_close:
                    entry.processes_closed = True
                    to_close.append(entry.repo)
        for repo in to_close:
            repo.mirror.close()

    def close_all(self) -> None:
        """Stop the sweeper and close every repository (the source is closing)."""
        self._stop.set()
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.repo.mirror.close()

    def _enter(self, url: str, origin_url: str, *, count: bool) -> _Entry:
        created = False
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                entry = self._entries[url] = _Entry(self._make(url, origin_url))
                created = True
            else:
                self._entries.move_to_end(url)
            if count:
                entry.users += 1
            entry.last_used = self._clock()
            entry.processes_closed = False
            over = len(self._entries) > self.max_open
        if created:
            self._start_reaper()
            if over:
                self.sweep()
        return entry

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None or self._stop.is_set():
                return
            self._reaper = threading.Thread(
                target=self._reap, name="modgate-git-reaper", daemon=True
            )
        self._reaper.start()

    def _reap(self) -> None:
        while not self._stop.wait(SWEEP_INTERVAL):
            self.sweep()
