"""Singleflight: at most one fetch per key in this process.

Callers that ask for a key while a fetch for it is under way wait for that
fetch and share its result or its error. A fetch outlives a caller that
goes away, so a client that asks and hangs up again and again could start
any number of them: at most ``max_flights`` run at once, and a new key
beyond that is refused with :class:`OverloadedError` (503). Across processes the gateway adds a
store lock inside the flight (see ``gateway.py``), so N processes behind one
store also cause one upstream fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from modgate.metrics import Metrics
from modgate.protocol.errors import OverloadedError

T = TypeVar("T")


MAX_FLIGHTS = 4096
"""Fetches under way at once in one process (each ends within its source's timeout)."""


class SingleFlight:
    def __init__(self, metrics: Metrics, max_flights: int = MAX_FLIGHTS) -> None:
        self._metrics = metrics
        self.max_flights = max_flights
        self._flights: dict[str, asyncio.Task[object]] = {}

    def in_flight(self) -> int:
        return len(self._flights)

    def cancel_all(self) -> int:
        """Cancel every fetch under way (at shutdown); returns how many there were."""
        tasks = list(self._flights.values())
        for task in tasks:
            task.cancel()
        return len(tasks)

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` once for ``key``; concurrent callers share its outcome.

        The fetch runs as its own task: a caller that goes away (a client
        hanging up) never cancels a fetch that others wait for, and a fetch
        that was started is finished and stored.
        """
        task = self._flights.get(key)
        if task is None:
            if len(self._flights) >= self.max_flights:
                raise OverloadedError(
                    key.partition(":")[2] or key,
                    f"{len(self._flights)} fetches are under way, the most this server runs "
                    "at once; retry in a moment",
                )
            task = cast("asyncio.Task[object]", asyncio.ensure_future(fn()))
            self._flights[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        else:
            self._metrics.inc("modgate_singleflight_waits_total")
        return cast(T, await asyncio.shield(task))

    def _done(self, key: str, task: asyncio.Task[object]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: callers that left must not cause a warning
