"""Connection limits and the shutdown grace: defaults, precedence and refusal of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.config import ConfigError, resolve
from modgate.server.settings import DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_SHUTDOWN_GRACE


def test_defaults(tmp_path: Path) -> None:
    s = resolve({}, {"HOME": str(tmp_path)}, None)
    assert s.max_connections == 0, "auto: sized to the descriptor limit when the server starts"
    assert s.max_connections_per_client == DEFAULT_MAX_CONNECTIONS_PER_CLIENT == 256
    assert s.shutdown_grace == DEFAULT_SHUTDOWN_GRACE == 10


def test_flags_variables_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "modgate.toml"
    toml.write_text("[serve]\nmax-connections = 500\nshutdown-grace = 3\n")
    s = resolve(
        {"max_connections_per_client": "16"},
        {"MODGATE_MAX_CONNECTIONS": "auto"},
        toml,
    )
    assert (s.max_connections, s.max_connections_per_client, s.shutdown_grace) == (0, 16, 3.0)
    s = resolve({}, {}, toml)
    assert s.max_connections == 500


@pytest.mark.parametrize(
    ("flags", "echo"),
    [
        ({"max_connections": "0"}, "--max-connections value '0'"),
        ({"max_connections": "lots"}, "--max-connections value 'lots'"),
        ({"max_connections": "-5"}, "'-5'"),
        ({"max_connections_per_client": "auto"}, "--max-connections-per-client value 'auto'"),
        ({"max_connections_per_client": "0"}, "'0'"),
        ({"shutdown_grace": "soon"}, "--shutdown-grace value 'soon'"),
    ],
)
def test_bad_values_fail_with_the_value_echoed(flags: dict[str, str], echo: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(flags, {}, None)
    assert echo in str(info.value), f"message does not echo {echo}: {info.value}"
