"""The negative cache: not-found answers, remembered in memory and shared by replicas.

Memory is asked first, on every request (a dict lookup, no I/O). Only a
request about to go upstream asks the shared half (Redis with ``--redis``,
in a worker thread, one short round trip); a refusal found there is kept in
memory for the time it has left, so the key is not asked upstream by any
replica until the first replica's ``--negative-ttl`` is over. A refusal
learnt here is kept in memory and published before the fetch's lock is
released, so a replica that waited for that lock finds it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Protocol

from modgate.metrics import Metrics
from modgate.protocol.errors import ModgateError
from modgate.service.ttlcache import NegativeCache

SHARED_HITS_METRIC = "modgate_negative_shared_hits_total"


class SharedNegatives(Protocol):
    """Refusals every replica sees (``store.redisrefusals.RedisRefusals``); blocking calls."""

    def lookup(self, key: str) -> tuple[ModgateError, float] | None:
        """A refusal of ``key`` and its seconds left, or None (also when unreachable)."""

    def publish(self, key: str, exc: ModgateError, ttl: float) -> None:
        """Share ``exc`` for ``ttl`` seconds; never raises (an unreachable store is skipped)."""


class Negatives:
    def __init__(
        self,
        ttl: float,
        max_entries: int,
        metrics: Metrics,
        executor: Executor,
        shared: SharedNegatives | None = None,
    ) -> None:
        self.ttl = ttl
        self._local = NegativeCache(ttl, max_entries)
        self._metrics = metrics
        self._executor = executor
        self._shared = shared if ttl > 0 else None
        if self._shared is not None:
            metrics.declare(SHARED_HITS_METRIC)

    def error(self, key: str) -> ModgateError | None:
        """A new exception for a refusal of ``key`` remembered in memory, or None."""
        return self._local.error(key)

    def known(self, key: str) -> bool:
        return self._local.known(key)

    async def shared_error(self, key: str) -> ModgateError | None:
        """A refusal of ``key`` another replica published (then remembered here), or None."""
        if self._shared is None:
            return None
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._executor, self._shared.lookup, key)
        if found is None:
            return None
        exc, left = found
        self._local.remember(key, exc, left)
        self._metrics.inc(SHARED_HITS_METRIC)
        return exc

    async def remember(self, key: str, exc: ModgateError) -> None:
        """Remember ``exc`` here and publish it to the other replicas."""
        self._local.remember(key, exc)
        if self._shared is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._shared.publish, key, exc, self.ttl)
