"""Redis leases on a real redis-server: expiry, fencing tokens, degraded mode and recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.s3server import RedisServer, free_port
from modgate.metrics import Metrics
from modgate.protocol.errors import StoreError
from modgate.store.redislease import RedisLocks
from modgate.store.redislink import DEGRADED_METRIC

WAIT = 10.0


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def test_a_dead_holders_lease_expires_and_its_late_release_frees_nothing(
    redis: RedisServer,
) -> None:
    dead = RedisLocks(redis.url, "t", lease_seconds=0.5)
    alive = RedisLocks(redis.url, "t", lease_seconds=5)
    release = dead.try_lock("zip:example.com/m@v1.0.0")
    assert release is not None
    dead.close()  # the holder "dies": nobody extends its lease any more
    assert alive.try_lock("zip:example.com/m@v1.0.0") is None, "a held lease was taken"
    started = time.monotonic()
    with alive.lock("zip:example.com/m@v1.0.0"):
        waited = time.monotonic() - started
        ours = alive.token("zip:example.com/m@v1.0.0")
        release()  # the dead holder's late release must not free the new holder's lease
        third = RedisLocks(redis.url, "t")
        assert third.try_lock("zip:example.com/m@v1.0.0") is None, "a late release freed it"
    assert 0.1 < waited < WAIT, f"took the expired lease after {waited:.2f} s"
    assert ours is not None and ours > 0


def test_tokens_only_grow(redis: RedisServer) -> None:
    locks = RedisLocks(redis.url, "t")
    tokens = []
    for _ in range(3):
        with locks.lock("name"):
            tokens.append(locks.token("name"))
    assert tokens == sorted(set(tokens)), f"fencing tokens {tokens} do not grow"  # type: ignore[type-var]


def test_a_lease_outlives_its_expiry_while_held(redis: RedisServer) -> None:
    holder = RedisLocks(redis.url, "t", lease_seconds=0.3)
    other = RedisLocks(redis.url, "t", lease_seconds=0.3)
    with holder.lock("long"):
        time.sleep(1.0)  # three lease lifetimes: the renewer keeps it
        assert other.try_lock("long") is None, "a held lease expired while its holder lived"


def test_redis_down_degrades_refuses_the_log_lock_and_recovers(redis: RedisServer) -> None:
    metrics = Metrics()
    locks = RedisLocks(redis.url, "t", metrics)
    redis.stop()
    with locks.lock("zip:example.com/m@v1.0.0"):  # per process: still exclusive in here
        assert locks.try_lock("zip:example.com/m@v1.0.0") is None, "degraded lock not exclusive"
    assert locks.degraded is not None and "per process" in locks.degraded
    assert metrics.value(DEGRADED_METRIC) == 1.0
    with pytest.raises(StoreError) as caught, locks.lock("sumdb/private.example.com"):
        pass
    assert "Redis" in str(caught.value), caught.value
    redis.start()
    deadline = time.monotonic() + WAIT
    while locks.ping() is not None:
        assert time.monotonic() < deadline, f"still degraded: {locks.degraded}"
        time.sleep(0.2)
    assert metrics.value(DEGRADED_METRIC) == 0.0
    with locks.lock("sumdb/private.example.com"):
        assert locks.token("sumdb/private.example.com"), "no lease after Redis returned"


def test_unreachable_redis_at_start_is_degraded_not_fatal() -> None:
    locks = RedisLocks(f"redis://127.0.0.1:{free_port()}/0", "t")
    assert locks.ping() is not None
    release = locks.try_lock("a")
    assert release is not None
    release()
