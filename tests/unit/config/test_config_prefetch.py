"""--prefetch-zips: on by default, off from a flag, the variable or TOML, a bad word refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.config import ConfigError, resolve


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), **extra}


def test_on_by_default(tmp_path: Path) -> None:
    assert resolve({}, _env(tmp_path), None).prefetch_zips is True


@pytest.mark.parametrize("word", ["off", "false", "no", "0", "OFF"])
def test_the_flag_and_the_variable_turn_it_off(tmp_path: Path, word: str) -> None:
    assert resolve({"prefetch_zips": word}, _env(tmp_path), None).prefetch_zips is False
    env = _env(tmp_path, MODGATE_PREFETCH_ZIPS=word)
    assert resolve({}, env, None).prefetch_zips is False


def test_toml_boolean(tmp_path: Path) -> None:
    config = tmp_path / "modgate.toml"
    config.write_text("[serve]\nprefetch-zips = false\n")
    assert resolve({}, _env(tmp_path), config).prefetch_zips is False
    config.write_text("[serve]\nprefetch-zips = true\n")
    assert resolve({}, _env(tmp_path), config).prefetch_zips is True


@pytest.mark.parametrize("word", ["maybe", ""])
def test_a_bad_word_is_refused_naming_the_option(tmp_path: Path, word: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({"prefetch_zips": word}, _env(tmp_path), None)
    assert "--prefetch-zips" in str(caught.value) and "on or off" in str(caught.value)
