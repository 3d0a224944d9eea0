"""Time-to-live rules seen from outside: stale-if-error for lists, and the negative cache."""

from __future__ import annotations

from helpers.modules import SampleProject
from helpers.servers import ModgateFactory, StaticProxyFactory, metric_total

LIST_PATH = "/example.com/liba/@v/list"
MISSING_INFO = "/example.com/liba/@v/v9.9.9.info"


def test_stale_list_served_when_upstream_fails(
    sample: SampleProject, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url, "--list-ttl", "0")

    fresh = server.get(LIST_PATH)
    assert fresh.status == 200, f"GET {LIST_PATH}: {fresh}"
    assert sorted(fresh.body.decode().split()) == ["v1.0.0", "v1.1.0"], f"list: {fresh}"
    stale_before = metric_total(server.metrics(), "modgate_stale_served_total")

    upstream.status_all = 500
    stale = server.get(LIST_PATH)

    assert stale.status == 200, f"GET {LIST_PATH} while the upstream answers 500: {stale}"
    assert stale.body == fresh.body, f"stale list {stale.body!r} != last good {fresh.body!r}"
    assert upstream.count(LIST_PATH) >= 2, (
        f"with --list-ttl 0 the upstream should be asked again: {upstream.seen()}"
    )
    stale_after = metric_total(server.metrics(), "modgate_stale_served_total")
    assert stale_after > stale_before, (
        f"modgate_stale_served_total went from {stale_before} to {stale_after}"
    )


def test_negative_answers_are_remembered(
    sample: SampleProject, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url, "--negative-ttl", "60")

    answers = [server.get(MISSING_INFO) for _ in range(2)]

    statuses = [answer.status for answer in answers]
    assert statuses == [404, 404], f"GET {MISSING_INFO} twice: {[str(a) for a in answers]}"
    assert upstream.count(MISSING_INFO) == 1, (
        f"within --negative-ttl the upstream should be asked once: {upstream.seen()}"
    )
