"""State shared by all connections of one server: clock, prefixes, counters.

Counters are plain ints and a dict of ints keyed by (route, status); they are
added into the ``Metrics`` registry only when ``/metrics`` is scraped (or at
shutdown), so counting a request costs a few integer additions.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING

from modgate.metrics import Metrics
from modgate.server.accesslog import AccessLog
from modgate.server.admission import Admission, current_fd_limit, default_max_connections
from modgate.server.hotcache import HotCache
from modgate.server.memfiles import MemFiles
from modgate.server.responses import ConnMode, http_date, status_prefix
from modgate.server.settings import ServerSettings

if TYPE_CHECKING:
    from modgate.server.auth.gate import AccessGate
    from modgate.server.http import HttpConnection

MEMORY_LAYER = (("layer", "memory"),)


class ServerState:
    """Everything the connections of one listening server share."""

    def __init__(
        self, settings: ServerSettings, metrics: Metrics, access_log: AccessLog | None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.access_log = access_log
        files = MemFiles(settings.sendfile_bytes if settings.hot_cache_bytes else 0)
        self.hot = HotCache(settings.hot_cache_bytes, settings.hot_entry_max_bytes, files)
        self.connections: set[HttpConnection] = set()
        self.admission = Admission(
            settings.max_connections or default_max_connections(current_fd_limit()),
            settings.max_connections_per_client,
        )
        self.closing = False
        self.access: AccessGate | None = None
        """Access control (None: authentication is off and every request is served)."""
        # Counters, flushed into ``metrics`` by ``flush_metrics``.
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.bytes_served = 0
        self.hits = 0
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

    def count(self, route: str, status: int, nbytes: int, hit: bool) -> None:
        self.requests[(route, status)] += 1
        self.bytes_served += nbytes
        if hit:
            self.hits += 1

    def flush_metrics(self) -> None:
        """Add the counts since the last flush into the registry."""
        metrics = self.metrics
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
        if self.access is not None:
            self.access.flush_metrics(metrics)
        for reason, n in self.admission.unflushed().items():
            if n:
                metrics.inc("modgate_connections_refused_total", (("reason", reason),), by=n)
        metrics.set("modgate_connections_open", self.admission.open)
        metrics.set("modgate_hot_cache_bytes", self.hot.bytes)
        metrics.set("modgate_hot_memfile_bytes", self.hot.files.bytes)
