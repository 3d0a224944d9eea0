"""Settings of the object store and of Redis coordination: --store s3://, --store-cache, --redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.config import ConfigError, describe, resolve


def test_s3_store_takes_a_local_cache_directory(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    s = resolve({"store": "s3://corp-modules/mirror/"}, env, None)
    assert s.store_url == "s3://corp-modules/mirror"
    assert s.store == tmp_path / "xdg" / "modgate" / "s3" / "corp-modules" / "mirror"
    assert s.store_cache_bytes == 1 << 30
    s = resolve({"store": "s3://b", "store_cache": str(tmp_path / "c")}, env, None)
    assert (s.store_url, s.store) == ("s3://b", tmp_path / "c")
    plain = resolve({"store": str(tmp_path / "fs")}, env, None)
    assert (plain.store_url, plain.store) == ("", tmp_path / "fs")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"store": "s3://"}, "--store"),
        ({"store": "s3://b/../x"}, "--store"),
        ({"store": "s3://b c"}, "--store"),
        ({"store": "/srv/store", "store_cache": "/tmp/c"}, "--store-cache"),
        ({"store": "s3://b", "store_cache_size": "lots"}, "--store-cache-size"),
        ({"redis": "http://redis:6379"}, "--redis"),
        ({"redis": "redis://"}, "--redis"),
        ({"redis": "redis://h", "redis_lease": "0.1"}, "--redis-lease"),
    ],
)
def test_bad_values_are_refused_naming_the_option(
    tmp_path: Path, flags: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(flags, {"HOME": str(tmp_path)}, None)
    assert named in str(caught.value), f"the error does not name {named}: {caught.value}"


def test_the_redis_password_never_reaches_the_start_up_line(tmp_path: Path) -> None:
    s = resolve(
        {"redis": "rediss://app:hunter2-secret@redis.internal:6380/0"},
        {"HOME": str(tmp_path)},
        None,
    )
    assert s.redis.startswith("rediss://app:hunter2-secret@")
    shown = describe(s)
    assert "hunter2-secret" not in str(shown), shown
    assert "redis.internal:6380" in str(shown["redis"])
