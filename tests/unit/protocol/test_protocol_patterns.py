"""patterns: path.Match globs and GOPRIVATE-style prefix patterns."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from modgate.protocol.patterns import (
    BadPatternError,
    PatternList,
    match_prefix_patterns,
    parse_patterns,
    path_match,
)

BAD = None  # the pattern is malformed

MATCH = [
    # (pattern, name, matched or BAD)
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[!a]", "!", True),  # Go has no '!' negation: this is the class {'!', 'a'}
    ("[!a]", "b", False),
    ("[^a]", "/", True),  # a class may match '/': only * and ? refuse it
    ("[]a]", "]", BAD),
    ("[-]", "-", BAD),
    ("[x-]", "x", BAD),
    ("[x-]", "-", BAD),
    ("[x-]", "z", BAD),
    ("[-x]", "x", BAD),
    ("[-x]", "-", BAD),
    ("[-x]", "a", BAD),
    ("\\", "a", BAD),
    ("[a-b-c]", "a", BAD),
    ("[", "a", BAD),
    ("[^", "a", BAD),
    ("[^bc", "a", BAD),
    ("a[", "a", BAD),
    ("a[", "ab", BAD),
    ("a[", "x", BAD),
    ("a/b[", "x", BAD),
    ("*x", "xxx", True),
    ("*??", "€", True),  # Go steps over bytes: '€' is three, and '*' may stop inside it
    ("??", "€", False),
    ("", "", True),
    ("", "a", False),
    ("*", "", True),
]


@pytest.mark.parametrize(("pattern", "name", "want"), MATCH)
def test_path_match(pattern: str, name: str, want: bool | None) -> None:
    if want is BAD:
        with pytest.raises(BadPatternError):
            path_match(pattern, name)
        with pytest.raises(BadPatternError):
            path_match(pattern, "")
        return
    assert path_match(pattern, name) == want, f"path_match({pattern!r}, {name!r})"


PREFIX = [
    ("*/quote", "rsc.io/quote", True),
    ("*/quo", "rsc.io/quote", False),
    ("*/quo??", "rsc.io/quote", True),
    ("*/quo*", "rsc.io/quote", True),
    ("*quo*", "rsc.io/quote", False),
    ("rsc.io", "rsc.io/quote", True),
    ("*.io", "rsc.io/quote", True),
    ("rsc.io/", "rsc.io/quote", True),  # one trailing '/' is dropped
    ("rsc.io//", "rsc.io/quote", False),
    ("rsc", "rsc.io/quote", False),
    ("rsc*", "rsc.io/quote", True),
    ("rsc.io", "rsc.io/quote/v3", True),
    ("*/quote", "rsc.io/quote/v3", True),
    ("*/quote/*", "rsc.io/quote/v3", True),
    ("*/v3", "rsc.io/quote/v3", False),
    ("*/*/v3", "rsc.io/quote/v3", True),
    ("*/*/*", "rsc.io/quote/v3", True),
    ("*/*/*", "rsc.io/quote", False),
    ("*/*/*,,", "rsc.io/quote", False),
    ("*/*/*,,*/quote", "rsc.io/quote", True),
    (",,*/quote", "rsc.io/quote", True),
    ("corp.example.com", "corp.example.com/x/y", True),
    ("corp.example.com", "corp.example.com.evil.io/x", False),
    ("*.corp.com", "a.corp.com/x", True),
    ("*.corp.com", "corp.com/x", False),
    ("[,a.io", "a.io/x", True),  # '[' alone is malformed and skipped, like the go command
    ("[,a.io", "b.io/x", False),
    ("[", "[", False),
    (" rsc.io", "rsc.io/quote", False),  # the go command does not trim spaces
    ("", "rsc.io/quote", False),
]


@pytest.mark.parametrize(("globs", "target", "want"), PREFIX)
def test_match_prefix_patterns(globs: str, target: str, want: bool) -> None:
    assert match_prefix_patterns(globs, target) == want, f"({globs!r}, {target!r})"


@pytest.mark.parametrize(
    ("value", "patterns"),
    [
        ("", ()),
        (" , ,", ()),
        ("corp.example.com", ("corp.example.com",)),
        (
            " corp.example.com/ , *.internal.io,,github.com/acme/* ",
            ("corp.example.com", "*.internal.io", "github.com/acme/*"),
        ),
        ("a.io,a.io", ("a.io", "a.io")),
    ],
)
def test_parse_patterns(value: str, patterns: tuple[str, ...]) -> None:
    assert parse_patterns(value) == PatternList(patterns)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://corp.example.com", "without a scheme, e.g. 'corp.example.com'"),
        ("a.io,git://corp.example.com/x", "'git://corp.example.com/x' is a URL"),
        ("corp.example.com/[", "'corp.example.com/\\[' is not a valid glob"),
        ("a\\", "not a valid glob"),
        ("[]a]", "not a valid glob"),
        ("corp.com//", "empty path element"),
        ("/corp.com", "empty path element"),
        ("a//b", "empty path element"),
    ],
)
def test_parse_patterns_rejects(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_patterns(value)


def test_pattern_list_matches_module_paths() -> None:
    plist = parse_patterns("corp.example.com, *.internal.io, github.com/acme/*")
    for path, want in [
        ("corp.example.com/x", True),
        ("corp.example.com", True),
        ("svc.internal.io/a/b", True),
        ("internal.io/a", False),
        ("github.com/acme/tool/v2", True),
        ("github.com/acme", False),
        ("github.com/other/tool", False),
    ]:
        assert plist.matches(path) == want, f"{plist} vs {path!r}"
    assert str(plist) == "corp.example.com,*.internal.io,github.com/acme/*"


_glob_chars = st.sampled_from(["a", "b", ".", "/", "*", "?", "[a-c]", "[^/]", "x"])
_path_chars = st.sampled_from(["a", "b", "c", ".", "/", "x", "y"])


def _parses(value: str) -> bool:
    try:
        parse_patterns(value)
    except ValueError:
        return False
    return True


@given(
    st.lists(st.lists(_glob_chars, min_size=1, max_size=5).map("".join), max_size=3),
    st.lists(_path_chars, min_size=1, max_size=10).map("".join),
)
def test_pattern_list_agrees_with_match_prefix_patterns(globs: list[str], target: str) -> None:
    value = ",".join(globs)
    assume(_parses(value))  # malformed globs are refused, which other tests check
    plist = parse_patterns(value)
    assert plist.matches(target) == match_prefix_patterns(value, target), (value, target)


@given(st.text(alphabet="ab/.-", max_size=12))
def test_a_literal_pattern_matches_exactly_itself(name: str) -> None:
    assert path_match(name, name)
    assert not path_match(name + "x", name)
