"""``--redis`` URLs: the accepted forms, Sentinel URLs parsed strictly, passwords hidden."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.config import ConfigError, describe, resolve
from modgate.store.redisurl import SentinelURL, check_url, parse_sentinel, redacted


@pytest.mark.parametrize(
    ("url", "want"),
    [
        (
            "redis+sentinel://s1.internal:26379,s2.internal:26380/mymaster",
            SentinelURL((("s1.internal", 26379), ("s2.internal", 26380)), "mymaster"),
        ),
        (
            "redis+sentinel://app:p%40ss@10.0.0.1/modgate-cache/2",
            SentinelURL((("10.0.0.1", 26379),), "modgate-cache", 2, "app", "p@ss"),
        ),
        (
            "redis+sentinel://:secret@[::1]:5000,127.0.0.1:5001/m",
            SentinelURL((("::1", 5000), ("127.0.0.1", 5001)), "m", 0, None, "secret"),
        ),
    ],
)
def test_sentinel_urls_are_parsed(url: str, want: SentinelURL) -> None:
    assert parse_sentinel(url) == want
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h:26379", "service name"),
        ("redis+sentinel://h:26379/", "service name"),
        ("redis+sentinel:///m", "HOST:PORT"),
        ("redis+sentinel://h:0/m", "1 to 65535"),
        ("redis+sentinel://h:99999/m", "1 to 65535"),
        ("redis+sentinel://h:port/m", "1 to 65535"),
        ("redis+sentinel://h1,,h2/m", "HOST:PORT"),
        ("redis+sentinel://h_1:26379/m", "HOST:PORT"),
        ("redis+sentinel://[::1/m", "[IPV6]:PORT"),
        ("redis+sentinel://[zz]:1/m", "[IPV6]:PORT"),
        ("redis+sentinel://h/m/x", "database number"),
        ("redis+sentinel://h/m/1/2", "database number"),
        ("redis+sentinel://h/m/99999999", "database number"),
        ("redis+sentinel://h/m?password=x", "no query"),
        ("redis+sentinel://h/m a", "use redis://"),
        ("redis+sentinel://h/bad*name", "service name"),
        ("redis+sentinel://" + ",".join(["h:1"] * 17) + "/m", "at most 16"),
        ("http://redis:6379", "use redis://"),
        ("redis://", "use redis://"),
        ("redis://h:port", "Port"),
    ],
)
def test_bad_urls_are_refused_saying_what_is_accepted(url: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_url(url)
    message = str(caught.value)
    assert says in message and "\n" not in message, f"{url!r}: {message!r}"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://app:hunter2-secret@h:26379", "service name"),
        ("redis://app:hunter2-secret@h:port", "Port"),
    ],
)
def test_a_bad_url_stops_the_start_naming_the_option_not_the_password(
    tmp_path: Path, url: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({"redis": url}, {"HOME": str(tmp_path)}, None)
    message = str(caught.value)
    assert "--redis" in message and says in message, message
    assert "hunter2-secret" not in message, f"the password is in the error: {message}"


def test_a_sentinel_password_is_hidden_in_logs_and_the_start_up_line(tmp_path: Path) -> None:
    url = "redis+sentinel://app:hunter2-secret@s1:26379,s2:26379/mymaster/1"
    assert redacted(url) == "redis+sentinel://app:***@s1:26379,s2:26379/mymaster/1"
    assert redacted("redis+sentinel://hunter2-secret@s1/m") == "redis+sentinel://***@s1/m"
    assert redacted("redis+sentinel://s1/m") == "redis+sentinel://s1/m"
    settings = resolve({"redis": url}, {"HOME": str(tmp_path)}, None)
    assert "hunter2-secret" not in str(describe(settings))


_host = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True)
_port = st.integers(1, 65535)
_service = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_secret = st.text(st.characters(categories=("L", "N", "P", "S", "Z")), max_size=20)


@given(
    st.lists(st.tuples(_host, _port), min_size=1, max_size=5),
    _service,
    st.none() | st.integers(0, 65535),
    st.none() | st.tuples(st.from_regex(r"[a-z]{0,8}", fullmatch=True), _secret),
)
def test_sentinel_urls_round_trip(
    hosts: list[tuple[str, int]],
    service: str,
    db: int | None,
    credentials: tuple[str, str] | None,
) -> None:
    userinfo = ""
    if credentials is not None:
        userinfo = f"{credentials[0]}:{quote(credentials[1], safe='')}@"
    url = f"redis+sentinel://{userinfo}{','.join(f'{h}:{p}' for h, p in hosts)}/{service}"
    url += "" if db is None else f"/{db}"
    got = parse_sentinel(url)
    assert got.sentinels == tuple(hosts) and got.service == service and got.db == (db or 0)
    if credentials is not None:
        assert (got.username, got.password) == (credentials[0] or None, credentials[1])
        shown = f"{credentials[0]}:***" if credentials[0] else "***"
        assert redacted(url) == url.replace(userinfo, shown + "@", 1)


@given(st.text(max_size=80))
def test_any_text_is_either_accepted_or_refused_with_a_value_error(text: str) -> None:
    for url in (text, "redis+sentinel://" + text):
        try:
            check_url(url)
        except ValueError as exc:
            assert "\n" not in str(exc)
