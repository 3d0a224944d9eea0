"""With ``--workers N``, /metrics reports every worker, whichever one answers the scrape."""

from __future__ import annotations

import time
import urllib.request

from helpers.servers import ModgateFactory, metric_values

REQUESTS = 40


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:  # a new connection each time
        return bytes(reply.read())


def test_every_scrape_shows_every_worker_and_the_counts_add_up(modgate: ModgateFactory) -> None:
    server = modgate("--upstream", "off", "--workers", "2", "--access-log", "off")
    for _ in range(REQUESTS):
        _get(f"{server.url}/healthz")
    time.sleep(2.5)  # each worker publishes its counts once a second
    for _ in range(6):  # whichever worker answers, both are on the page
        page = _get(f"{server.url}/metrics").decode()
        healthz = {
            labels: n
            for labels, n in metric_values(page, "modgate_requests_total").items()
            if 'route="healthz"' in labels
        }
        workers = {labels.split('worker="', 1)[1].split('"', 1)[0] for labels in healthz}
        assert workers <= {"0", "1"}, healthz
        assert sum(healthz.values()) == REQUESTS, healthz
        resident = metric_values(page, "process_resident_memory_bytes")
        assert set(resident) == {'{worker="0"}', '{worker="1"}'}, resident
        help_lines = [line for line in page.splitlines() if line.startswith("# TYPE ")]
        assert len(help_lines) == len(set(help_lines)), "a metric declared twice"
