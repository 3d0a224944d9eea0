"""--s3-redirect and --s3-redirect-expiry: flags, variables, TOML, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.config import DEFAULT_S3_REDIRECT_EXPIRY, ConfigError, resolve
from modgate.server.responses import redirect_reply


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), **extra}


def test_off_unless_asked(tmp_path: Path) -> None:
    assert resolve({"store": "s3://b"}, _env(tmp_path), None).s3_redirect_expiry == 0


@pytest.mark.parametrize("word", ["true", "on", "yes", "1", "TRUE"])
def test_the_variable_turns_it_on_with_the_default_expiry(tmp_path: Path, word: str) -> None:
    env = _env(tmp_path, MODGATE_S3_REDIRECT=word)
    settings = resolve({"store": "s3://b"}, env, None)
    assert settings.s3_redirect_expiry == DEFAULT_S3_REDIRECT_EXPIRY == 300


def test_toml_boolean_and_expiry(tmp_path: Path) -> None:
    config = tmp_path / "modgate.toml"
    config.write_text('[serve]\nstore = "s3://b/p"\ns3-redirect = true\ns3-redirect-expiry = 90\n')
    assert resolve({}, _env(tmp_path), config).s3_redirect_expiry == 90
    config.write_text('[serve]\nstore = "s3://b/p"\ns3-redirect = false\n')
    assert resolve({}, _env(tmp_path), config).s3_redirect_expiry == 0


@pytest.mark.parametrize(
    ("flags", "named", "why"),
    [
        ({"store": "/srv/store", "s3_redirect": "true"}, "--s3-redirect", "object store"),
        ({"store": "s3://b", "s3_redirect": "maybe"}, "--s3-redirect", "true or false"),
        ({"store": "s3://b", "s3_redirect": "true", "s3_redirect_expiry": "0"},
         "--s3-redirect-expiry", "1 to 604800"),
        ({"store": "s3://b", "s3_redirect": "true", "s3_redirect_expiry": "604801"},
         "--s3-redirect-expiry", "1 to 604800"),
        ({"store": "s3://b", "s3_redirect": "true", "s3_redirect_expiry": "1.5"},
         "--s3-redirect-expiry", "whole number"),
        ({"store": "s3://b", "s3_redirect_expiry": "60"}, "--s3-redirect-expiry", "needs"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_in_one_line(
    tmp_path: Path, flags: dict[str, str], named: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(flags, _env(tmp_path), None)
    message = str(caught.value)
    assert f"invalid {named} value" in message and why in message, message
    assert "\n" not in message


def test_a_redirect_never_carries_a_control_character() -> None:
    reply = redirect_reply("http://s3.example/b/k.zip?X-Amz-Signature=ab", "zip", fetched=False)
    assert reply.status == 302 and reply.body == b""
    assert b"Location: http://s3.example/b/k.zip?X-Amz-Signature=ab\r\n" in reply.head
    assert b"Cache-Control: no-store\r\n" in reply.head
    for bad in ("http://x/\r\nSet-Cookie: a=b", "http://x/\x00", "http://x/é"):
        with pytest.raises(ValueError):
            redirect_reply(bad, "zip", fetched=False)
