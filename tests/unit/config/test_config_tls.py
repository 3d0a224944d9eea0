"""--tls-cert/--tls-key: from flags, MODGATE_TLS_* and TOML; both or neither; a private key."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.tlscerts import CertPair, TestCA
from modgate.config import ConfigError, resolve


@pytest.fixture
def pair(tmp_path: Path) -> CertPair:
    return TestCA(tmp_path / "ca").issue("server")


def test_no_tls_by_default(tmp_path: Path) -> None:
    s = resolve({}, {"HOME": str(tmp_path)}, None)
    assert s.tls_cert is None and s.tls_key is None


def test_the_pair_from_flags_variables_and_toml(pair: CertPair, tmp_path: Path) -> None:
    flags = resolve({"tls_cert": str(pair.cert), "tls_key": str(pair.key)}, {}, None)
    assert (flags.tls_cert, flags.tls_key) == (pair.cert, pair.key)
    env = {"MODGATE_TLS_CERT": str(pair.cert), "MODGATE_TLS_KEY": str(pair.key)}
    from_env = resolve({}, env, None)
    assert (from_env.tls_cert, from_env.tls_key) == (pair.cert, pair.key)
    toml = tmp_path / "modgate.toml"
    toml.write_text(f'[serve]\ntls-cert = "{pair.cert}"\ntls-key = "{pair.key}"\n')
    from_toml = resolve({}, {}, toml)
    assert (from_toml.tls_cert, from_toml.tls_key) == (pair.cert, pair.key)


def test_one_without_the_other_is_refused(pair: CertPair) -> None:
    with pytest.raises(ConfigError, match="--tls-key as well") as caught:
        resolve({"tls_cert": str(pair.cert)}, {}, None)
    assert f"--tls-cert value {str(pair.cert)!r}" in str(caught.value)
    with pytest.raises(ConfigError, match="--tls-cert as well") as caught:
        resolve({}, {"MODGATE_TLS_KEY": str(pair.key)}, None)
    assert f"MODGATE_TLS_KEY value {str(pair.key)!r}" in str(caught.value)


def test_missing_files_are_named(pair: CertPair, tmp_path: Path) -> None:
    missing = tmp_path / "missing.crt"
    with pytest.raises(ConfigError, match="no such file") as caught:
        resolve({"tls_cert": str(missing), "tls_key": str(pair.key)}, {}, None)
    assert str(missing) in str(caught.value)


def test_a_key_others_can_read_stops_modgate_with_the_fix(pair: CertPair) -> None:
    pair.key.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        resolve({"tls_cert": str(pair.cert), "tls_key": str(pair.key)}, {}, None)
    message = str(caught.value)
    assert f"--tls-key value {str(pair.key)!r}" in message, message
    assert "chmod 600" in message, message
