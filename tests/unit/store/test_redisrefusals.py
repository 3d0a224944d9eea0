"""Not-found answers shared through Redis: the value codec, and a real redis-server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py
from hypothesis import given
from hypothesis import strategies as st

from helpers.s3server import RedisServer, free_port
from modgate.metrics import Metrics
from modgate.protocol.errors import (
    GoneError,
    InvalidModuleError,
    ModgateError,
    NotFoundError,
    UpstreamError,
)
from modgate.store.redislink import DEGRADED_METRIC, QUICK_TIMEOUT, RedisLink
from modgate.store.redisrefusals import (
    MAX_REASON,
    MAX_SUBJECT,
    MAX_VALUE,
    REJECTED_METRIC,
    RedisRefusals,
    decode,
    encode,
    refusal_key,
)

KEY = "mod:example.com/m@v1.0.0"
_line = st.text(st.characters(categories=("L", "M", "N", "P", "S"), include_characters=" "))
"""Text that ``str.isprintable`` accepts: what an error's one-line subject and reason hold."""


@given(
    st.sampled_from((NotFoundError, GoneError, InvalidModuleError)),
    _line.filter(lambda s: len(s) <= MAX_SUBJECT),
    _line.filter(lambda s: 0 < len(s) <= MAX_REASON // 4),
)
def test_refusals_round_trip(kind: type[ModgateError], subject: str, reason: str) -> None:
    data = encode(kind(subject, reason))
    if data is None:  # only when the JSON of a long non-ASCII text passes MAX_VALUE
        assert len(json.dumps([subject, reason], ensure_ascii=False).encode()) > MAX_VALUE - 60
        return
    got = decode(data)
    assert (type(got), got.subject, got.reason) == (kind, subject, reason)


def test_encode_keeps_values_bounded_and_one_line() -> None:
    long = encode(NotFoundError("example.com/m@v1.0.0", "x" * 10_000 + "\nsecond line"))
    assert long is not None and len(long) <= MAX_VALUE
    assert decode(long).reason == "x" * MAX_REASON
    assert encode(NotFoundError("a" * (MAX_SUBJECT + 1), "too long a subject")) is None
    assert encode(UpstreamError("example.com/m", "answered 500")) is None, "not a not-found"
    assert decode(encode(NotFoundError("m", "a\nb")) or b"").reason == "a b"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'"NotFoundError"',
        b'{"v":1,"kind":"NotFoundError","subject":"m"}',
        b'{"v":1,"kind":"NotFoundError","subject":"m","reason":"r","extra":1}',
        b'{"v":2,"kind":"NotFoundError","subject":"m","reason":"r"}',
        b'{"v":true,"kind":"NotFoundError","subject":"m","reason":"r"}',
        b'{"v":1,"kind":"StoreError","subject":"m","reason":"r"}',
        b'{"v":1,"kind":"ModgateError","subject":"m","reason":"r"}',
        b'{"v":1,"kind":["NotFoundError"],"subject":"m","reason":"r"}',
        b'{"v":1,"kind":"NotFoundError","subject":1,"reason":"r"}',
        b'{"v":1,"kind":"NotFoundError","subject":"m","reason":""}',
        b'{"v":1,"kind":"NotFoundError","subject":"m","reason":"line\\nbreak"}',
        b'{"v":1,"kind":"NotFoundError","subject":"m\\u001b[31m","reason":"r"}',
        b'{"v":1,"kind":"NotFoundError","subject":"m","reason":"' + b"r" * 3000 + b'"}',
        b"[" * 5000,
    ],
)
def test_hostile_values_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        decode(value)


@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_not_found_kind_or_a_value_error(data: bytes) -> None:
    try:
        got = decode(data)
    except ValueError:
        return
    assert isinstance(got, (NotFoundError, InvalidModuleError)), type(got)


def test_keys_are_fixed_length_whatever_the_name() -> None:
    short, long = refusal_key("ns", "m"), refusal_key("ns", "x" * 100_000 + "\udcff")
    assert len(short) == len(long) == len("ns:neg:") + 64 and short != long


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def test_a_published_refusal_is_found_with_its_time_left(redis: RedisServer) -> None:
    publisher = RedisRefusals(RedisLink(redis.url), "ns")
    reader = RedisRefusals(RedisLink(redis.url), "ns")
    assert reader.lookup(KEY) is None
    publisher.publish(KEY, GoneError("example.com/m@v1.0.0", "removed upstream"), 5.0)
    found = reader.lookup(KEY)
    assert found is not None, "the published refusal was not found"
    exc, left = found
    assert (type(exc), str(exc)) == (GoneError, "example.com/m@v1.0.0: removed upstream")
    assert 3.0 < left <= 5.0, f"{left} s left of a 5 s refusal"
    assert RedisRefusals(RedisLink(redis.url), "other").lookup(KEY) is None, "namespaces leak"
    publisher.publish(KEY + "x", NotFoundError("m", "gone"), 0.2)
    time.sleep(0.4)
    assert reader.lookup(KEY + "x") is None, "a refusal outlived its time"


def test_corrupt_or_endless_values_are_ignored_and_counted(redis: RedisServer) -> None:
    metrics = Metrics()
    reader = RedisRefusals(RedisLink(redis.url), "ns", metrics)
    raw = redis_py.Redis.from_url(redis.url)
    raw.set(refusal_key("ns", KEY), b"\x00garbage", px=60_000)
    assert reader.lookup(KEY) is None
    good = encode(NotFoundError("m", "absent"))
    raw.set(refusal_key("ns", KEY), good or b"")  # no expiry: would refuse for ever
    assert reader.lookup(KEY) is None
    assert metrics.value(REJECTED_METRIC) == 2


def test_redis_down_costs_one_short_timeout_then_nothing(tmp_path: Path) -> None:
    metrics = Metrics()
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", metrics)
    refusals = RedisRefusals(link, "ns", metrics)
    started = time.monotonic()
    assert refusals.lookup(KEY) is None
    refusals.publish(KEY, NotFoundError("m", "absent"), 5.0)  # skipped: degraded
    for _ in range(100):
        assert refusals.lookup(KEY) is None
    took = time.monotonic() - started
    assert took < QUICK_TIMEOUT * 4, f"101 lookups with Redis down took {took:.2f} s"
    assert link.degraded is not None and metrics.value(DEGRADED_METRIC) == 1.0
