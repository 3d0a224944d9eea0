"""escape: the '!' case-encoding of module paths and versions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.protocol.escape import escape_path, escape_version, unescape_path, unescape_version
from modgate.protocol.module import (
    InvalidPathError,
    InvalidVersionError,
    check_path,
    file_elem_problem,
)

PATHS = [
    (
        "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
        "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
    ),
    ("github.com/GoogleCloudPlatform/omega", "github.com/!google!cloud!platform/omega"),
    ("github.com/Azure/azure-sdk-for-go", "github.com/!azure/azure-sdk-for-go"),
    ("github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus"),
    ("example.com/ABC/v2", "example.com/!a!b!c/v2"),
]


@pytest.mark.parametrize(("path", "escaped"), PATHS)
def test_escape_path(path: str, escaped: str) -> None:
    assert escape_path(path) == escaped
    assert unescape_path(escaped) == path


@pytest.mark.parametrize(
    "bad", ["x", "", "Example.com/x", "example.com/x/v1", "example.com/a!b", "example.com/é"]
)
def test_escape_path_rejects_invalid_paths(bad: str) -> None:
    with pytest.raises(InvalidPathError):
        escape_path(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "github.com/GoogleCloudPlatform/omega",  # bare upper case
        "github.com/!google!cloud!platform!/omega",  # '!' before '/'
        "github.com/!0google/omega",  # '!' before a digit
        "github.com/!_google/omega",
        "github.com/!!google/omega",
        "github.com/google!",  # trailing '!'
        "github.com/!Google",  # '!' before upper case
        "github.com/göögle",
        "",
        "x",  # decodes, but is not a module path
        "!github.com/x",  # decodes to an upper-case first element
        "github.com/x/../y",
        "github.com/x/v1",
    ],
)
def test_unescape_path_rejects(bad: str) -> None:
    with pytest.raises(InvalidPathError) as info:
        unescape_path(bad)
    assert "invalid escaped module path" in str(info.value)
    assert info.value.status == 400


VERSIONS = [
    ("v1.2.3", "v1.2.3"),
    ("v1.0.0-RC1", "v1.0.0-!r!c1"),
    ("v1.0.0-RC1+incompatible", "v1.0.0-!r!c1+incompatible"),
    ("master", "master"),
    ("Feature-X", "!feature-!x"),
    ("a b", "a b"),
    ("1234567", "1234567"),
]


@pytest.mark.parametrize(("version", "escaped"), VERSIONS)
def test_escape_version(version: str, escaped: str) -> None:
    assert escape_version(version) == escaped
    assert unescape_version(escaped) == version


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "a/b", "a\\b", "a:b", "a!b", "con", "Con.txt", "a*", "a?", "x\x00", "é"]
)
def test_escape_version_rejects(bad: str) -> None:
    with pytest.raises(InvalidVersionError, match="disallowed version string"):
        escape_version(bad)


@pytest.mark.parametrize(
    "bad",
    ["", ".", "..", "a/b", "V1.0.0", "v1.0.0-!", "v1.0.0-!1", "v1.0.0-!!r", "nul", "é", "a\x00"],
)
def test_unescape_version_rejects(bad: str) -> None:
    with pytest.raises(InvalidVersionError) as info:
        unescape_version(bad)
    assert info.value.status == 400


_lower_elem = st.from_regex(r"[a-z0-9]([a-z0-9._~-]{0,10}[a-z0-9_~-])?", fullmatch=True)
_any_elem = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._~-]{0,10}[A-Za-z0-9_~-])?", fullmatch=True)


def _check_ok(path: str) -> bool:
    try:
        check_path(path)
    except InvalidPathError:
        return False
    return True


_paths = st.builds(
    lambda first, tld, rest: "/".join([f"{first}.{tld}", *rest]),
    _lower_elem,
    st.sampled_from(["com", "org", "io"]),
    st.lists(_any_elem, max_size=4),
).filter(_check_ok)


@given(_paths)
def test_path_round_trip(path: str) -> None:
    escaped = escape_path(path)
    assert not any(c.isupper() for c in escaped), escaped
    assert unescape_path(escaped) == path, escaped


_versions = st.from_regex(
    r"v[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-[A-Za-z0-9.]{1,8})?(\+[A-Za-z0-9]{1,8})?", fullmatch=True
)


@given(st.one_of(_versions, st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,20}", fullmatch=True)))
def test_version_round_trip(version: str) -> None:
    if file_elem_problem(version) is not None:  # e.g. a Windows reserved name such as "CON"
        with pytest.raises(InvalidVersionError):
            escape_version(version)
        return
    escaped = escape_version(version)
    assert not any(c.isupper() for c in escaped), escaped
    assert unescape_version(escaped) == version, escaped


@given(st.text(max_size=20))
def test_unescape_accepts_only_the_one_escaped_form(text: str) -> None:
    try:
        version = unescape_version(text)
    except InvalidVersionError:
        # refused: then no version escapes to it (upper case, '!' not before a-z, ...)
        assert (
            text != text.lower()
            or "!" in text
            or not text.isascii()
            or file_elem_problem(text) is not None
        ), text
        return
    assert escape_version(version) == text, f"{text!r} decoded to {version!r}"
