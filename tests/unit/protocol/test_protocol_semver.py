"""semver: the go command's reading of semantic versions."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.protocol import semver

# (input, canonical form or "" when invalid), in ascending order of precedence
# for the valid ones; invalid ones first.
ORDERED = [
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2+meta", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
]

INVALID = [
    "",
    "v",
    "1.2.3",
    "V1.2.3",
    "v01.2.3",
    "v1.02.3",
    "v1.2.03",
    "v1.2.3-01",
    "v1.2.3-pre.01",
    "v1.2.3-",
    "v1.2.3-pre.",
    "v1.2.3-.pre",
    "v1.2.3-pre..1",
    "v1.2.3+",
    "v1.2.3+meta.",
    "v1.2.3+meta+more",
    "v1.2.3-pre_x",
    "v1.2.3 ",
    " v1.2.3",
    "v1.2.3.4",
    "v1..2",
    "v1.",
    "v1.2.",
    "v-1",
    "v1.2.3-é",
    "v١.2.3",  # a non-ASCII digit
    "v1.2.3\n",
]

EXTRA_VALID = {
    "v0": "v0.0.0",
    "v0.0.0": "v0.0.0",
    "v1.2.3-0": "v1.2.3-0",
    "v1.2.3-0a": "v1.2.3-0a",
    "v1.2.3-00a": "v1.2.3-00a",
    "v1.2.3+01": "v1.2.3",
    "v1.2.3-x+incompatible": "v1.2.3-x",
    "v99999999999999999999.0.0": "v99999999999999999999.0.0",
}


@pytest.mark.parametrize(
    ("v", "want"), ORDERED + [(v, "") for v in INVALID] + list(EXTRA_VALID.items())
)
def test_is_valid_and_canonical(v: str, want: str) -> None:
    assert semver.is_valid(v) == (want != ""), f"is_valid({v!r}) disagrees with canonical {want!r}"
    assert semver.canonical(v) == want, f"canonical({v!r}) = {semver.canonical(v)!r}, want {want!r}"


@pytest.mark.parametrize(
    ("v", "major", "major_minor", "prerelease", "build"),
    [
        ("v1", "v1", "v1.0", "", ""),
        ("v1.2", "v1", "v1.2", "", ""),
        ("v2.1.0", "v2", "v2.1", "", ""),
        ("v2.1.0-pre+meta", "v2", "v2.1", "-pre", "+meta"),
        ("v0.0.0-20240203030506-abcdefabcdef", "v0", "v0.0", "-20240203030506-abcdefabcdef", ""),
        ("v2.0.0+incompatible", "v2", "v2.0", "", "+incompatible"),
        ("v1.2.3-a.b.c+x.y", "v1", "v1.2", "-a.b.c", "+x.y"),
        ("bad", "", "", "", ""),
        ("v1.2-pre", "", "", "", ""),
    ],
)
def test_parts(v: str, major: str, major_minor: str, prerelease: str, build: str) -> None:
    got = (semver.major(v), semver.major_minor(v), semver.prerelease(v), semver.build(v))
    assert got == (major, major_minor, prerelease, build), f"parts of {v!r}"


def test_compare_follows_the_table_order() -> None:
    for i, (v, cv) in enumerate(ORDERED):
        for j, (w, cw) in enumerate(ORDERED):
            want = 0 if cv == cw else (-1 if i < j else 1)
            got = semver.compare(v, w)
            assert got == want, f"compare({v!r}, {w!r}) = {got}, want {want}"


@pytest.mark.parametrize(
    ("v", "w", "want"),
    [
        ("v1", "v1", 0),
        ("v2", "v1", 1),
        ("v1", "v2", -1),
        ("v1.19", "v1.2", 1),
        ("v1.2.3", "v1.2.3+meta", 0),
        ("v1.2.3-9", "v1.2.3-10", -1),
        ("v1.2.3-10", "v1.2.3-9a", -1),
        ("v1.2.3-a", "v1.2.3-a.0", -1),
        ("v10.0.0", "v9.0.0", 1),
        ("bad", "also-bad", 0),
        ("bad", "v0.0.0", -1),
        ("v0.0.0", "bad", 1),
    ],
)
def test_compare_pairs(v: str, w: str, want: int) -> None:
    assert semver.compare(v, w) == want, f"compare({v!r}, {w!r})"


def test_max_version_returns_the_greater_canonical_form() -> None:
    for i, (v, _) in enumerate(ORDERED):
        for j, (w, _) in enumerate(ORDERED):
            want = semver.canonical(w) if i < j else semver.canonical(v)
            got = semver.max_version(v, w)
            assert got == want, f"max_version({v!r}, {w!r}) = {got!r}, want {want!r}"


def test_sort_versions_matches_compare_and_breaks_ties_by_string() -> None:
    versions = [v for v, _ in ORDERED] + INVALID + list(EXTRA_VALID)
    shuffled = versions[:]
    random.Random(1).shuffle(shuffled)
    got = semver.sort_versions(shuffled)
    for a, b in itertools.pairwise(got):
        c = semver.compare(a, b)
        assert c < 0 or (c == 0 and a <= b), f"{a!r} sorted before {b!r}"


_ident = st.one_of(
    st.integers(min_value=0, max_value=30).map(str),
    st.text("abz-AZ09", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
_versions = st.builds(
    lambda nums, pre, build, cut: (
        "v"
        + ".".join(map(str, nums[:cut]))
        + (("-" + ".".join(pre)) if pre and cut == 3 else "")
        + (("+" + ".".join(build)) if build and cut == 3 else "")
    ),
    st.lists(st.integers(0, 12), min_size=3, max_size=3),
    st.lists(_ident, max_size=3),
    st.lists(st.text("ab1-", min_size=1, max_size=3), max_size=2),
    st.integers(1, 3),
)


@given(_versions, _versions, _versions)
def test_compare_is_a_total_preorder(a: str, b: str, c: str) -> None:
    assert semver.is_valid(a), a
    assert semver.compare(a, b) == -semver.compare(b, a), (a, b)
    assert semver.compare(a, semver.canonical(a)) == 0, a
    if semver.compare(a, b) <= 0 and semver.compare(b, c) <= 0:
        assert semver.compare(a, c) <= 0, (a, b, c)


@given(st.lists(st.one_of(_versions, st.text(max_size=6)), max_size=12))
def test_sort_key_orders_like_compare(vs: list[str]) -> None:
    got = semver.sort_versions(vs)
    for a, b in itertools.pairwise(got):
        c = semver.compare(a, b)
        assert c < 0 or (c == 0 and a <= b), f"{a!r} sorted before {b!r}"


@given(_versions)
def test_canonical_is_idempotent_and_drops_build(v: str) -> None:
    cv = semver.canonical(v)
    assert semver.canonical(cv) == cv, v
    assert semver.build(cv) == "", v
    assert "+" not in cv, v
