"""One replica's link to Redis: its clients and whether Redis answers (degraded mode).

Everything a replica shares through Redis (fetch leases, not-found answers)
goes through one ``RedisLink``, so there is one notion of "Redis is down":
the first failure logs one warning, sets the gauge
``modgate_coordination_degraded`` to 1 and makes ``degraded`` say why (for
``/readyz``); for ``RETRY_SECONDS`` after a failure nothing is sent to Redis
(every caller falls back to what this process knows, at once); the first
answer after that logs ``coordination restored`` and sets the gauge to 0.

Two clients share the URL: ``client`` for leases and ``quick`` for health
checks and for lookups on a request's way upstream, whose answer is only an
optimisation. Both send a failed command again once, at once: a pooled
connection to a Redis that restarted or to a master that Sentinel replaced
fails once, and the second try connects afresh. redis-py retries the
connection's handshake inside the command's retry, so a Redis that accepts
connections and never answers costs ``(1 + RETRIES) ** 2`` timeouts: 4 s for
a lease, 1 s for a lookup (``QUICK_TIMEOUT``); then the link is degraded and
nothing waits for Redis for ``RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from modgate.metrics import Metrics
from modgate.store.redisurl import connect, redacted

log = logging.getLogger("modgate.coordination")

RETRY_SECONDS = 2.0
CONNECT_TIMEOUT, TIMEOUT = 1.0, 1.0
QUICK_TIMEOUT = 0.25
RETRIES = 1
DEGRADED_METRIC = "modgate_coordination_degraded"


class RedisLink:
    def __init__(self, url: str, metrics: Metrics | None = None, *, client: Any = None) -> None:
        import redis  # noqa: PLC0415  (only a process given --redis pays for the import)

        self.url = redacted(url)
        self.client = client or connect(
            url, connect_timeout=CONNECT_TIMEOUT, timeout=TIMEOUT, retries=RETRIES
        )
        self.quick = client or connect(
            url, connect_timeout=QUICK_TIMEOUT, timeout=QUICK_TIMEOUT, retries=RETRIES
        )
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._metrics = metrics
        if metrics is not None:
            metrics.set(DEGRADED_METRIC, 0.0)
        self._state = threading.Lock()
        self.degraded: str | None = None
        self._next_try = 0.0

    def usable(self) -> bool:
        """Whether Redis is worth asking now (not within RETRY_SECONDS of a failure)."""
        return self.degraded is None or time.monotonic() >= self._next_try

    def ping(self) -> str | None:
        """Ask Redis now; None when it answers promptly, else why not (and the link degrades)."""
        try:
            self.quick.ping()
        except self.errors as exc:
            self.failed(exc)
            return self.degraded
        self.answered()
        return None

    def failed(self, exc: BaseException) -> None:
        reason = (
            f"Redis at {self.url} unreachable ({type(exc).__name__}); "
            "locks and not-found answers are per process"
        )
        with self._state:
            self._next_try = time.monotonic() + RETRY_SECONDS
            first = self.degraded is None
            self.degraded = reason
        if first:
            log.warning(
                "coordination degraded: %s", reason,
                extra={"event": "coordination_degraded", "redis": self.url},
            )  # fmt: skip
            if self._metrics is not None:
                self._metrics.set(DEGRADED_METRIC, 1.0)

    def answered(self) -> None:
        if self.degraded is None:
            return
        with self._state:
            if self.degraded is None:
                return
            self.degraded = None
        log.warning(
            "coordination restored: Redis at %s answers; locks are shared again", self.url,
            extra={"event": "coordination_restored", "redis": self.url},
        )  # fmt: skip
        if self._metrics is not None:
            self._metrics.set(DEGRADED_METRIC, 0.0)
