"""Mutable answers: a module's version list, ``@latest`` and queries.

They change upstream, so each is used for ``list_ttl`` seconds and then
refreshed; when every source fails the last good answer is served and
counted as stale; a not-found answer is remembered for ``negative_ttl``
seconds (in memory and, with ``--redis``, by every replica). A list merges
what the upstream lists with the versions stored here. Durable answers are
kept in the store (shared by replicas on one bucket); answers to spellings
with build metadata (``v1.2.3+anything``), which a client can vary without
end, only in a bounded memory cache.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Awaitable, Callable

from modgate.metrics import Metrics
from modgate.protocol import semver
from modgate.protocol.errors import InvalidModuleError, NotFoundError, UpstreamError
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import canonical_version
from modgate.protocol.pseudo import is_pseudo_version
from modgate.service.answer import Answer
from modgate.service.ingest import Ingest
from modgate.service.negatives import Negatives
from modgate.service.routing import SourceRouter, walk
from modgate.service.singleflight import SingleFlight
from modgate.service.storereads import StoreReads
from modgate.service.ttlcache import TTLCache
from modgate.sources.base import Source
from modgate.store.base import Stamped, Store

log = logging.getLogger("modgate.gateway")

STORE_HIT = (("layer", "store"),)
SPELLING_MAX_ENTRIES = 10_000
SPELLING_MAX_BYTES = 8 << 20
"""Bounds of the memory that holds answers to ``v1.2.3+meta`` spellings of a version."""


class MutableAnswers:
    """List, latest and query answers, with the gateway's store, sources and caches."""

    def __init__(
        self,
        store: Store,
        reads: StoreReads,
        router: SourceRouter,
        *,
        ingest: Ingest,
        metrics: Metrics,
        negative: Negatives,
        flight: SingleFlight,
        list_ttl: float,
    ) -> None:
        self.store = store
        self.reads = reads
        self.router = router
        self.ingest = ingest
        self.metrics = metrics
        self.list_ttl = list_ttl
        self._negative = negative
        self._flight = flight
        self.spellings: TTLCache[bytes] = TTLCache(
            list_ttl, SPELLING_MAX_ENTRIES, max_bytes=SPELLING_MAX_BYTES, weigh=len
        )

    async def list(self, module: str) -> Answer:
        return await self._mutable(
            key=f"list:{module}",
            subject=module,
            stored=lambda: self.reads.get_list(module),
            refresh=lambda: self._refresh_list(module),
            fallback=lambda: self._local_list(module),
        )

    async def latest(self, module: str) -> Answer:
        async def ask(source: Source) -> bytes:
            return await source.latest(module)

        return await self._resolved(module, "latest", f"latest/{escape_path(module)}", ask)

    async def query(self, module: str, query: str) -> Answer:
        async def ask(source: Source) -> bytes:
            return await source.info(module, query)

        name = f"query/{escape_path(module)}/{escape_version(query)}"
        return await self._resolved(module, query, name, ask, durable=not _has_build(query))

    async def _resolved(
        self,
        module: str,
        query: str,
        meta: str,
        ask: Callable[[Source], Awaitable[bytes]],
        *,
        durable: bool = True,
    ) -> Answer:
        """An .info answer to a query (``latest``, a branch, a tag, a commit prefix).

        A ``durable`` answer is kept in the store (and served stale when every
        source fails); the others, spellings a client can vary without end,
        only in a bounded memory cache for ``list_ttl``.
        """
        subject = f"{module}@{query}"

        async def op(source: Source) -> bytes:
            data = await ask(source)
            self.ingest.resolve_query(module, query, data, source.name)
            return data

        async def refresh() -> bytes:
            data = await walk(self.router.chain_for(module), subject, op)
            if durable:
                await asyncio.to_thread(self.store.put_meta, meta, data)
            else:
                self.spellings.put(meta, data)
            return data

        async def stored() -> Stamped | None:
            if durable:
                return await self.reads.get_meta(meta)
            data = self.spellings.get(meta)
            return None if data is None else Stamped(data, time.time())

        async def no_fallback() -> bytes | None:
            return None

        return await self._mutable(
            key=f"query:{subject}",
            subject=subject,
            stored=stored,
            refresh=refresh,
            fallback=no_fallback,
        )

    async def _mutable(
        self,
        *,
        key: str,
        subject: str,
        stored: Callable[[], Awaitable[Stamped | None]],
        refresh: Callable[[], Awaitable[bytes]],
        fallback: Callable[[], Awaitable[bytes | None]],
    ) -> Answer:
        """A TTL-cached answer with stale-if-error and negative caching."""
        last = await stored()
        if last is not None and time.time() - last.written < self.list_ttl:
            self.metrics.inc("modgate_cache_hits_total", STORE_HIT)
            return _mutable_answer(last.data)
        cached = self._negative.error(key)
        if cached is not None:
            self.metrics.inc("modgate_negative_cache_hits_total")
            raise cached

        async def upstream() -> bytes:
            shared = await self._negative.shared_error(key)
            if shared is not None:
                raise shared
            try:
                return await refresh()
            except NotFoundError as exc:
                if not await fallback():
                    await self._negative.remember(key, exc)
                raise

        try:
            data = await self._flight.do(key, upstream)
        except NotFoundError:
            local = await fallback()
            if local:
                return _mutable_answer(local, fetched=True)
            raise
        except (UpstreamError, InvalidModuleError) as exc:
            stale = last.data if last is not None else await fallback()
            if not stale:
                raise
            self.metrics.inc("modgate_stale_served_total")
            log.warning(
                "every source failed; serving the last good answer",
                extra={"event": "stale_served", "subject": subject, "error": str(exc)},
            )
            return _mutable_answer(stale, stale=True, fetched=True)
        return _mutable_answer(data, fetched=True)

    async def _refresh_list(self, module: str) -> bytes:
        async def op(source: Source) -> bytes:
            return await source.list(module)

        try:
            upstream = await walk(self.router.chain_for(module), module, op)
        except NotFoundError:
            upstream = b""
            if not await self._local_versions(module):
                raise
        data = merge_list(module, upstream, await self._local_versions(module))
        await asyncio.to_thread(self.store.put_list, module, data)
        return data

    async def _local_versions(self, module: str) -> builtins.list[str]:
        return [v for v in await self.reads.versions(module) if not is_pseudo_version(v)]

    async def _local_list(self, module: str) -> bytes | None:
        local = await self._local_versions(module)
        return merge_list(module, b"", local) if local else None


def _has_build(query: str) -> bool:
    """Whether ``query`` is a semantic version with build metadata (``v1.2.3+anything``)."""
    return "+" in query and semver.is_valid(query)


def _mutable_answer(data: bytes, *, stale: bool = False, fetched: bool = False) -> Answer:
    return Answer(data, None, len(data), immutable=False, stale=stale, fetched=fetched)


def merge_list(module: str, upstream: bytes, local: list[str]) -> bytes:
    """An ``@v/list`` answer: upstream lines with a valid version, plus stored versions.

    Each line keeps its version and optional time; lines whose first field
    is not a valid version for this module, and pseudo-versions, are dropped.
    The result is sorted by semver and has one line per version.
    """
    lines: dict[str, str] = {}
    for raw in upstream.decode("utf-8", "replace").splitlines():
        fields = raw.split()
        if not fields:
            continue
        version = fields[0]
        if canonical_version(version) != version or is_pseudo_version(version):
            continue
        lines[version] = " ".join(fields[:2])
    for version in local:
        lines.setdefault(version, version)
    ordered = sorted(lines, key=semver.sort_key)
    return "".join(lines[v] + "\n" for v in ordered).encode()
