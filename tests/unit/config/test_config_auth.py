"""The authentication settings: --tokens, --anonymous, --audit-log and the [auth] section."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.config import ConfigError, describe, resolve
from modgate.protocol.grants import Anonymous


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modgate.toml"
    path.write_text(text)
    return path


AUTH = """
[serve]
private = ["corp.example.com"]

[auth]
contact = "#go-platform"
failed-auth-limit = 5

[[auth.issuers]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audience = ["https://modgate.corp.example.com", "modgate"]

[[auth.grants]]
name = "app-ci"
issuer = "github"
claims = { repository = "corp/app" }
read = "corp.example.com/app"
"""


def test_without_tokens_or_an_auth_section_authentication_is_off(tmp_path: Path) -> None:
    settings = resolve({}, {}, write(tmp_path, '[serve]\nprivate = "corp.example.com"\n'))
    assert settings.auth is None
    assert describe(settings)["auth"] == "off"


def test_an_auth_section_turns_it_on(tmp_path: Path) -> None:
    settings = resolve({}, {}, write(tmp_path, AUTH))
    auth = settings.auth
    assert auth is not None and auth.tokens is None
    assert auth.anonymous is Anonymous.NONE and auth.contact == "#go-platform"
    assert auth.failed_auth_limit == 5
    (issuer,) = auth.issuers
    assert issuer.audiences == ("https://modgate.corp.example.com", "modgate")
    assert [g.name for g in auth.grants] == ["app-ci"]
    assert describe(settings)["auth"] == "tokens=none issuers=github grants=1 anonymous=none"


def test_an_auth_section_without_a_serve_table_is_read_too(tmp_path: Path) -> None:
    text = 'private = "corp.example.com"\n\n[auth]\nanonymous = "public"\n'
    settings = resolve({}, {}, write(tmp_path, text))
    assert settings.auth is not None and settings.auth.anonymous is Anonymous.PUBLIC


def test_flags_and_variables_win_over_the_auth_section(tmp_path: Path) -> None:
    path = write(tmp_path, AUTH)
    settings = resolve({"anonymous": "public"}, {"MODGATE_TOKENS": str(tmp_path / "t")}, path)
    assert settings.auth is not None
    assert settings.auth.anonymous is Anonymous.PUBLIC
    assert settings.auth.tokens == tmp_path / "t"


def test_tokens_alone_turn_it_on(tmp_path: Path) -> None:
    settings = resolve({"tokens": str(tmp_path / "tokens")}, {}, None)
    assert settings.auth is not None and settings.auth.grants == ()


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("", {"anonymous": "public"}, "--anonymous public needs authentication"),
        ("[auth]\nanonymous = \"some\"\n", {}, "use public or none"),
        ("[auth]\nwho = 1\n", {}, "unknown key 'who'"),
        ('[[auth.issuers]]\nname = "a"\nissuer = "http://idp.example.com"\naudience = "m"\n',
         {}, "must be an https:// URL"),
        ('[[auth.issuers]]\nname = "a"\nissuer = "https://idp.example.com"\n', {},
         "'issuer' and 'audience' are required"),
        ('[[auth.issuers]]\nname = "a"\nissuer = "https://idp.example.com"\naudience = "m"\n'
         'algorithms = ["HS256"]\n', {}, "algorithm 'HS256' is not accepted"),
        ('[[auth.issuers]]\nname = "a"\nissuer = "https://idp.example.com"\naudience = "m"\n'
         'clock-skew = 9999\n', {}, "clock-skew"),
        ('[[auth.grants]]\nname = "g"\nissuer = "nowhere"\nread = "corp.example.com"\n', {},
         "names issuer 'nowhere', which is not configured"),
        ('[auth]\ncontact = ""\n', {}, "use one printable line"),
    ],
)  # fmt: skip
def test_bad_auth_settings_stop_modgate_with_the_value_echoed(
    tmp_path: Path, text: str, flags: dict[str, str | None], message: str
) -> None:
    path = write(tmp_path, text) if text else None
    with pytest.raises(ConfigError, match=message):
        resolve(flags, {}, path)


def test_a_loopback_http_issuer_is_allowed_for_tests_and_sidecars(tmp_path: Path) -> None:
    text = '[[auth.issuers]]\nname = "a"\nissuer = "http://127.0.0.1:9999"\naudience = "m"\n'
    settings = resolve({}, {}, write(tmp_path, text))
    assert settings.auth is not None and settings.auth.issuers[0].issuer == "http://127.0.0.1:9999"
