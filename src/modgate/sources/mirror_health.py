"""Which git mirrors cannot be completed, and when to try completing them again.

A full fetch of a repository can fail while the go command still fetches
each of its versions fine: an object deep in the remote's history that
cannot be read, a monorepo whose full history takes longer than
``--git-timeout``, a server that limits how much one fetch may send. The go
command never needs the full history for a tagged version: it fetches that
one tag at depth 1. modgate does the same while a mirror is *degraded*, and
tries the full fetch again later, in the background, after a backoff that
doubles with each failure (``base`` seconds, at most ``cap``).

The state is per process and bounded (:data:`MAX_TRACKED`); a restart
simply tries the full fetch once more. Every change is logged
(``git_mirror_degraded``, ``git_mirror_recovered``) and counted in
``modgate_git_mirror_failures_total``, with the number of degraded mirrors in
the gauge ``modgate_git_mirrors_degraded``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from modgate.metrics import Metrics

log = logging.getLogger("modgate.direct")

DEFAULT_BACKOFF = 60.0
"""Seconds before the first retry of a full fetch that failed."""
MAX_BACKOFF = 3600.0
"""The longest wait between two tries of a failing full fetch."""
MAX_TRACKED = 4096
"""Degraded mirrors remembered at once (the oldest is forgotten first, and retried)."""
JITTER = 0.2
"""Each wait is spread by up to this fraction, so that many mirrors do not retry together."""
FAILURES = "modgate_git_mirror_failures_total"
DEGRADED = "modgate_git_mirrors_degraded"
FALLBACKS = "modgate_git_shallow_fallbacks_total"


@dataclass(slots=True)
class MirrorState:
    """A mirror whose last full fetch failed."""

    failures: int
    retry_at: float
    """``clock()`` time from which a full fetch may be tried again."""
    error: str
    retrying: bool = False
    """A background retry is under way (at most one per mirror)."""


class MirrorHealth:
    """The degraded mirrors of one direct source; safe to share between threads."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        backoff: float = DEFAULT_BACKOFF,
        cap: float = MAX_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        scrub: Callable[[str], str] = str,
    ) -> None:
        self._metrics = metrics
        self._scrub = scrub
        self._backoff = backoff
        self._cap = max(cap, backoff)
        self._clock = clock
        self._states: OrderedDict[str, MirrorState] = OrderedDict()
        self._lock = threading.Lock()

    def state(self, url: str) -> MirrorState | None:
        with self._lock:
            return self._states.get(url)

    def degraded(self, url: str) -> bool:
        return self.state(url) is not None

    def claim_retry(self, url: str) -> bool:
        """Whether the caller should retry the full fetch now (then it owns the retry)."""
        with self._lock:
            state = self._states.get(url)
            if state is None or state.retrying or self._clock() < state.retry_at:
                return False
            state.retrying = True
            return True

    def failed(self, url: str, error: str) -> float:
        """Record a failed full fetch of ``url``; returns the seconds until the next try."""
        with self._lock:
            state = self._states.pop(url, None)
            failures = state.failures + 1 if state is not None else 1
            delay = min(self._cap, self._backoff * 2.0 ** (failures - 1))
            delay *= 1 + random.uniform(-JITTER, JITTER)  # noqa: S311 (spreading, not secrecy)
            self._states[url] = MirrorState(failures, self._clock() + delay, self._scrub(error))
            while len(self._states) > MAX_TRACKED:
                self._states.popitem(last=False)
            degraded = len(self._states)
        log.warning(
            "the full mirror of a repository could not be completed; versions are fetched "
            "one by one (depth 1) until a retry succeeds",
            extra={
                "event": "git_mirror_degraded",
                "repository": self._scrub(url),
                "failures": failures,
                "retry_in": round(delay, 1),
                "error": self._scrub(error),
            },
        )
        if self._metrics is not None:
            self._metrics.inc(FAILURES)
            self._metrics.set(DEGRADED, degraded)
        return delay

    def succeeded(self, url: str) -> None:
        """Record a full fetch of ``url`` that succeeded."""
        with self._lock:
            state = self._states.pop(url, None)
            degraded = len(self._states)
        if state is None:
            return
        log.info(
            "the full mirror of a repository is complete again",
            extra={
                "event": "git_mirror_recovered",
                "repository": self._scrub(url),
                "failures": state.failures,
            },
        )
        if self._metrics is not None:
            self._metrics.set(DEGRADED, degraded)

    def release(self, url: str) -> None:
        """A claimed retry ended without a verdict (shutdown): allow another one."""
        with self._lock:
            state = self._states.get(url)
            if state is not None:
                state.retrying = False

    def fell_back(self) -> None:
        """Count one version fetched at depth 1 because the full mirror is failing."""
        if self._metrics is not None:
            self._metrics.inc(FALLBACKS)
