"""Zips fetched ahead of the go command's requests for them.

``go mod download`` asks for every ``.info`` of the build list, then for
the zips one at a time, in the same order, extracting each before it asks
for the next. On a cold store each zip request then waits for its fetch and
verification while the client's CPU idles, and the client's extraction
runs while modgate idles. So when a client that asked for ``.info`` files
asks for its first zip, the zips of the versions whose ``.info`` it asked
for are fetched in the background, in that order, a few at a time: by the
time the client asks, they are stored or in flight (the same singleflight,
store lock and checks as a request's own fetch).

Only a zip request sets it off: clients that read ``.info`` alone (``go
list -m -json``, update bots) never cause a zip fetch. A client is its
address (the forwarded one behind ``--trusted-proxies``); what it asked for
is kept for ``ttl`` seconds, bounded per client, in the number of clients
and in all. Every request that follows still passes its own access checks:
a prefetch only fills the store, it answers no one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from modgate.metrics import Metrics
from modgate.protocol.errors import ModgateError
from modgate.protocol.module import ModuleVersion

log = logging.getLogger("modgate.prefetch")

WORKERS = 2
"""Zips fetched at once in the background."""
TTL = 60.0
"""Seconds an .info request of a client is kept as a hint."""
PER_CLIENT = 2048
"""Versions kept per client (a build list has a few hundred)."""
CLIENTS = 1024
"""Clients kept, the least recently seen dropped first."""
HINTS = 65_536
"""Versions kept in all (about 200 bytes each); past it, the least recently seen client's
are dropped."""
QUEUE_MAX = 4096
"""Zips waiting to be fetched; more are not queued (their requests fetch them)."""
METRIC = "modgate_zip_prefetches_total"
OUTCOMES = ("stored", "present", "failed", "dropped")


class ZipPrefetch:
    """Hints from ``.info`` requests, turned into background zip fetches by a zip request.

    ``fetch(mv)`` stores ``mv``'s zip (raising ModgateError when it cannot);
    ``stored(mv)`` says whether the store has it already.
    """

    def __init__(
        self,
        fetch: Callable[[ModuleVersion], Awaitable[object]],
        stored: Callable[[ModuleVersion], Awaitable[bool]],
        metrics: Metrics,
        *,
        enabled: bool = True,
        workers: int = WORKERS,
        ttl: float = TTL,
    ) -> None:
        self.enabled = enabled
        self._fetch = fetch
        self._stored = stored
        self._metrics = metrics
        self._workers = workers
        self._ttl = ttl
        self._hints: OrderedDict[str, OrderedDict[ModuleVersion, float]] = OrderedDict()
        self._held = 0
        """Versions in ``_hints``, all clients together."""
        self._queue: deque[ModuleVersion] = deque()
        self._queued: set[ModuleVersion] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        for outcome in OUTCOMES:
            metrics.declare(METRIC, (("outcome", outcome),))

    def note(self, client: str, mv: ModuleVersion) -> None:
        """``client`` asked for ``mv``'s .info."""
        if not self.enabled:
            return
        hints = self._hints.get(client)
        if hints is None:
            hints = self._hints[client] = OrderedDict()
        else:
            self._hints.move_to_end(client)
        if mv not in hints:
            self._held += 1
        hints[mv] = time.monotonic()
        hints.move_to_end(mv)
        if len(hints) > PER_CLIENT:
            hints.popitem(last=False)
            self._held -= 1
        while len(self._hints) > CLIENTS or self._held > HINTS:
            _, dropped = self._hints.popitem(last=False)
            self._held -= len(dropped)

    def follow(self, client: str, mv: ModuleVersion) -> None:
        """``client`` asked for ``mv``'s zip: queue the zips of the .info files it asked for."""
        hints = self._hints.pop(client, None)
        if not hints:
            return
        self._held -= len(hints)
        oldest = time.monotonic() - self._ttl
        for other, seen in hints.items():
            if other == mv or seen < oldest or other in self._queued:
                continue
            if len(self._queue) >= QUEUE_MAX:
                self._metrics.inc(METRIC, (("outcome", "dropped"),))
                continue
            self._queue.append(other)
            self._queued.add(other)
        while self._queue and len(self._tasks) < self._workers:
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        while self._queue:
            mv = self._queue.popleft()
            try:
                if await self._stored(mv):
                    outcome = "present"
                else:
                    await self._fetch(mv)
                    outcome = "stored"
            except ModgateError as exc:  # the client's own request will see it, if it asks
                outcome = "failed"
                log.debug(
                    "zip prefetch failed",
                    extra={"event": "prefetch_failed", "subject": str(mv), "kind": "zip",
                           "error": str(exc)},
                )  # fmt: skip
            except Exception:  # a fault of modgate's: logged, and the next zip is fetched
                outcome = "failed"
                log.exception("zip prefetch of %s failed", mv)
            finally:
                self._queued.discard(mv)
            self._metrics.inc(METRIC, (("outcome", outcome),))

    def pending(self) -> int:
        """Zips queued or being fetched."""
        return len(self._queued)

    def held(self) -> int:
        """Versions remembered from .info requests, all clients together."""
        return self._held

    async def aclose(self) -> None:
        """Stop: queued zips are dropped, fetches under way are cancelled."""
        self._queue.clear()
        self._queued.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
