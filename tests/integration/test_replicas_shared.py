"""What replicas share through Redis beyond fetch leases: not-found answers, and Sentinel.

Replicas run on one bucket of moto's S3 server and one real ``redis-server``
(behind a real Redis Sentinel in the last tests), all on loopback; the
upstream is the static test proxy, which counts what it is asked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from helpers.modules import SampleProject
from helpers.redissentinel import RedisSentinel
from helpers.s3server import RedisServer, S3Server, start_replicas
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxyFactory,
    http_get,
    metric_total,
)
from helpers.staticproxy import LOOPBACK
from modgate.store.redislink import RETRY_SECONDS
from modgate.store.redisrefusals import refusal_key

BUCKET = "modgate-shared"
NEGATIVE_TTL = 2.0
COLD_REQUESTS = 20


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.create_bucket(BUCKET)
    yield server
    server.close()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def _replicas(
    modgate: ModgateFactory, s3: S3Server, tmp_path: Path, prefix: str, count: int, *args: str
) -> list[ModgateHandle]:
    return start_replicas(modgate, s3, BUCKET, prefix, tmp_path, count, *args)


def _missing(sample: SampleProject, version: str) -> tuple[str, str]:
    """The .mod path of a version the upstream does not have, and its gateway key."""
    built = sample.versions[0]
    return f"/{built.escaped_dir()}/{version}.mod", f"mod:{built.mv.path}@{version}"


def test_a_not_found_learnt_by_one_replica_is_not_asked_again_by_the_others(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    first, *others = _replicas(
        modgate, s3, tmp_path, "neg", 3,
        "--upstream", upstream.url, "--redis", redis.url, "--negative-ttl", str(NEGATIVE_TTL),
    )  # fmt: skip
    path, _ = _missing(sample, "v1.99.9")
    module_list = "/example.com/no-such-module/@v/list"
    for url_path in (path, module_list):
        answer = http_get(first.url, url_path)
        learnt = time.monotonic()
        assert answer.status == 404, f"{url_path} through the first replica: {answer}"
        for replica in others:
            answer = http_get(replica.url, url_path)
            assert answer.status == 404, f"{url_path} through another replica: {answer}"
        asked = upstream.count(url_path)
        elapsed = time.monotonic() - learnt
        assert asked == 1, (
            f"{url_path} was asked upstream {asked} times by 3 replicas within "
            f"{elapsed:.2f} s (--negative-ttl {NEGATIVE_TTL}); upstream saw {upstream.seen()}"
        )
    hits = sum(metric_total(r.metrics(), "modgate_negative_shared_hits_total") for r in others)
    assert hits >= 4, f"the other replicas counted {hits} shared not-found answers, want 4"
    time.sleep(NEGATIVE_TTL + 0.2)
    assert http_get(others[0].url, path).status == 404
    assert upstream.count(path) == 2, f"after the TTL the upstream saw {upstream.seen()}"


def test_list_answers_are_shared_through_the_bucket(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    replicas = _replicas(modgate, s3, tmp_path, "lists", 3, "--upstream", upstream.url)
    built = sample.versions[0]
    path = f"/{built.escaped_dir()}/list"
    answers = [http_get(replica.url, path) for replica in replicas]
    assert [a.status for a in answers] == [200] * 3, [str(a) for a in answers]
    assert len({a.body for a in answers}) == 1, "replicas answered different lists"
    assert built.mv.version.encode() in answers[0].body, answers[0].body
    assert upstream.count(path) == 1, f"3 replicas asked for the list {upstream.count(path)} times"


def test_a_corrupt_refusal_in_redis_is_ignored_and_counted(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    (replica,) = _replicas(
        modgate, s3, tmp_path, "corrupt", 1, "--upstream", upstream.url, "--redis", redis.url
    )
    client = redis_py.Redis.from_url(redis.url)
    namespace = f"modgate:s3://{BUCKET}/corrupt"
    built = sample.versions[0]
    stored_key = f"mod:{built.mv}"
    client.set(refusal_key(namespace, stored_key), b'{"v":1,"kind":"NotFound', px=60_000)
    answer = http_get(replica.url, built.url_path("mod"))
    assert (answer.status, answer.body) == (200, built.mod), f"with a corrupt refusal: {answer}"
    path, key = _missing(sample, "v1.99.8")
    client.set(refusal_key(namespace, key), b"\xff" * 4096, px=60_000)
    assert http_get(replica.url, path).status == 404
    assert upstream.count(path) == 1, "the upstream was not asked past a corrupt refusal"
    rejected = metric_total(replica.metrics(), "modgate_negative_shared_rejected_total")
    assert rejected == 2, f"modgate_negative_shared_rejected_total is {rejected}, want 2"
    value = client.get(refusal_key(namespace, key))
    assert value is not None and b"v1.99.8" in value and len(value) < 2048, (
        f"the replica did not publish its own refusal over the corrupt one: {value!r}"
    )


@contextlib.contextmanager
def _silent_redis() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers (a hung Redis)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(64)
        yield f"redis://{LOOPBACK}:{sock.getsockname()[1]}/0"


HUNG_REDIS_BOUND = 1.0
"""Seconds a stored artifact may take while a cold request waits for a hung Redis (the
lease's round trips time out after 2 s each, retried: 8 s or more if they ran on the loop)."""


def test_a_hung_redis_never_stalls_the_answers_of_other_requests(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    stored, cold = sample.versions[0], sample.versions[1]
    with _silent_redis() as url, concurrent.futures.ThreadPoolExecutor(1) as pool:
        (replica,) = _replicas(
            modgate, s3, tmp_path, "hung", 1, "--upstream", upstream.url, "--redis", url
        )
        assert http_get(replica.url, stored.url_path("mod")).body == stored.mod
        time.sleep(RETRY_SECONDS + 0.2)  # the next lease is asked of Redis again
        waiting = pool.submit(http_get, replica.url, cold.url_path("mod"), timeout=30)
        time.sleep(0.3)
        started = time.monotonic()
        answer = http_get(replica.url, stored.url_path("mod"))
        took = time.monotonic() - started
        assert (answer.status, answer.body) == (200, stored.mod), str(answer)
        assert not waiting.done(), "the cold request did not wait for the hung Redis"
        assert took < HUNG_REDIS_BOUND, (
            f"a stored .mod took {took:.2f} s while a cold request waited for a hung Redis"
        )
        replica.kill()  # the cold request is not waited for


@pytest.fixture
def sentinel(tmp_path: Path, redis: RedisServer) -> Iterator[RedisSentinel]:
    server = RedisSentinel(tmp_path / "sentinel", redis)
    yield server
    server.stop()


def test_replicas_coordinate_through_redis_sentinel(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    sentinel: RedisSentinel,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    upstream.delay = 0.2  # every replica asks while the first fetch is still under way
    replicas = _replicas(
        modgate, s3, tmp_path, "sentinel", 2, "--upstream", upstream.url, "--redis", sentinel.url
    )
    built = sample.versions[0]
    path = built.url_path("zip")

    def ask(i: int) -> tuple[int, bytes]:
        answer = http_get(replicas[i % 2].url, path)
        return answer.status, answer.body

    with concurrent.futures.ThreadPoolExecutor(COLD_REQUESTS) as pool:
        answers = list(pool.map(ask, range(COLD_REQUESTS)))
    wrong = [status for status, body in answers if status != 200 or body != built.zip]
    assert not wrong, f"statuses of answers that are not the published zip: {wrong}"
    fetched = {kind: upstream.count(built.url_path(kind)) for kind in ("mod", "zip")}
    assert fetched == {"mod": 1, "zip": 1}, (
        f"{COLD_REQUESTS} cold requests over 2 replicas behind Sentinel fetched {fetched}, "
        f"want one of each; upstream saw {upstream.seen()}"
    )
    for replica in replicas:
        ready = http_get(replica.url, "/readyz")
        assert (ready.status, ready.body) == (200, b"ok\n"), f"/readyz through Sentinel: {ready}"


FAILOVER_TIMEOUT = 15.0


def _coordination_lines(replicas: list[ModgateHandle]) -> list[str]:
    lines = (line for r in replicas for line in r.stderr_text().splitlines())
    return [line for line in lines if "coordination" in line]


def test_replicas_follow_a_sentinel_failover(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    standby = RedisServer(tmp_path / "standby", "--replicaof", LOOPBACK, str(redis.port))
    sentinel = RedisSentinel(tmp_path / "sentinel", redis)
    try:
        sentinel.wait_for("the sentinel knows the standby", lambda: sentinel.replicas() == 1, 15)
        upstream = static_proxy(sample.proxy_root)
        replicas = _replicas(
            modgate, s3, tmp_path, "failover", 2,
            "--upstream", upstream.url, "--redis", sentinel.url,
        )  # fmt: skip
        before, after = sample.versions[0], sample.versions[1]
        for replica in replicas:  # .info too: no fetch (and no lease) is under way at the kill
            for kind in ("mod", "info"):
                assert http_get(replica.url, before.url_path(kind)).status == 200
        upstream.delay = 0.2  # every replica asks while the first fetch is still under way
        redis.stop()
        took = sentinel.wait_for(
            "Sentinel promotes the standby", lambda: sentinel.master_port() == standby.port,
            FAILOVER_TIMEOUT,
        )  # fmt: skip
        path = after.url_path("zip")
        with concurrent.futures.ThreadPoolExecutor(COLD_REQUESTS) as pool:
            answers = list(pool.map(lambda i: http_get(replicas[i % 2].url, path), range(20)))
        wrong = [str(a) for a in answers if a.status != 200 or a.body != after.zip]
        assert not wrong, f"after the failover ({took:.1f} s): {wrong[:3]}"
        fetched = {kind: upstream.count(after.url_path(kind)) for kind in ("mod", "zip")}
        assert fetched == {"mod": 1, "zip": 1}, (
            f"after the failover the leases did not hold on the new master: fetched {fetched}; "
            f"coordination log: {_coordination_lines(replicas)}"
        )
    finally:
        sentinel.stop()
        standby.stop()
