"""Settings precedence (flags > MODGATE_* > TOML > defaults) and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.config import DEFAULT_UPSTREAM, ConfigError, resolve
from modgate.protocol.goproxy import EntryKind


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modgate.toml"
    path.write_text(text)
    return path


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = resolve({}, {"HOME": str(tmp_path)}, None)
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.upstream_text == DEFAULT_UPSTREAM
    assert [e.kind for e in s.upstream.entries] == [EntryKind.URL, EntryKind.DIRECT]
    assert not s.private.patterns
    assert s.hot_cache_bytes == 64 << 20


def test_flags_win_over_environment_which_wins_over_toml(tmp_path: Path) -> None:
    toml = write_toml(
        tmp_path,
        '[serve]\nlisten = "0.0.0.0:9000"\nupstream = "https://toml.example"\n'
        'private = ["corp.example.com", "*.corp.example.com"]\nlist-ttl = 5\n',
    )
    env = {"MODGATE_UPSTREAM": "https://env.example", "MODGATE_LIST_TTL": "7"}
    s = resolve({"list_ttl": "9"}, env, toml)
    assert (s.host, s.port) == ("0.0.0.0", 9000), "TOML value lost"
    assert s.upstream.entries[0].url == "https://env.example", "environment must beat TOML"
    assert s.list_ttl == 9.0, "flag must beat environment"
    assert s.private.matches("corp.example.com/x") and s.private.matches("a.corp.example.com/y")


@pytest.mark.parametrize(
    ("flags", "env", "echo"),
    [
        ({"upstream": "ftp://mirror"}, {}, "'ftp://mirror'"),
        ({"listen": "nonsense"}, {}, "'nonsense'"),
        ({"listen": "127.0.0.1:70000"}, {}, "'127.0.0.1:70000'"),
        ({}, {"MODGATE_LIST_TTL": "-1"}, "MODGATE_LIST_TTL value '-1'"),
        ({"private": "https://corp.example.com"}, {}, "'https://corp.example.com'"),
        ({"hot_cache": "lots"}, {}, "'lots'"),
        ({"workers": "0"}, {}, "'0'"),
        ({"log_level": "loud"}, {}, "'loud'"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, {}, "'/nonexistent/ca.pem'"),
    ],
)
def test_bad_values_fail_with_the_value_echoed(
    tmp_path: Path, flags: dict[str, str], env: dict[str, str], echo: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(flags, env, None)
    assert echo in str(info.value), f"message does not echo {echo}: {info.value}"


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'upstrem = "https://x.example"\n')
    with pytest.raises(ConfigError, match="unknown setting 'upstrem'"):
        resolve({}, {}, toml)


def test_invalid_toml_is_an_error(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "listen = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve({}, {}, toml)


@pytest.mark.parametrize(
    ("value", "want"), [("1024", 1024), ("64MiB", 64 << 20), ("2 GiB", 2 << 30), ("10kb", 10_000)]
)
def test_sizes(value: str, want: int) -> None:
    assert resolve({"hot_cache": value}, {}, None).hot_cache_bytes == want


def test_ipv6_listen() -> None:
    s = resolve({"listen": "[::1]:0"}, {}, None)
    assert (s.host, s.port) == ("::1", 0)
