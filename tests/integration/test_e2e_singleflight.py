"""Concurrent requests for one uncached artifact share a single upstream fetch."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from helpers.modules import SampleProject
from helpers.servers import (
    ModgateFactory,
    Response,
    StaticProxyFactory,
    http_get,
    metric_total,
)

CLIENTS = 50
UPSTREAM_DELAY = 0.5
CLIENT_TIMEOUT = 60.0


def test_fifty_clients_one_upstream_fetch(
    sample: SampleProject, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> None:
    upstream = static_proxy(sample.proxy_root)
    upstream.delay = UPSTREAM_DELAY
    server = modgate("--upstream", upstream.url)
    target = sample.version("example.com/liba", "v1.0.0")
    path = target.url_path("zip")
    start = threading.Barrier(CLIENTS)

    def fetch(_: int) -> Response:
        start.wait(timeout=CLIENT_TIMEOUT)
        return http_get(server.url, path, timeout=CLIENT_TIMEOUT)

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(fetch, range(CLIENTS)))

    statuses = Counter(answer.status for answer in answers)
    assert statuses == {200: CLIENTS}, f"statuses of {CLIENTS} concurrent GETs {path}: {statuses}"
    digests = Counter(hashlib.sha256(answer.body).hexdigest()[:12] for answer in answers)
    expected = hashlib.sha256(target.zip).hexdigest()[:12]
    assert digests == {expected: CLIENTS}, (
        f"bodies differ (sha256 prefix -> count): {dict(digests)}, expected {expected} "
        f"({len(target.zip)} bytes) for all"
    )
    assert upstream.count(path) == 1, (
        f"upstream got {upstream.count(path)} requests for {path}: {upstream.seen()}"
    )
    waits = metric_total(server.metrics(), "modgate_singleflight_waits_total")
    assert waits > 0, "modgate_singleflight_waits_total stayed 0 although clients had to wait"
