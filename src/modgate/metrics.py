"""Counters and histograms in plain integers, rendered in the Prometheus text format.

The hot path of serving a cached artifact increments a dict entry and
nothing more; rendering happens only when ``/metrics`` is scraped. The
process is single-threaded (one event loop), so no locks are needed; threads
that report (import, executors) go through ``inc`` which is a single dict
update under the GIL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Labels = tuple[tuple[str, str], ...]
Snapshot = dict[str, list[list[Any]]]
"""A registry as plain lists (JSON): ``Metrics.snapshot`` and ``Metrics.from_snapshot``."""

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: str  # "counter" | "gauge" | "histogram"
    help: str


SPECS: dict[str, MetricSpec] = {
    s.name: s
    for s in (
        MetricSpec("modgate_requests_total", "counter", "HTTP requests by route and status."),
        MetricSpec("modgate_bytes_served_total", "counter", "Response body bytes sent."),
        MetricSpec("modgate_cache_hits_total", "counter", "Artifacts answered from the store."),
        MetricSpec("modgate_cache_misses_total", "counter", "Artifacts that had to be fetched."),
        MetricSpec("modgate_upstream_fetches_total", "counter", "Requests sent to a source."),
        MetricSpec("modgate_upstream_errors_total", "counter", "Failed requests to a source."),
        MetricSpec(
            "modgate_upstream_latency_seconds", "histogram", "Latency of requests to a source."
        ),
        MetricSpec(
            "modgate_singleflight_waits_total",
            "counter",
            "Requests that waited for a fetch already under way.",
        ),
        MetricSpec(
            "modgate_zip_prefetches_total",
            "counter",
            "Zips fetched ahead of a client's request, by outcome (stored, present, failed, "
            "dropped).",
        ),
        MetricSpec(
            "modgate_stale_served_total",
            "counter",
            "list/latest answers served stale because every source failed.",
        ),
        MetricSpec(
            "modgate_negative_cache_hits_total", "counter", "Not-found answers served from memory."
        ),
        MetricSpec(
            "modgate_negative_shared_hits_total",
            "counter",
            "Not-found answers another replica published in Redis, used instead of the upstream.",
        ),
        MetricSpec(
            "modgate_negative_shared_rejected_total",
            "counter",
            "Not-found answers read from Redis and ignored: malformed, too long or without expiry.",
        ),
        MetricSpec(
            "modgate_coordination_degraded",
            "gauge",
            "1 while Redis (--redis) is unreachable and locks are per process, else 0.",
        ),
        MetricSpec(
            "modgate_verification_failures_total",
            "counter",
            "Fetched artifacts refused because they failed validation.",
        ),
        MetricSpec(
            "modgate_security_events_total",
            "counter",
            "Checksum mismatches, re-tagged versions and checksum-database misbehaviour.",
        ),
        MetricSpec("modgate_hot_cache_bytes", "gauge", "Bytes held in the in-memory hot set."),
        MetricSpec(
            "modgate_hot_known_requests_total",
            "counter",
            "Hot requests answered from their bytes, seen before, without parsing them again.",
        ),
        MetricSpec(
            "modgate_connections_refused_total",
            "counter",
            "Connections answered 503 because a connection limit was reached, by reason.",
        ),
        MetricSpec("modgate_connections_open", "gauge", "Client connections open now."),
        MetricSpec(
            "modgate_direct_hosts_refused_total",
            "counter",
            "Direct fetches refused because their host is not allowed (internal or literal).",
        ),
        MetricSpec(
            "modgate_hot_memfile_bytes",
            "gauge",
            "Bytes of hot responses held in files for sendfile (page cache or memory).",
        ),
        MetricSpec(
            "modgate_auth_decisions_total",
            "counter",
            "Access decisions: allowed_public, allowed_private, denied, unauthenticated, "
            "invalid_credentials, rate_limited.",
        ),
        MetricSpec(
            "modgate_auth_failures_total",
            "counter",
            "Refused credentials by reason (malformed, unknown_token, revoked, expired, ...).",
        ),
        MetricSpec(
            "modgate_request_duration_seconds",
            "histogram",
            "Time from a request's first byte to its response, by route and cache outcome.",
        ),
        MetricSpec("modgate_build_info", "gauge", "Always 1; labels name the version running."),
        MetricSpec(
            "modgate_store_writable",
            "gauge",
            "1 when the store accepts writes, 0 when it does not.",
        ),
        MetricSpec("modgate_store_free_bytes", "gauge", "Free bytes on the store's file system."),
        MetricSpec("modgate_store_capacity_bytes", "gauge", "Size of the store's file system."),
        MetricSpec(
            "modgate_tls_certificate_expiry_timestamp_seconds",
            "gauge",
            "When the served TLS certificate expires (Unix time).",
        ),
        MetricSpec("process_cpu_seconds_total", "counter", "User and system CPU time spent."),
        MetricSpec("process_resident_memory_bytes", "gauge", "Resident memory size."),
        MetricSpec("process_virtual_memory_bytes", "gauge", "Virtual memory size."),
        MetricSpec("process_open_fds", "gauge", "Open file descriptors."),
        MetricSpec("process_max_fds", "gauge", "Limit of open file descriptors."),
        MetricSpec("process_start_time_seconds", "gauge", "Start time of the process (Unix time)."),
        MetricSpec(
            "modgate_git_mirror_failures_total",
            "counter",
            "Full fetches of a git mirror that failed (the mirror is then degraded).",
        ),
        MetricSpec(
            "modgate_git_mirrors_degraded",
            "gauge",
            "Git mirrors whose full fetch is failing; their versions are fetched at depth 1.",
        ),
        MetricSpec(
            "modgate_git_shallow_fallbacks_total",
            "counter",
            "Depth-1 fetches made because a git mirror's full fetch is failing.",
        ),
    )
}


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    total: float = 0.0
    n: int = 0


class Metrics:
    """A registry of named series. Unknown names are a programming error."""

    def __init__(self) -> None:
        self.counters: defaultdict[tuple[str, Labels], float] = defaultdict(float)
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], _Histogram] = {}
        self.collectors: list[Callable[[Metrics], None]] = []
        """Called before each render to set gauges read from outside (files, the process)."""

    def declare(self, name: str, labels: Labels = ()) -> None:
        """Export a counter at 0 before its first increment, so increase() sees the first."""
        self.counters[(name, labels)] += 0

    def inc(self, name: str, labels: Labels = (), by: float = 1) -> None:
        self.counters[(name, labels)] += by

    def set(self, name: str, value: float, labels: Labels = ()) -> None:
        self.gauges[(name, labels)] = value

    def observe(self, name: str, seconds: float, labels: Labels = ()) -> None:
        hist = self.histograms.get((name, labels))
        if hist is None:
            hist = self.histograms[(name, labels)] = _Histogram()
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                hist.counts[i] += 1
        hist.total += seconds
        hist.n += 1

    def add_histogram(
        self, name: str, labels: Labels, per_bucket: list[int], total: float, n: int
    ) -> None:
        """Add observations counted elsewhere: ``per_bucket[i]`` fell in bucket i alone
        (the last entry: beyond every bound); ``total`` is their sum, ``n`` their count."""
        hist = self.histograms.get((name, labels))
        if hist is None:
            hist = self.histograms[(name, labels)] = _Histogram()
        running = 0
        for i in range(len(LATENCY_BUCKETS)):
            running += per_bucket[i]
            hist.counts[i] += running
        hist.total += total
        hist.n += n

    def value(self, name: str, labels: Labels = ()) -> float:
        """A counter's or gauge's current value (0 when never set); for tests and health."""
        if (name, labels) in self.gauges:
            return self.gauges[(name, labels)]
        return self.counters.get((name, labels), 0.0)

    def total(self, name: str) -> float:
        """The sum of a counter over all its label sets."""
        return sum(v for (n, _), v in self.counters.items() if n == name)

    def collect(self) -> None:
        """Run the collectors: gauges read from outside are current after this."""
        for collect in self.collectors:
            collect(self)

    def snapshot(self) -> Snapshot:
        """Every series as plain lists (JSON), after running the collectors."""
        self.collect()
        return {
            "counters": [[n, [list(p) for p in ls], v] for (n, ls), v in self.counters.items()],
            "gauges": [[n, [list(p) for p in ls], v] for (n, ls), v in self.gauges.items()],
            "histograms": [
                [n, [list(p) for p in ls], h.counts, h.total, h.n]
                for (n, ls), h in self.histograms.items()
            ],
        }

    @classmethod
    def from_snapshot(cls, data: Snapshot) -> Metrics:
        """The registry a ``snapshot`` describes (ValueError/KeyError/TypeError if malformed)."""
        out = cls()

        def labels(raw: list[list[str]]) -> Labels:
            return tuple((str(k), str(v)) for k, v in raw)

        for name, raw, value in data["counters"]:
            out.counters[(str(name), labels(raw))] = float(value)
        for name, raw, value in data["gauges"]:
            out.gauges[(str(name), labels(raw))] = float(value)
        for name, raw, counts, total, n in data["histograms"]:
            if len(counts) != len(LATENCY_BUCKETS):
                raise ValueError(f"histogram {name} has {len(counts)} buckets")
            out.histograms[(str(name), labels(raw))] = _Histogram(
                [int(c) for c in counts], float(total), int(n)
            )
        return out

    def render(self, peers: Sequence[tuple[Labels, Metrics]] = (), own: Labels = ()) -> bytes:
        """The Prometheus text page: this registry's series (labelled ``own``), then each
        peer registry's (each labelled with its labels), under one HELP/TYPE per name."""
        self.collect()
        by_name: defaultdict[str, list[str]] = defaultdict(list)
        for extra, registry in ((own, self), *peers):
            registry._lines(by_name, extra)
        out: list[str] = []
        for name, spec in SPECS.items():
            out.append(f"# HELP {name} {spec.help}")
            out.append(f"# TYPE {name} {spec.kind}")
            out.extend(by_name.pop(name, []))
        for _, lines in sorted(by_name.items()):
            out.extend(lines)
        return ("\n".join(out) + "\n").encode()

    def _lines(self, by_name: defaultdict[str, list[str]], extra: Labels) -> None:
        for (name, own), value in sorted(self.counters.items()):
            labels = (*extra, *own)
            by_name[name].append(f"{name}{_fmt_labels(labels)} {_num(value)}")
        for (name, own), value in sorted(self.gauges.items()):
            labels = (*extra, *own)
            by_name[name].append(f"{name}{_fmt_labels(labels)} {_num(value)}")
        for (name, own), hist in sorted(self.histograms.items(), key=lambda kv: kv[0]):
            labels = (*extra, *own)
            lines = by_name[name]
            for bound, count in zip(LATENCY_BUCKETS, hist.counts, strict=True):
                le = (*labels, ("le", repr(bound)))
                lines.append(f"{name}_bucket{_fmt_labels(le)} {count}")
            inf = (*labels, ("le", "+Inf"))
            lines.append(f"{name}_bucket{_fmt_labels(inf)} {hist.n}")
            lines.append(f"{name}_sum{_fmt_labels(labels)} {hist.total!r}")
            lines.append(f"{name}_count{_fmt_labels(labels)} {hist.n}")


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
