"""go.mod reading: module, go, toolchain, retractions, errors, and the synthesized go.mod."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.formats.gomod import (
    GoMod,
    GoModError,
    VersionInterval,
    must_quote,
    parse_gomod,
    synthesize_gomod,
)
from modgate.formats.gomod_syntax import go_unquote
from modgate.protocol.module import go_quote

FULL = b"""// Comment before the module line.
module "example.com/m" // the path

go 1.22.x
toolchain go1.23.1

require (
\texample.com/a v1.2.3
\texample.com/b/v2 v2.0.0 // indirect
)
replace example.com/a => ../a
exclude example.com/a v1.0.0
godebug default=go1.21
frobnicate whatever ( args )

// Published by mistake.
retract v1.0.0 // see issue 1
retract [v1.1.0, v1.2.0]
// Block comment.
retract (
\t// Broken build.
\tv1.3.0

\tv1.4.0
\t"v1.5.0"
)
"""


def test_parse_full_file() -> None:
    got = parse_gomod(FULL)
    want = GoMod(
        module="example.com/m",
        go="1.22",
        toolchain="go1.23.1",
        retract=(
            VersionInterval("v1.0.0", "v1.0.0", "Published by mistake.\nsee issue 1"),
            VersionInterval("v1.1.0", "v1.2.0", ""),
            VersionInterval("v1.3.0", "v1.3.0", "Broken build."),
            # A blank line before a line counts as its comment: no fallback.
            VersionInterval("v1.4.0", "v1.4.0", ""),
            VersionInterval("v1.5.0", "v1.5.0", "Block comment."),
        ),
    )
    assert got == want, f"parsed\n{got}\nexpected\n{want}"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (b"", GoMod()),
        (b"module example.com/m", GoMod(module="example.com/m")),
        (b"module example.com/m\r\ngo 1.21\r\n", GoMod(module="example.com/m", go="1.21")),
        (b"module `example.com/m`x\n", None),
        (b"module (\n\texample.com/m\n)\n", GoMod(module="example.com/m")),
        (b'module "ex\\x61mple.com/m"\n', GoMod(module="example.com/m")),
        (b"go 1.21rc1\n", GoMod(go="1.21rc1")),
        (b"go 1.21.3\n", GoMod(go="1.21.3")),
        (b"go v1.21.x\n", GoMod(go="1.21")),
        (b"toolchain anything at all\n", GoMod()),  # ignored, as ParseLax does
        (b"toolchain go1.22\ntoolchain go1.23\n", GoMod(toolchain="go1.22")),
        (b"go (\n\t1.21\n)\n", GoMod()),  # unknown block kinds are skipped
        (b"retract\n", GoMod()),  # malformed retractions are dropped
        (b"retract [v1.0.0 v1.1.0]\n", GoMod()),
        (b"retract ( v1.0.0 )\n", GoMod()),
        (b"retract v1.0.0 extra\n", GoMod(retract=(VersionInterval("v1.0.0", "v1.0.0"),))),
        (b"retract 'v1'\n", GoMod()),
        (b"require example.com/a v1.2\n", GoMod()),  # shorthand versions are canonicalized
        (b"require example.com/a v2.0.0+incompatible\n", GoMod()),
        (b"module a//b\n", GoMod(module="a")),  # a comment starts inside the token
    ],
)
def test_parse_table(text: bytes, want: GoMod | None) -> None:
    if want is None:
        with pytest.raises(GoModError):
            parse_gomod(text)
        return
    got = parse_gomod(text)
    assert got == want, f"parse_gomod({text!r}) = {got}, expected {want}"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (b"module a\nmodule b\n", 2, "repeated module statement"),
        (b"go 1.21\ngo 1.22\n", 2, "repeated go statement"),
        (b"module\n", 1, "usage: module module/path"),
        (b"module a b\n", 1, "usage: module module/path"),
        (b"go\n", 1, "go directive expects exactly one argument"),
        (b"\ngo 1.x\n", 2, "invalid go version '1.x': must match format 1.23.0"),
        (b"module a'b\n", 1, "invalid quoted string: unquoted string cannot contain quote"),
        (b'module "a\\q"\n', 1, "invalid quoted string: invalid syntax"),
        (b"module a\n/* x */\n", 2, "mod files must use // comments (not /* */ comments)"),
        (b'module "abc\n', 1, "unexpected newline in string"),
        (b'module "abc', 1, "unexpected EOF in string"),
        (b"module a\x01\n", 1, "unexpected input character"),
        (b"require (\n\tx v1.0.0\n", 3, "syntax error (unterminated block started at line 1)"),
        (b"require (\n) x\n", 2, "syntax error (expected newline after closing paren)"),
        (b"require x\n", 1, "usage: require module/path v1.2.3"),
        (b"require x 1.0.0\n", 1, "must be of the form v1.2.3"),
        (b"require x/v2 v1.0.0\n", 1, "should be v2, not v1"),
        (b"require x/v1 v1.0.0\n", 1, "invalid module path"),
        (b"ignore a b\n", 1, "ignore directive expects exactly one argument"),
    ],
)
def test_parse_errors(text: bytes, line: int, reason: str) -> None:
    with pytest.raises(GoModError) as caught:
        parse_gomod(text)
    err = caught.value
    assert (err.line, reason in err.reason) == (line, True), (
        f"parse_gomod({text!r}) failed at line {err.line} with {err.reason!r}; "
        f"expected line {line} with {reason!r}"
    )
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("interval", "version", "inside"),
    [
        (VersionInterval("v1.0.0", "v1.0.0"), "v1.0.0", True),
        (VersionInterval("v1.0.0", "v1.0.0"), "v1.0.1", False),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.1.0", True),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.2.0", True),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.1.5-pre", True),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.2.0-pre", True),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.2.1", False),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.0.9", False),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.1.0-pre", False),
        (VersionInterval("v1.1.0", "v1.2.0"), "v1.1.7+build", True),
    ],
)
def test_version_interval_contains(interval: VersionInterval, version: str, inside: bool) -> None:
    got = interval.contains(version)
    assert got == inside, f"[{interval.low}, {interval.high}] contains {version}: {got}"


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("example.com/m", b"module example.com/m\n"),
        ("gopkg.in/yaml.v2", b"module gopkg.in/yaml.v2\n"),
        ("a b", b'module "a b"\n'),
        ("a//b", b'module "a//b"\n'),
        ("a/*b", b'module "a/*b"\n'),
        ("(x)", b'module "(x)"\n'),
        ("(", b"module (\n"),
        ('a"b', b'module "a\\"b"\n'),
        ("", b'module ""\n'),
    ],
)
def test_synthesize_gomod(path: str, want: bytes) -> None:
    got = synthesize_gomod(path)
    assert got == want, f"synthesize_gomod({path!r}) = {got!r}, expected {want!r}"


@pytest.mark.parametrize("path", ["example.com/m", "a b", "a//b", "ü/x", '"', "\t"])
def test_synthesized_gomod_reads_back(path: str) -> None:
    got = parse_gomod(synthesize_gomod(path)).module
    assert got == path, f"{path!r} came back as {got!r} (quoted: {must_quote(path)})"


@given(st.text(st.characters(blacklist_categories=["Cs"])))
def test_unquote_inverts_go_quote(s: str) -> None:
    assert go_unquote(go_quote(s)) == s


@given(st.binary(max_size=200))
def test_parse_only_raises_gomod_error(data: bytes) -> None:
    with contextlib.suppress(GoModError):
        parse_gomod(data)


@given(
    st.lists(
        st.sampled_from(
            ["module m", "go 1.21", "retract v1.0.0", "// c", "", "retract (", ")", "\tv1.2.3"]
        )
    )
)
def test_parse_line_soup(lines: list[str]) -> None:
    with contextlib.suppress(GoModError):
        parse_gomod("\n".join(lines).encode())
