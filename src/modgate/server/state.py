"""State shared by all connections of one server: clock, prefixes, counters.

Counters are plain ints and a dict of ints keyed by (route, status); they are
added into the ``Metrics`` registry only when ``/metrics`` is scraped (or at
shutdown), so counting a request costs a few integer additions.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from typing import TYPE_CHECKING

from modgate.metrics import LATENCY_BUCKETS, Metrics
from modgate.server.accesslog import AccessLog
from modgate.server.admission import Admission, current_fd_limit, default_max_connections
from modgate.server.hotcache import HotCache
from modgate.server.memfiles import MemFiles
from modgate.server.responses import ConnMode, http_date, status_prefix
from modgate.server.settings import ServerSettings

if TYPE_CHECKING:
    from modgate.server.auth.gate import AccessGate
    from modgate.server.http import HttpConnection
    from modgate.server.workermetrics import WorkerMetrics

MEMORY_LAYER = (("layer", "memory"),)
REQUEST_DURATION = "modgate_request_duration_seconds"
FIRST_BOUND = LATENCY_BUCKETS[0]
CACHE_HIT, CACHE_MISS, CACHE_NONE = "hit", "miss", "none"
KnownRequest = tuple[bytes, bytes, bytes | None]
"""What a request's bytes asked, as parsed once: (method, target, Authorization value)."""
KNOWN_MAX = 8192
"""Requests remembered by their bytes at most (all are forgotten when full)."""
KNOWN_BUDGET = 4 << 20
"""Bytes the remembered requests may take, counted as their length plus KNOWN_OVERHEAD."""
KNOWN_OVERHEAD = 256
"""Bytes charged per remembered request for its key, its answer and the table."""
KNOWN_MAX_BYTES = 4096
"""Longest request remembered: a request head as the go command or a CI client sends it."""


class ServerState:
    """Everything the connections of one listening server share."""

    def __init__(
        self, settings: ServerSettings, metrics: Metrics, access_log: AccessLog | None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.access_log = access_log
        budget = settings.sendfile_bytes if settings.hot_cache_bytes else 0
        files = MemFiles(budget, directory=settings.hot_file_dir)
        self.hot = HotCache(settings.hot_cache_bytes, settings.hot_entry_max_bytes, files)
        self.connections: set[HttpConnection] = set()
        self.admission = Admission(
            settings.max_connections or default_max_connections(current_fd_limit()),
            settings.max_connections_per_client,
        )
        self.closing = False
        self.access: AccessGate | None = None
        self.workers: WorkerMetrics | None = None
        """This worker's share of one /metrics page (None: a single serving process)."""
        """Access control (None: authentication is off and every request is served)."""
        # Counters, flushed into ``metrics`` by ``flush_metrics``.
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        # Request durations per (route, cache outcome): a count per histogram bucket (the
        # last: beyond every bound) and their sum; bounded by routes x 3 outcomes.
        self.latency: dict[tuple[str, str], list[int]] = {}
        self.latency_sums: dict[tuple[str, str], float] = {}
        # Answers from the hot set per route: a count per histogram bucket, then the sum
        # of their durations. Each hot entry holds its route's row, so counting a hot
        # answer costs no lookup; they are 200s and count as requests when flushed.
        self.hot_rows: dict[str, list[float]] = {}
        self.bytes_served = 0
        self.hits = 0
        # Hot requests by their exact bytes: a client asking the same again is answered
        # without parsing (the bytes were parsed, limits checked, when first seen).
        self.known: dict[bytes, KnownRequest] = {}
        self.known_bytes = 0
        self.known_hits = 0
        # Clock and per-second response prefixes.
        self.now = time.monotonic()
        self._second = -1
        self._date = b""
        self._prefixes: dict[tuple[int, ConnMode], bytes] = {}
        self.ok_prefix = b""
        self.update_clock(self.now, time.time())

    def update_clock(self, monotonic: float, wall: float) -> None:
        """Advance the coarse clock; rebuild the Date-bearing prefixes on a new second."""
        self.now = monotonic
        second = int(wall)
        if second != self._second:
            self._second = second
            self._date = http_date(second)
            self._prefixes.clear()
            self.ok_prefix = self.prefix(200, ConnMode.KEEP)

    def prefix(self, status: int, mode: ConnMode) -> bytes:
        """Status line, Date and Connection header for this second."""
        key = (status, mode)
        found = self._prefixes.get(key)
        if found is None:
            found = self._prefixes[key] = status_prefix(status, self._date, mode)
        return found

    def remember(self, data: bytes, request: KnownRequest) -> None:
        """Remember that ``data`` is exactly one request, asking ``request``."""
        cost = len(data) + KNOWN_OVERHEAD
        if len(self.known) >= KNOWN_MAX or self.known_bytes + cost > KNOWN_BUDGET:
            self.known.clear()
            self.known_bytes = 0
        if data not in self.known:
            self.known_bytes += cost
        self.known[data] = request

    def count(self, route: str, status: int, nbytes: int, hit: bool) -> None:
        self.requests[(route, status)] += 1
        self.bytes_served += nbytes
        if hit:
            self.hits += 1

    def observe(self, route: str, cache: str, seconds: float) -> None:
        """One request's duration, by route and cache outcome (hit, miss or none)."""
        row = self.latency.get((route, cache))
        if row is None:
            row = self.latency[(route, cache)] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.latency_sums[(route, cache)] = 0.0
        if seconds <= FIRST_BOUND:
            row[0] += 1
        else:
            row[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sums[(route, cache)] += seconds

    def hot_row(self, route: str) -> list[float]:
        """The row counting hot answers of ``route`` (see ``hot_rows``)."""
        row = self.hot_rows.get(route)
        if row is None:
            row = self.hot_rows[route] = [0] * (len(LATENCY_BUCKETS) + 2)
        return row

    def flush_metrics(self) -> None:
        """Add the counts since the last flush into the registry."""
        metrics = self.metrics
        for route, hot in self.hot_rows.items():
            n = int(sum(hot[:-1]))
            if n:
                self.requests[(route, 200)] += n
                row = self.latency.get((route, CACHE_HIT))
                if row is None:
                    row = self.latency[(route, CACHE_HIT)] = [0] * (len(LATENCY_BUCKETS) + 1)
                    self.latency_sums[(route, CACHE_HIT)] = 0.0
                for i in range(len(row)):
                    row[i] += int(hot[i])
                self.latency_sums[(route, CACHE_HIT)] += hot[-1]
                hot[:] = [0] * len(hot)
        for (route, cache), row in self.latency.items():
            n = sum(row)
            if n:
                labels = (("route", route), ("cache", cache))
                total = self.latency_sums[(route, cache)]
                metrics.add_histogram(REQUEST_DURATION, labels, row, total, n)
                row[:] = [0] * len(row)
                self.latency_sums[(route, cache)] = 0.0
        for (route, status), n in self.requests.items():
            if n:
                labels = (("route", route), ("status", str(status)))
                metrics.inc("modgate_requests_total", labels, by=n)
        self.requests.clear()
        if self.bytes_served:
            metrics.inc("modgate_bytes_served_total", by=self.bytes_served)
            self.bytes_served = 0
        if self.hits:
            metrics.inc("modgate_cache_hits_total", MEMORY_LAYER, by=self.hits)
            self.hits = 0
        if self.known_hits:
            metrics.inc("modgate_hot_known_requests_total", by=self.known_hits)
            self.known_hits = 0
        if self.access is not None:
            self.access.flush_metrics(metrics)
        for reason, n in self.admission.unflushed().items():
            if n:
                metrics.inc("modgate_connections_refused_total", (("reason", reason),), by=n)
        metrics.set("modgate_connections_open", self.admission.open)
        metrics.set("modgate_hot_cache_bytes", self.hot.bytes)
        metrics.set("modgate_hot_memfile_bytes", self.hot.files.bytes)
