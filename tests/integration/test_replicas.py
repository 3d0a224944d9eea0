"""Three modgate replicas on one S3 bucket and one Redis behave as one server.

The bucket is served by moto's S3 server and the locks by a real
``redis-server``, both on loopback and started here; the upstream is the
static test proxy, which counts what it is asked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import BuiltVersion, SampleProject, download_problems
from helpers.s3server import RedisServer, S3Server, client, s3_store, start_replicas
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxyFactory,
    http_get,
    run_modgate,
)
from helpers.sumdbserver import TestSumdb, proxy_gosum

REPLICAS = 3
LOG_NAME = "sumdb.replicas.test"
COLD_REQUESTS = 50
BUCKET = "modgate-replicas"
READY_WAIT = 30.0
WAIT = 20.0
"""Seconds /readyz may take to see Redis again (it is checked every few seconds)."""


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
    modgate: ModgateFactory,
    s3: S3Server,
    tmp_path: Path,
    prefix: str,
    *args: str,
    count: int = REPLICAS,
) -> list[ModgateHandle]:
    return start_replicas(modgate, s3, BUCKET, prefix, tmp_path, count, *args)


def _offline(
    modgate: ModgateFactory, s3: S3Server, tmp_path: Path, prefix: str, *args: str
) -> ModgateHandle:
    """A replica on ``prefix`` that never asks the upstream, with a cache of its own."""
    store = s3_store(BUCKET, prefix, tmp_path / "cache-off")
    return modgate(*store, "--upstream", "off", *args, env=s3.env())


def _assert_go_downloads_all(
    sample: SampleProject,
    workdir: Path,
    gocache: Path,
    goproxy: str,
    what: str,
    gosumdb: str = "off",
) -> None:
    """``go mod download`` of every sample version through ``goproxy`` gets the published ones."""
    workdir.mkdir()
    env = go_env(workdir, goproxy=goproxy, gosumdb=gosumdb, gocache=gocache)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], workdir, env)
    problems = download_problems(json_stream(proc.stdout), sample.versions)
    assert not problems, f"{what}:\n" + "\n".join(problems)


def test_concurrent_cold_requests_over_replicas_fetch_once(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    upstream.delay = 0.2  # every replica asks while the first fetch is still under way
    replicas = _replicas(
        modgate, s3, tmp_path, "cold", "--upstream", upstream.url, "--redis", redis.url
    )
    built = sample.versions[0]
    path = built.url_path("zip")

    def ask(i: int) -> tuple[int, int, bytes]:
        answer = http_get(replicas[i % REPLICAS].url, path)
        return i % REPLICAS, answer.status, answer.body

    with concurrent.futures.ThreadPoolExecutor(COLD_REQUESTS) as pool:
        answers = list(pool.map(ask, range(COLD_REQUESTS)))
    wrong = [(r, status) for r, status, body in answers if status != 200 or body != built.zip]
    assert not wrong, f"answers (replica, status) that are not the published zip: {wrong}"
    fetched = {kind: upstream.count(built.url_path(kind)) for kind in ("mod", "zip")}
    assert fetched == {"mod": 1, "zip": 1}, (
        f"{COLD_REQUESTS} cold requests over {REPLICAS} replicas fetched upstream {fetched}, "
        f"want one of each; upstream saw {upstream.seen()}"
    )


def test_without_redis_each_replica_fetches_at_most_once(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    upstream.delay = 0.2
    replicas = _replicas(modgate, s3, tmp_path, "noredis", "--upstream", upstream.url)
    built = sample.versions[0]
    path = built.url_path("zip")
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda i: http_get(replicas[i % REPLICAS].url, path), range(30)))
    assert [a.status for a in answers] == [200] * 30, [str(a) for a in answers if a.status != 200]
    assert all(a.body == built.zip for a in answers), "a replica served other bytes"
    zips = upstream.count(path)
    assert 1 <= zips <= REPLICAS, f"{zips} upstream fetches of the zip, want 1 to {REPLICAS}"


def test_redis_down_degrades_and_recovers(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    (replica,) = _replicas(
        modgate, s3, tmp_path, "degrade", "--upstream", upstream.url, "--redis", redis.url,
        count=1,
    )  # fmt: skip
    first, second = sample.versions[0], sample.versions[1]
    assert http_get(replica.url, first.url_path("mod")).status == 200
    redis.stop()
    answer = http_get(replica.url, second.url_path("mod"))
    assert (answer.status, answer.body) == (200, second.mod), f"with Redis down: {answer}"
    assert http_get(replica.url, first.url_path("mod")).body == first.mod
    ready = http_get(replica.url, "/readyz")
    assert ready.status == 200 and b"degraded" in ready.body, f"/readyz with Redis down: {ready}"
    metrics = http_get(replica.url, "/metrics").body.decode()
    assert "modgate_coordination_degraded 1" in metrics, "the gauge does not say degraded"
    replica.wait_for_log("coordination degraded")
    redis.start()
    third = sample.versions[2]
    answer = http_get(replica.url, third.url_path("mod"))
    assert answer.status == 200, f"after Redis returned: {answer}"
    deadline = time.monotonic() + READY_WAIT
    while (ready := http_get(replica.url, "/readyz")).body != b"ok\n":
        assert time.monotonic() < deadline, f"/readyz {READY_WAIT} s after Redis returned: {ready}"
        time.sleep(0.5)
    metrics = http_get(replica.url, "/metrics").body.decode()
    assert "modgate_coordination_degraded 0" in metrics, "the gauge still says degraded"
    deadline = time.monotonic() + 5  # the log is read from the child's stderr by a thread
    while "coordination restored" not in replica.stderr_text():
        assert time.monotonic() < deadline, "no log line says coordination was restored"
        time.sleep(0.1)


@pytest.mark.go
def test_go_downloads_through_one_replica_then_another_offline(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    (online,) = _replicas(
        modgate, s3, tmp_path, "go", "--upstream", upstream.url, "--redis", redis.url, count=1
    )
    offline = _offline(modgate, s3, tmp_path, "go", "--redis", redis.url)
    for name, server in (("online", online), ("offline", offline)):
        what = f"through the {name} replica"
        _assert_go_downloads_all(sample, tmp_path / name, gocache, server.url, what)


@pytest.mark.go
def test_private_log_appended_through_three_replicas_verifies_through_each(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    key = tmp_path / "log.key"
    keygen = run_modgate("sumdb", "keygen", "--name", LOG_NAME, "--out", str(key))
    assert keygen.returncode == 0, describe(keygen)
    vkey = keygen.stdout.strip()
    upstream = static_proxy(sample.proxy_root)
    with TestSumdb(proxy_gosum(sample.proxy_root)) as public:
        replicas = _replicas(
            modgate, s3, tmp_path, "log", "--upstream", upstream.url, "--redis", redis.url,
            "--sumdb", public.spec, "--sumdb-key", str(key),
        )  # fmt: skip

        def fetch(i: int) -> list[str]:
            """Download a third of the sample versions through replica i, verified by its log."""
            server = replicas[i]
            mine = [str(b.mv) for n, b in enumerate(sample.versions) if n % REPLICAS == i]
            workdir = tmp_path / f"first{i}"
            workdir.mkdir()
            gosumdb = f"{vkey} {server.url}/sumdb/{LOG_NAME}"
            env = go_env(workdir, goproxy=server.url, gosumdb=gosumdb, gocache=gocache)
            proc = run_go(["mod", "download", "-json", *mine], workdir, env)
            return [str(r.get("Error")) for r in json_stream(proc.stdout) if r.get("Error")]

        with concurrent.futures.ThreadPoolExecutor(REPLICAS) as pool:
            errors = [e for found in pool.map(fetch, range(REPLICAS)) for e in found]
        assert not errors, f"downloads through the replicas failed: {errors}"
        heads = {r.url: http_get(r.url, f"/sumdb/{LOG_NAME}/latest").body for r in replicas}
        assert len(set(heads.values())) == 1, f"replicas serve different tree heads: {heads}"
        size = next(iter(heads.values())).split(b"\n")[1]
        assert size == str(len(sample.versions)).encode(), (
            f"log size {size!r}, want one per version"
        )
        for i, server in enumerate(replicas):
            gosumdb = f"{vkey} {server.url}/sumdb/{LOG_NAME}"
            _assert_go_downloads_all(
                sample, tmp_path / f"all{i}", gocache, replicas[(i + 1) % REPLICAS].url,
                f"verified by replica {i}'s log", gosumdb,
            )  # fmt: skip


def test_a_replica_killed_mid_fetch_is_replaced_when_its_lease_ends(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    upstream.delay = 1.0
    first, second = _replicas(
        modgate, s3, tmp_path, "kill", "--upstream", upstream.url, "--redis", redis.url,
        "--redis-lease", "1", count=2,
    )  # fmt: skip
    built = sample.versions[0]
    path = built.url_path("zip")
    pending = concurrent.futures.ThreadPoolExecutor(1)
    doomed = pending.submit(http_get, first.url, path)
    deadline = time.monotonic() + WAIT
    while upstream.count(path) == 0:  # the first replica holds the zip's lease, mid-fetch
        assert time.monotonic() < deadline, f"the first replica never fetched: {upstream.seen()}"
        time.sleep(0.02)
    first.kill()
    with contextlib.suppress(OSError):
        doomed.result(WAIT)
    pending.shutdown()
    started = time.monotonic()
    answer = http_get(second.url, path)
    took = time.monotonic() - started
    assert (answer.status, answer.body == built.zip) == (200, True), f"second replica: {answer}"
    assert upstream.count(path) == 2, f"zip fetches {upstream.count(path)}, want the cut one and 1"
    assert took < WAIT, f"the second replica took {took:.1f} s to take over"
    with (tmp_path / "check").open("wb") as out:
        listed = client(s3.url).get_object(Bucket=BUCKET, Key=f"kill{path}")  # type: ignore[attr-defined]
        out.write(listed["Body"].read())
    assert (tmp_path / "check").read_bytes() == built.zip, "the bucket holds other bytes"


def test_object_store_down_serves_the_cached_refuses_the_rest_and_recovers(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    redis: RedisServer,
) -> None:
    own = S3Server()  # stopped and started by this test only
    try:
        own.create_bucket(BUCKET)
        upstream = static_proxy(sample.proxy_root)
        (replica,) = _replicas(
            modgate, own, tmp_path, "down", "--upstream", upstream.url, "--redis", redis.url,
            count=1,
        )  # fmt: skip
        warm, cold = sample.versions[0], sample.versions[1]
        assert http_get(replica.url, warm.url_path("zip")).body == warm.zip
        own.stop()
        again = http_get(replica.url, warm.url_path("zip"))
        assert (again.status, again.body == warm.zip) == (200, True), f"cached zip: {again}"
        refused = http_get(replica.url, cold.url_path("zip"))
        assert refused.status >= 500, f"a cold zip with the object store down: {refused}"
        assert f"s3://{BUCKET}/down/".encode() in refused.body, (
            f"the error names no object: {refused}"
        )
        started = time.monotonic()
        again = http_get(replica.url, cold.url_path("info"))
        took = time.monotonic() - started
        assert again.status >= 500 and took < 1.0, f"a second miss took {took:.2f} s: {again}"
        ready = http_get(replica.url, "/readyz")
        assert ready.status == 503, f"/readyz with the object store down: {ready}"
        own.start()
        deadline = time.monotonic() + WAIT  # calls fail at once for 2 s after a failure
        while (answer := http_get(replica.url, cold.url_path("zip"))).status != 200:
            assert time.monotonic() < deadline, f"still failing after the restart: {answer}"
            time.sleep(0.5)
        assert answer.body == cold.zip, "the zip served after the restart is not the published one"
        stored = client(own.url).get_object(Bucket=BUCKET, Key=f"down{cold.url_path('zip')}")  # type: ignore[attr-defined]
        assert stored["Body"].read() == cold.zip, "the bucket holds other bytes than published"
    finally:
        own.close()


def test_a_missing_bucket_stops_the_start_naming_it(tmp_path: Path, s3: S3Server) -> None:
    ran = run_modgate(
        "serve", "--listen", "127.0.0.1:0", "--store", "s3://no-such-bucket/mirror",
        "--store-cache", str(tmp_path / "cache"), "--upstream", "off", env=s3.env(),
    )  # fmt: skip
    assert ran.returncode == 2, f"exit {ran.returncode}: {ran.stderr[-500:]}"
    assert "s3://no-such-bucket" in ran.stderr, ran.stderr[-500:]
    assert s3.env()["AWS_SECRET_ACCESS_KEY"] not in ran.stderr, "the secret key was printed"


@pytest.mark.go
def test_redis_restarted_mid_load_leaves_every_artifact_whole(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
    redis: RedisServer,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    upstream.delay = 0.3
    replicas = _replicas(
        modgate, s3, tmp_path, "restart", "--upstream", upstream.url, "--redis", redis.url
    )
    asks = [(r, b) for b in sample.versions for r in range(REPLICAS) for _ in range(3)]

    def ask(item: tuple[int, BuiltVersion]) -> tuple[str, int, bool]:
        replica, built = item
        answer = http_get(replicas[replica].url, built.url_path("zip"))
        return str(built.mv), answer.status, answer.body == built.zip

    with concurrent.futures.ThreadPoolExecutor(len(asks)) as pool:
        futures = [pool.submit(ask, item) for item in asks]
        time.sleep(0.2)  # the first fetches hold their leases
        redis.stop()
        time.sleep(0.5)
        redis.start()
        results = [f.result() for f in futures]
    wrong = [(mv, status) for mv, status, same in results if status != 200 or not same]
    assert not wrong, f"answers that are not the published zip: {wrong}"
    for built in sample.versions:
        fetched = upstream.count(built.url_path("zip"))
        assert 1 <= fetched <= REPLICAS, f"{built.mv}: {fetched} upstream zip fetches"
    offline = _offline(modgate, s3, tmp_path, "restart")
    _assert_go_downloads_all(
        sample, tmp_path / "verify", gocache, offline.url, "after the Redis restart"
    )
