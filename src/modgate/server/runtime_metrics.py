"""Gauges read from outside the request path: the process, the store's disk, the certificate.

Each ``*_collector`` returns a function that :class:`~modgate.metrics.Metrics`
calls just before it renders ``/metrics``, so they cost nothing between
scrapes. The process gauges use the names every Prometheus client library
exports (``process_*``), so the usual dashboards and alerts work unchanged.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

from modgate import __version__
from modgate.metrics import Metrics

Collector = Callable[[Metrics], None]
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
_FD_DIR = Path("/proc/self/fd")
_STAT = Path("/proc/self/stat")


def declare_build_info(metrics: Metrics) -> None:
    labels = (("version", __version__), ("python", platform.python_version()))
    metrics.set("modgate_build_info", 1, labels)


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def process_collector() -> Collector:
    """CPU, memory, file descriptors and start time of this process (Linux /proc)."""
    boot = _boot_time()
    fallback_start = time.time()

    def collect(metrics: Metrics) -> None:
        times = os.times()
        metrics.counters[("process_cpu_seconds_total", ())] = times.user + times.system
        try:
            fields = _STAT.read_text().rsplit(")", 1)[1].split()
            # Fields after the command name: state is fields[0]; starttime is field 22.
            start_ticks, vsize, rss_pages = int(fields[19]), int(fields[20]), int(fields[21])
            metrics.set("process_virtual_memory_bytes", vsize)
            metrics.set("process_resident_memory_bytes", rss_pages * _PAGE)
            start = boot + start_ticks / _TICKS if boot is not None else fallback_start
            metrics.set("process_start_time_seconds", start)
        except (OSError, IndexError, ValueError):
            metrics.set("process_start_time_seconds", fallback_start)
        with contextlib.suppress(OSError):
            metrics.set("process_open_fds", sum(1 for _ in _FD_DIR.iterdir()))
        metrics.set("process_max_fds", resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    return collect


def store_collector(root: Path) -> Collector:
    """Free and total bytes of the store's file system, and whether it takes writes.

    ``access(W_OK)`` fails on a file system remounted read-only (EROFS) and on
    a directory whose permissions changed, the two usual causes of a store
    that stopped taking writes; a full disk shows in the free bytes.
    """

    def collect(metrics: Metrics) -> None:
        try:
            usage = os.statvfs(root)
        except OSError:
            metrics.set("modgate_store_writable", 0)
            return
        metrics.set("modgate_store_free_bytes", usage.f_bavail * usage.f_frsize)
        metrics.set("modgate_store_capacity_bytes", usage.f_blocks * usage.f_frsize)
        metrics.set("modgate_store_writable", 1 if os.access(root, os.W_OK) else 0)

    return collect


def certificate_collector(not_after: Callable[[], float]) -> Collector:
    """The served certificate's expiry; ``not_after`` reads it anew (it changes on reload)."""

    def collect(metrics: Metrics) -> None:
        metrics.set("modgate_tls_certificate_expiry_timestamp_seconds", not_after())

    return collect
