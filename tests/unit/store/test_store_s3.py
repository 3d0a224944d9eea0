"""S3Store (with and without its disk cache) on a real S3 API: the store contract, and more.

The S3 API is moto's server mode on loopback; locks are Redis leases on a
real ``redis-server``. Both are started once per module.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from contract.store_contract import MV, StoreContract
from helpers.s3server import RedisServer, S3Server, client
from modgate.protocol.errors import StoreError
from modgate.protocol.module import ModuleVersion
from modgate.store.base import Kind, Store
from modgate.store.diskcache import CachedStore
from modgate.store.locking import ProcessLocks
from modgate.store.redislease import RedisLocks
from modgate.store.redisurl import redacted
from modgate.store.s3 import S3Store, parse_url

REDIS_VAR = "MODGATE_TEST_REDIS_URL"


@pytest.fixture(scope="module", autouse=True)
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, RedisServer]]:
    s3 = S3Server()
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    saved = {k: os.environ.get(k) for k in (*s3.env(), REDIS_VAR)}
    os.environ.update(s3.env())  # spawned children (the contract's) inherit it
    os.environ[REDIS_VAR] = redis.url
    yield s3, redis
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    redis.stop()
    s3.close()


@functools.cache
def _client(url: str) -> Any:
    """One boto3 client per process (making one reads the service model: slow)."""
    return client(url)


def _bucket(tmp_path: Path) -> str:
    name = "t" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:20]
    s3 = _client(os.environ["AWS_ENDPOINT_URL"])
    try:
        s3.create_bucket(Bucket=name)
    except Exception as exc:  # another process of the same test made it
        if "BucketAlreadyOwnedByYou" not in str(exc):
            raise
    return name


def _s3(tmp_path: Path) -> S3Store:
    bucket = _bucket(tmp_path)
    locks = RedisLocks(os.environ[REDIS_VAR], namespace=f"modgate:{bucket}")
    local = tmp_path / f"local-{os.getpid()}"
    return S3Store(
        bucket, "mirror", local, client=_client(os.environ["AWS_ENDPOINT_URL"]), locks=locks
    )


class TestCachedS3StoreContract(StoreContract):
    """The store as ``serve --store s3://`` builds it: S3 behind the local disk cache."""

    def make_store(self, tmp_path: Path) -> Store:
        remote = _s3(tmp_path)
        return CachedStore(remote, remote.root / "cache", 1 << 30)


def test_layout_is_the_go_download_cache(tmp_path: Path) -> None:
    store = _s3(tmp_path)
    mv = ModuleVersion("github.com/Azure/x", "v1.0.0-RC1")
    for kind in Kind:
        store.put(mv, kind, kind.value.encode())
    store.put_list("github.com/Azure/x", b"v1.0.0-RC1\n")
    store.put_meta("latest/github.com/!azure/x", b"{}")
    listed = _client(os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(Bucket=store.bucket)
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert keys == [
        "mirror/_modgate/meta/latest/github.com/!azure/x/@meta",
        "mirror/github.com/!azure/x/@v/list",
        "mirror/github.com/!azure/x/@v/v1.0.0-!r!c1.info",
        "mirror/github.com/!azure/x/@v/v1.0.0-!r!c1.mod",
        "mirror/github.com/!azure/x/@v/v1.0.0-!r!c1.zip",
        "mirror/github.com/!azure/x/@v/v1.0.0-!r!c1.ziphash",
    ]
    assert store.modules().__next__() == "github.com/Azure/x"


def test_cache_serves_local_files_and_stays_bounded(tmp_path: Path) -> None:
    remote = _s3(tmp_path)
    cache = CachedStore(remote, tmp_path / "cache", max_bytes=3000, grace=0)
    versions = [ModuleVersion("example.com/mod", f"v1.0.{i}") for i in range(5)]
    for i, mv in enumerate(versions):
        remote.put(mv, Kind.ZIP, bytes([i]) * 1000)
    for i, mv in enumerate(versions):
        path = cache.local_path(mv, Kind.ZIP)
        assert path is not None and path.is_relative_to(tmp_path / "cache")
        assert path.read_bytes() == bytes([i]) * 1000
    assert cache.cached_bytes() <= 3000, f"cache holds {cache.cached_bytes()} bytes, bound 3000"
    on_disk = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.zip"))
    assert on_disk == cache.cached_bytes(), "files on disk and the cache's count differ"
    assert cache.local_path(versions[-1], Kind.ZIP) is not None
    assert cache.hits == 1, f"the most recent artifact was not a hit ({cache.hits} hits)"
    # an evicted artifact comes back from the object store
    assert cache.get(versions[0], Kind.ZIP) == bytes([0]) * 1000
    again = CachedStore(remote, tmp_path / "cache", max_bytes=3000, grace=0)
    assert again.cached_bytes() == cache.cached_bytes(), "a restart lost the cache's files"


def test_conditional_create_never_overwrites(tmp_path: Path) -> None:
    first, second = _s3(tmp_path), _s3(tmp_path)
    first.put(MV, Kind.ZIP, b"first")
    with second.temp_file() as tmp:
        tmp.write_bytes(b"second")
        second.put_file(MV, Kind.ZIP, tmp)
    assert first.get(MV, Kind.ZIP) == b"first"


def test_errors_name_the_object_and_hide_credentials(tmp_path: Path) -> None:
    s3 = _client(os.environ["AWS_ENDPOINT_URL"])
    store = S3Store("no-such-bucket-here", "", tmp_path / "local", client=s3, locks=ProcessLocks())
    with pytest.raises(StoreError) as caught:
        store.put(MV, Kind.MOD, b"x")
    message = str(caught.value)
    assert "s3://no-such-bucket-here/example.com/mod/@v/v1.0.0.mod" in message, message
    assert "NoSuchBucket" in message, message
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in message


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("s3://b", ("b", "")),
        ("s3://b/p/q/", ("b", "p/q")),
        ("s3://my.bucket/x", ("my.bucket", "x")),
    ],
)
def test_parse_url(url: str, want: tuple[str, str]) -> None:
    assert parse_url(url) == want


@pytest.mark.parametrize(
    "url", ["s3://", "s3:///x", "s3://b/../x", "s3://b/a//c", "http://b", "s3://b c"]
)
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_redis_url_password_is_redacted() -> None:
    assert redacted("redis://user:s3cret@h:6379/0") == "redis://user:***@h:6379/0"
    assert "s3cret" not in redacted("rediss://:s3cret@h/0")


def test_a_log_write_after_the_lease_ended_is_fenced_off(tmp_path: Path) -> None:
    bucket = _bucket(tmp_path)
    s3 = _client(os.environ["AWS_ENDPOINT_URL"])
    paused = RedisLocks(os.environ[REDIS_VAR], f"fence:{bucket}", lease_seconds=0.5)
    store = S3Store(bucket, "", tmp_path / "a", client=s3, locks=paused)
    successor = RedisLocks(os.environ[REDIS_VAR], f"fence:{bucket}", lease_seconds=5)
    other = S3Store(bucket, "", tmp_path / "b", client=s3, locks=successor)
    with store.lock("sumdb/log"):
        store.put_meta("sumdb/log/tree", b"tree 1")
        paused.close()  # this replica stops (a long GC pause, a frozen VM): no more renewals
        with other.lock("sumdb/log"):  # waits for the lease to end, then appends
            other.put_meta("sumdb/log/tree", b"tree 2")
        with pytest.raises(StoreError) as caught:
            store.put_meta("sumdb/log/tree", b"tree 1 again")  # the late writer
    assert "fencing token" in str(caught.value), caught.value
    found = other.get_meta("sumdb/log/tree")
    assert found is not None and found.data == b"tree 2", "a late writer clobbered the log"
    store.put_meta("readyz", b"x")  # writes outside the log are not fenced


def test_an_object_store_that_does_not_answer_fails_the_next_calls_at_once(
    tmp_path: Path,
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1})
        s3 = boto3.session.Session().client("s3", endpoint_url=url, config=config)
        store = S3Store("bucket", "", tmp_path / "local", client=s3, locks=ProcessLocks())
        started = time.monotonic()
        with pytest.raises(StoreError):
            store.size(MV, Kind.ZIP)
        first = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.get(MV, Kind.INFO)
        second = time.monotonic() - started
    assert first >= 0.4, f"the first call gave up after {first:.2f} s, before its timeout"
    assert second < 0.1, f"the next call waited {second:.2f} s on an object store that is down"
    assert "did not answer" in str(caught.value), caught.value


def test_a_file_just_handed_out_is_not_evicted_before_twice_the_bound(tmp_path: Path) -> None:
    remote = _s3(tmp_path)
    cache = CachedStore(remote, tmp_path / "cache", max_bytes=2000, grace=60)
    versions = [ModuleVersion("example.com/mod", f"v1.0.{i}") for i in range(6)]
    for mv in versions:
        remote.put(mv, Kind.ZIP, b"z" * 1000)
    paths = [cache.local_path(mv, Kind.ZIP) for mv in versions[:4]]
    assert all(p is not None and p.exists() for p in paths), "a path handed out was removed"
    assert cache.cached_bytes() == 4000, f"{cache.cached_bytes()} bytes cached, want 4000"
    for mv in versions[4:]:
        assert cache.local_path(mv, Kind.ZIP) is not None
    assert cache.cached_bytes() <= 4000, f"{cache.cached_bytes()} bytes: over twice the bound"
