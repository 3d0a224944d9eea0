"""The negative cache's two halves: memory first, then refusals shared through a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.s3server import RedisServer
from modgate.metrics import Metrics
from modgate.protocol.errors import GoneError, NotFoundError
from modgate.service.negatives import SHARED_HITS_METRIC, Negatives
from modgate.store.redislink import RedisLink
from modgate.store.redisrefusals import RedisRefusals

KEY = "mod:example.com/m@v1.0.0"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def _replica(redis: RedisServer, pool: ThreadPoolExecutor, ttl: float) -> tuple[Negatives, Metrics]:
    metrics = Metrics()
    shared = RedisRefusals(RedisLink(redis.url), "ns", metrics)
    return Negatives(ttl, 1000, metrics, pool, shared), metrics


def test_a_refusal_learnt_by_one_replica_is_known_by_another_for_the_time_left(
    redis: RedisServer, pool: ThreadPoolExecutor
) -> None:
    first, _ = _replica(redis, pool, ttl=0.6)
    second, metrics = _replica(redis, pool, ttl=60)  # a longer TTL of its own

    async def go() -> None:
        assert await second.shared_error(KEY) is None
        await first.remember(KEY, GoneError("example.com/m@v1.0.0", "removed upstream"))
        assert first.known(KEY) and not second.known(KEY), "memory is per replica"
        found = await second.shared_error(KEY)
        assert isinstance(found, GoneError) and found.reason == "removed upstream", found
        assert second.known(KEY), "a shared refusal was not kept in memory"
        error = second.error(KEY)
        assert error is not None and str(error) == str(found)

    asyncio.run(go())
    assert metrics.value(SHARED_HITS_METRIC) == 1
    time.sleep(0.8)
    assert not second.known(KEY), "kept past the first replica's TTL (its own is 60 s)"
    assert asyncio.run(second.shared_error(KEY)) is None, "Redis kept it past its TTL"


def test_a_zero_ttl_shares_nothing(redis: RedisServer, pool: ThreadPoolExecutor) -> None:
    off, _ = _replica(redis, pool, ttl=0)
    on, _ = _replica(redis, pool, ttl=60)

    async def go() -> None:
        await off.remember(KEY, NotFoundError("m", "absent"))
        assert await on.shared_error(KEY) is None, "a replica without negative caching shared"

    asyncio.run(go())
