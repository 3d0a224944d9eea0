"""The fetch coordinator: store first, then the source chain, once per key.

Every request for an artifact goes through here: a stored immutable
artifact is answered at once; otherwise one fetch per key (singleflight in
this process, a store lock across processes) walks the module's source
chain, verifies what came back through ``Ingest`` and stores it; a small
artifact's callers are answered once its bytes are verified, before the
store write. ``list``, ``latest`` and query answers (``mutable.py``) expire
after ``list_ttl``. Not-found answers are remembered for ``negative_ttl``
seconds, in memory and, with ``--redis``, by every replica (``negatives``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from modgate.formats.modzip import MAX_ZIP_FILE
from modgate.formats.zipentry import InflateMemo
from modgate.metrics import Metrics
from modgate.protocol.errors import (
    InvalidModuleError,
    ModgateError,
    NotFoundError,
)
from modgate.protocol.module import ModuleVersion
from modgate.service.answer import Answer
from modgate.service.ingest import DamagedArtifactError, Ingest, IngestVerifier, is_module_version
from modgate.service.mutable import MutableAnswers
from modgate.service.negatives import Negatives, SharedNegatives
from modgate.service.routing import SourceRouter, walk
from modgate.service.singleflight import SingleFlight
from modgate.service.storereads import StoreReads
from modgate.service.writebehind import WriteBehind
from modgate.service.zipprefetch import ZipPrefetch
from modgate.sources.base import Cancellable, Source
from modgate.store.base import Kind, Store

log = logging.getLogger("modgate.gateway")

T = TypeVar("T")
Fetcher = Callable[[Callable[[bytes], None]], Awaitable[None]]
"""A fetch of one artifact, given the function that answers its callers with verified bytes."""

LOCK_THREADS = 64
NEGATIVE_MAX_ENTRIES = 100_000
"""Not-found answers remembered at most (a few hundred bytes each: about 30 MB)."""
READY_CHECK_INTERVAL = 10.0
WRITE_GRACE = 10.0
"""Seconds the shutdown waits for fetched bytes, already answered, to be stored."""
STORE_HIT = (("layer", "store"),)


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    list_ttl: float = 60.0
    """Seconds a list, latest or query answer is used before it is refreshed."""
    negative_ttl: float = 30.0
    """Seconds a not-found answer is remembered."""
    list_max_age: int = 60
    """Cache-Control max-age the server sends for list, latest and query answers."""
    max_zip_size: int = MAX_ZIP_FILE
    redirect_expiry: int = 0
    """With an object store (--s3-redirect): zips are answered with a presigned URL valid
    this many seconds instead of their bytes (0: off)."""
    remote_locks: bool = False
    """Whether the store's locks are in Redis (--redis): then never taken on the event loop."""
    prefetch_zips: bool = True
    """Whether a client's first zip request fetches the zips of the .info files it asked for
    in the background (--prefetch-zips, ``zipprefetch``)."""


class Gateway:
    def __init__(
        self,
        store: Store,
        router: SourceRouter,
        metrics: Metrics,
        options: GatewayOptions | None = None,
        closers: tuple[Callable[[], Awaitable[None]], ...] = (),
        *,
        verifier: IngestVerifier | None = None,
        inflated: InflateMemo | None = None,
        shared_negatives: SharedNegatives | None = None,
    ) -> None:
        self.store = store
        self.reads = StoreReads(store)
        self.router = router
        self.metrics = metrics
        self.options = options or GatewayOptions()
        self.list_max_age = self.options.list_max_age
        self.ingest = Ingest(store, metrics, verifier, inflated)
        self._small_writes = WriteBehind(store)
        self._flight = SingleFlight(metrics)
        self._lock_pool = ThreadPoolExecutor(LOCK_THREADS, thread_name_prefix="modgate-lock")
        self._negative = Negatives(
            self.options.negative_ttl, NEGATIVE_MAX_ENTRIES, metrics, self._lock_pool,
            shared_negatives,
        )  # fmt: skip
        self.answers = MutableAnswers(
            store, self.reads, router, ingest=self.ingest, metrics=metrics,
            negative=self._negative, flight=self._flight, list_ttl=self.options.list_ttl,
        )  # fmt: skip
        self.zips = ZipPrefetch(
            self._fetch_zip_once, partial(self.reads.has, kind=Kind.ZIP), metrics,
            enabled=self.options.prefetch_zips,
        )  # fmt: skip
        self._prefetches: set[asyncio.Future[bytes]] = set()
        self._writes: set[asyncio.Task[None]] = set()
        """Fetch tasks, which may still be storing bytes their callers were answered with."""
        """Sibling fetches under way (at most one per miss, each also a singleflight)."""
        self._closers = closers
        self._ready: tuple[float, tuple[bool, str]] = (-READY_CHECK_INTERVAL, (False, ""))

    # ---- readiness and shutdown ---------------------------------------------------------

    async def ready(self) -> tuple[bool, str]:
        """Whether the store takes writes; checked at most every READY_CHECK_INTERVAL.

        The probe write (an fsynced meta record) runs in a thread, never on the loop.
        """
        checked, verdict = self._ready
        now = time.monotonic()
        if now - checked < READY_CHECK_INTERVAL:
            return verdict
        try:
            await asyncio.to_thread(self.store.put_meta, "readyz", str(int(time.time())).encode())
            verdict = (True, "ok")
        except ModgateError as exc:
            verdict = (False, f"store is not writable: {exc.reason}")
        health = getattr(self.store, "health", None)  # a store coordinated through Redis
        if verdict[0] and health is not None:
            note = await asyncio.to_thread(health)
            if note is not None:
                verdict = (True, f"ok; degraded: {note}")
        self._ready = (now, verdict)
        return verdict

    async def cancel(self) -> None:
        """Stop the fetches under way: at shutdown, once the grace period is over.

        git processes are stopped (their callers fail), upstream requests are
        cancelled; a fetch that was stopped never leaves anything under a
        final name, because artifacts are written to temp files and linked
        into place only when complete and verified.
        """
        cancelled = self._flight.cancel_all()
        for source in self.router.sources():
            if isinstance(source, Cancellable):
                await asyncio.to_thread(source.cancel)
        if cancelled:
            log.warning(
                "shutdown: fetches still under way were stopped",
                extra={"event": "shutdown_cancelled", "fetches": cancelled},
            )

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the fetches under way to end, their
        writes of bytes already answered included."""
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._prefetches):
            task.cancel()
        await self.zips.aclose()
        await self.settle(WRITE_GRACE)  # bytes already answered are stored before the sources close
        for source in self.router.sources():
            await source.aclose()
        for close in self._closers:
            await close()
        self._lock_pool.shutdown(wait=False, cancel_futures=True)

    # ---- immutable artifacts ------------------------------------------------------------

    async def info(self, module: str, version: str, client: str = "") -> Answer:
        """``module@version``'s .info; ``client`` (its address) is remembered for zip prefetch."""
        if not is_module_version(module, version):
            # a branch, a tag, a commit prefix, or a canonical spelling that does not fit
            # the path (v2.0.0 of a v1 path resolves to v2.0.0+incompatible): a query
            return await self.answers.query(module, version)
        mv = ModuleVersion(module, version)
        data = await self._stored(mv, Kind.INFO)
        fetched = data is None
        if data is None:
            await self._prefetch_mod(mv)
            data = await self._fetch_info_once(mv)
        self.zips.note(client, mv)
        return Answer(data, None, len(data), immutable=True, fetched=fetched)

    async def mod(self, mv: ModuleVersion) -> Answer:
        data, fetched = await self._mod(mv)
        return Answer(data, None, len(data), immutable=True, fetched=fetched)

    async def mod_bytes(self, mv: ModuleVersion) -> bytes:
        return (await self._mod(mv))[0]

    async def _mod(self, mv: ModuleVersion) -> tuple[bytes, bool]:
        """The .mod's bytes, and whether a source had to be asked for them."""
        data = await self._stored(mv, Kind.MOD)
        if data is not None:
            return data, False
        await self._prefetch_info(mv)
        return await self._fetch_mod_once(mv), True

    def _fetch_info_once(self, mv: ModuleVersion) -> Awaitable[bytes]:
        return self._fetch(f"info:{mv}", mv, Kind.INFO, partial(self._fetch_info, mv))

    def _fetch_mod_once(self, mv: ModuleVersion) -> Awaitable[bytes]:
        return self._fetch(f"mod:{mv}", mv, Kind.MOD, partial(self._fetch_mod, mv))

    def _fetch_zip_once(self, mv: ModuleVersion) -> Awaitable[bytes]:
        return self._fetch(f"zip:{mv}", mv, Kind.ZIP, partial(self._fetch_zip, mv))

    # The go command asks for a version's .info and .mod one after the other
    # (.mod first while it loads the module graph, .info before the zip): a
    # miss on one fetches the other at the same time, so the second request
    # finds it stored or in flight instead of paying its own upstream round trip.

    async def _prefetch_info(self, mv: ModuleVersion) -> None:
        if self._worth_prefetching(mv) and not await self.reads.has(mv, Kind.INFO):
            self._background(self._fetch_info_once(mv), mv, Kind.INFO)

    async def _prefetch_mod(self, mv: ModuleVersion) -> None:
        if self._worth_prefetching(mv) and not await self.reads.has(mv, Kind.MOD):
            self._background(self._fetch_mod_once(mv), mv, Kind.MOD)

    def _worth_prefetching(self, mv: ModuleVersion) -> bool:
        # A version just found missing is not fetched again in the background: a client
        # repeating a request for it costs one lookup in memory, no task.
        return not (self._negative.known(f"mod:{mv}") or self._negative.known(f"info:{mv}"))

    def _background(self, fetch: Awaitable[bytes], mv: ModuleVersion, kind: Kind) -> None:
        """Run a prefetch; its failure is only logged (the request for it will see it)."""
        task = asyncio.ensure_future(fetch)
        self._prefetches.add(task)

        def done(t: asyncio.Future[bytes]) -> None:
            self._prefetches.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                log.debug(
                    "prefetch failed",
                    extra={"event": "prefetch_failed", "subject": str(mv),
                           "kind": kind.value, "error": str(exc)},
                )  # fmt: skip

        task.add_done_callback(done)

    async def zip(self, mv: ModuleVersion, client: str = "") -> Answer:
        # The zips of the client's .info requests are fetched once this one is ready: on a
        # busy machine they would otherwise slow down the fetch the client waits for.
        try:
            return await self._zip(mv)
        finally:
            self.zips.follow(client, mv)

    async def _zip(self, mv: ModuleVersion) -> Answer:
        if self.options.redirect_expiry:
            return await self._zip_location(mv)
        path = await self.reads.local_path(mv, Kind.ZIP)
        fetched = path is None
        if path is None:
            await self._fetch_zip_once(mv)
            path = await self.reads.local_path(mv, Kind.ZIP)
            if path is None:
                raise NotFoundError(str(mv), "zip vanished from the store after it was stored")
        else:
            self.metrics.inc("modgate_cache_hits_total", STORE_HIT)
        # The h1 identifies the content: no need to hash a zip of up to 500 MB to tag it.
        h1 = await self.reads.get(mv, Kind.ZIPHASH)
        size = path.stat().st_size
        return Answer(None, path, size, immutable=True, validator=h1, fetched=fetched)

    async def _zip_location(self, mv: ModuleVersion) -> Answer:
        """A presigned URL of the stored zip (--s3-redirect), fetched and stored first if needed.

        Only an object that exists is signed, and an object exists only once its
        bytes were verified (conditional create after the checks): a client is
        never sent to a partial or unverified zip.
        """
        fetched = not await self.reads.has(mv, Kind.ZIP)
        if fetched:
            await self._fetch_zip_once(mv)
        else:
            self.metrics.inc("modgate_cache_hits_total", STORE_HIT)
        url = await self.reads.presign(mv, Kind.ZIP, self.options.redirect_expiry)
        return Answer(None, None, 0, immutable=True, fetched=fetched, location=url)

    async def _stored(self, mv: ModuleVersion, kind: Kind) -> bytes | None:
        data = await self.reads.get(mv, kind)
        if data is not None:
            self.metrics.inc("modgate_cache_hits_total", STORE_HIT)
        return data

    async def _fetch(self, key: str, mv: ModuleVersion, kind: Kind, fetch: Fetcher) -> bytes:
        """Fetch once per key (in this process and across processes); the artifact's bytes.

        ``fetch(publish)`` walks the chain, verifies, calls ``publish(bytes)`` with
        verified bytes and then stores them. Every caller is answered at
        ``publish``: a client of a small artifact does not wait for the disk
        (an fsync costs more than the fetch from a near upstream). The store
        lock stays held until the bytes are stored, so another process that
        asks meanwhile waits for the lock and then reads the store; a crash
        before the store write loses nothing stored, since the write is
        atomic as ever. A zip is not published early: it is served from the
        store (``b""`` is returned).
        """
        cached = self._negative.error(key)
        if cached is not None:
            self.metrics.inc("modgate_negative_cache_hits_total")
            raise cached

        async def locked(publish: Callable[[bytes], None]) -> None:
            async with self._store_lock(key):
                if await self.reads.has(mv, kind):
                    return  # another process stored it while we waited for the lock
                shared = await self._negative.shared_error(key)
                if shared is not None:
                    raise shared  # another replica found it missing a moment ago
                self.metrics.inc("modgate_cache_misses_total", (("kind", kind.value),))
                try:
                    await fetch(publish)
                except (NotFoundError, InvalidModuleError) as exc:
                    await self._negative.remember(key, exc)  # before the lock is released
                    raise

        async def flight() -> bytes | None:
            early: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            def publish(data: bytes) -> None:
                if not early.done():
                    early.set_result(data)

            task = asyncio.ensure_future(locked(publish))
            self._writes.add(task)
            task.add_done_callback(partial(self._written, early, mv, kind))
            try:
                await asyncio.wait((early, task), return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                task.cancel()
                raise
            if early.done():
                return early.result()
            task.result()  # its error, if it failed
            return None

        published = await self._flight.do(key, flight)
        if kind is Kind.ZIP:
            return b""
        if published is not None:
            return published
        data = await self.reads.get(mv, kind)
        if data is None:
            raise NotFoundError(
                str(mv), f".{kind.value} vanished from the store after it was stored"
            )
        return data

    def _written(
        self, early: asyncio.Future[bytes], mv: ModuleVersion, kind: Kind, task: asyncio.Task[None]
    ) -> None:
        """A fetch task ended. Its failure after its bytes were answered is logged here
        (no caller sees it); before that, the callers got it."""
        self._writes.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and early.done():
            log.warning(
                "answered from the fetched bytes, but storing them failed; the next "
                "request fetches them again",
                extra={"event": "store_after_answer_failed", "subject": str(mv),
                       "kind": kind.value, "error": str(exc)},
            )  # fmt: skip

    async def _fetch_info(self, mv: ModuleVersion, publish: Callable[[bytes], None]) -> None:
        async def op(source: Source) -> bytes:
            data = await source.info(mv.path, mv.version)
            if self.ingest.on_the_spot(data):
                self.ingest.accept_info(mv, data, source.name)
            else:
                await asyncio.to_thread(self.ingest.accept_info, mv, data, source.name)
            return data

        data = await self._walk_refetching(mv, op)
        publish(data)
        # Off the event loop (storing waits for the disk), with the other small writes waiting
        await self._small_writes.put(mv, Kind.INFO, data)

    async def _fetch_mod(self, mv: ModuleVersion, publish: Callable[[bytes], None]) -> None:
        async def op(source: Source) -> bytes:
            data = await source.mod(mv)
            await self.ingest.prepare(mv, source.name)
            if self.ingest.on_the_spot(data):
                self.ingest.accept_mod(mv, data, source.name)
            else:
                await asyncio.to_thread(self.ingest.accept_mod, mv, data, source.name)
            return data

        data = await self._walk_refetching(mv, op)
        publish(data)
        await self._small_writes.put(mv, Kind.MOD, data)

    async def _fetch_zip(self, mv: ModuleVersion, _publish: Callable[[bytes], None]) -> None:
        mod = await self.mod_bytes(mv)

        async def op(source: Source) -> None:
            with self.store.temp_file() as tmp:
                await source.zip(mv, tmp, self.options.max_zip_size)
                await self.ingest.prepare(mv, source.name)
                await asyncio.to_thread(self.ingest.store_zip, mv, tmp, mod, source.name)

        await self._walk_refetching(mv, op)

    async def _walk_refetching(self, mv: ModuleVersion, op: Callable[[Source], Awaitable[T]]) -> T:
        """Walk ``mv``'s chain; bytes that failed the artifact checks are fetched once more.

        A flipped bit or a body cut short is most often damage on the way, not
        at the source: one more walk of the chain rides it out, even with a
        single upstream. A second failure is a refusal (``_fetch`` remembers
        it). A checksum-database disagreement is not ``DamagedArtifactError``
        and is never fetched again.
        """
        chain = self.router.chain_for(mv.path)
        try:
            return await walk(chain, str(mv), op)
        except DamagedArtifactError as exc:
            log.warning(
                "fetched bytes failed verification; fetching them once more",
                extra={"event": "refetch_damaged", "subject": str(mv), "error": str(exc)},
            )
            return await walk(chain, str(mv), op)

    @asynccontextmanager
    async def _store_lock(self, name: str) -> AsyncIterator[None]:
        # A local lock (a file, a mutex) is tried on the spot. A lock in Redis is a round
        # trip, retried with sleeps when Redis is slow: taken and released in a thread.
        loop = asyncio.get_running_loop()
        remote = self.options.remote_locks
        if remote:
            free = await loop.run_in_executor(self._lock_pool, self.store.try_lock, name)
        else:
            free = self.store.try_lock(name)
        release: Callable[[], object]
        if free is not None:
            release = free
        else:
            lock = self.store.lock(name)
            await loop.run_in_executor(self._lock_pool, lock.__enter__)
            release = partial(lock.__exit__, None, None, None)
        try:
            yield
        finally:
            if remote:  # shielded: a cancelled caller still releases what it holds
                await asyncio.shield(loop.run_in_executor(self._lock_pool, release))
            else:
                release()

    # ---- mutable answers: list, latest, queries (mutable.py) ------------------------------

    async def list(self, module: str) -> Answer:
        return await self.answers.list(module)

    async def latest(self, module: str) -> Answer:
        return await self.answers.latest(module)
