"""What an operator meets first: the store default, error messages, units, the start-up line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modgate.config import ConfigError, describe, resolve


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modgate.toml"
    path.write_text(text)
    return path


def test_the_default_store_follows_the_environment_given(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert resolve({}, {"HOME": str(home)}, None).store == (
        home / ".local" / "share" / "modgate" / "store"
    )
    xdg = tmp_path / "xdg"
    settings = resolve({}, {"HOME": str(home), "XDG_DATA_HOME": str(xdg)}, None)
    assert settings.store == xdg / "modgate" / "store"


def test_a_toml_type_error_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[serve]\nlist-ttl = [1, 2]\n")
    with pytest.raises(ConfigError) as bad:
        resolve({}, {}, path)
    assert str(bad.value) == f"invalid {path}: list-ttl value '1,2': use a number of seconds"


def test_sumdb_off_means_no_database(tmp_path: Path) -> None:
    settings = resolve({"sumdb": "off"}, {}, None)
    assert settings.sumdb == ()
    assert settings.verify_sumdb is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64MiB", 64 << 20), ("64MB", 64_000_000), ("1GiB", 1 << 30), ("1000", 1000)],
)
def test_hot_cache_units_have_their_exact_meaning(text: str, expected: int) -> None:
    assert resolve({"hot_cache": text}, {}, None).hot_cache_bytes == expected


def test_a_bad_size_says_what_the_units_mean() -> None:
    with pytest.raises(ConfigError) as bad:
        resolve({"hot_cache": "64 megs"}, {}, None)
    assert "MiB" in str(bad.value) and "powers of 1024" in str(bad.value)


def test_the_start_up_line_keeps_numbers_as_numbers(tmp_path: Path) -> None:
    fields = describe(resolve({"store": str(tmp_path)}, {}, None))
    encoded = json.loads(json.dumps(fields))
    assert encoded["port"] == 8080
    assert encoded["list_ttl"] == 60.0
    assert encoded["workers"] == 1
    assert encoded["store"] == str(tmp_path)
    assert encoded["ca_bundle"] is None
