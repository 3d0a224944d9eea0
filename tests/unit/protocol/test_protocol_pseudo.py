"""Pseudo-versions: building and taking apart vX.Y.Z-yyyymmddhhmmss-rev."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.protocol import semver
from modgate.protocol.module import InvalidVersionError
from modgate.protocol.pseudo import (
    is_pseudo_version,
    is_zero_pseudo_version,
    pseudo_version,
    pseudo_version_base,
    pseudo_version_rev,
    pseudo_version_time,
    zero_pseudo_version,
)

REV = "abcdefabcdef"
# A commit at 2024-02-03T04:05:06+01:00 is 03:05:06 UTC.
COMMIT_TIME = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
STAMP = "20240203030506"

BUILD = [
    # (major, older tag, want)
    ("", "", f"v0.0.0-{STAMP}-{REV}"),
    ("v0", "", f"v0.0.0-{STAMP}-{REV}"),
    ("v2", "", f"v2.0.0-{STAMP}-{REV}"),
    ("v1", "v1.2.3", f"v1.2.4-0.{STAMP}-{REV}"),
    ("v1", "v1.2.9", f"v1.2.10-0.{STAMP}-{REV}"),
    ("v1", "v1.2.99", f"v1.2.100-0.{STAMP}-{REV}"),
    ("v1", "v1.2", f"v1.2.1-0.{STAMP}-{REV}"),
    ("v1", "v1.2.3-pre", f"v1.2.3-pre.0.{STAMP}-{REV}"),
    ("v1", "v1.2.3-0", f"v1.2.3-0.0.{STAMP}-{REV}"),
    ("", "v2.0.0+incompatible", f"v2.0.1-0.{STAMP}-{REV}+incompatible"),
    ("", "v2.0.0-rc.1+incompatible", f"v2.0.0-rc.1.0.{STAMP}-{REV}+incompatible"),
    ("v1", "not-a-version", f"v1.0.0-{STAMP}-{REV}"),
]


@pytest.mark.parametrize(("major", "older", "want"), BUILD)
def test_pseudo_version(major: str, older: str, want: str) -> None:
    got = pseudo_version(major, older, COMMIT_TIME, REV)
    assert got == want, f"pseudo_version({major!r}, {older!r}) = {got!r}, want {want!r}"
    assert is_pseudo_version(got), got
    assert pseudo_version_rev(got) == REV
    assert pseudo_version_time(got) == COMMIT_TIME


def test_pseudo_version_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pseudo_version("v1", "", datetime(2024, 1, 1), REV)


PARSE = [
    # (version, is pseudo, base or None when the base is an error)
    (f"v0.0.0-{STAMP}-{REV}", True, ""),
    (f"v1.2.4-0.{STAMP}-{REV}", True, "v1.2.3"),
    (f"v1.2.10-0.{STAMP}-{REV}", True, "v1.2.9"),
    (f"v1.2.100-0.{STAMP}-{REV}", True, "v1.2.99"),
    (f"v1.2.3-pre.0.{STAMP}-{REV}", True, "v1.2.3-pre"),
    (f"v1.2.3-0.0.{STAMP}-{REV}", True, "v1.2.3-0"),
    (f"v2.0.1-0.{STAMP}-{REV}+incompatible", True, "v2.0.0+incompatible"),
    (f"v2.0.0-rc.1.0.{STAMP}-{REV}+incompatible", True, "v2.0.0-rc.1+incompatible"),
    (f"v2.0.0-{STAMP}-{REV}+incompatible", True, None),  # no base, yet +incompatible
    (f"v1.2.0-0.{STAMP}-{REV}", True, None),  # the base would have patch -1
    (f"v1.2.3-pre.{STAMP}-{REV}", False, None),  # the ".0." is missing
    (f"v1.2.3-{STAMP}-{REV}", False, None),  # form 1 needs X.0.0
    (f"v1.0.0-2024020303050-{REV}", False, None),  # 13 digits
    (f"v1.0.0-202402030305066-{REV}", False, None),  # 15 digits
    (f"v1.0.0-{STAMP}{REV}", False, None),
    (f"v1.0.0-{STAMP}-", False, None),
    (f"v1.0.0-{STAMP}-{REV}+", False, None),
    (f"v01.0.0-{STAMP}-{REV}", False, None),
    (f"v0.0.0-{STAMP}-{REV}\n", False, None),
    ("v1.2.3", False, None),
    ("v1.2.3-pre", False, None),
]


@pytest.mark.parametrize(("v", "pseudo", "base"), PARSE)
def test_parse_pseudo_version(v: str, pseudo: bool, base: str | None) -> None:
    assert is_pseudo_version(v) == pseudo, f"is_pseudo_version({v!r})"
    if base is None:
        with pytest.raises(InvalidVersionError) as info:
            pseudo_version_base(v)
        assert info.value.pseudo and info.value.status == 400
    else:
        got = pseudo_version_base(v)
        assert got == base, f"pseudo_version_base({v!r}) = {got!r}, want {base!r}"
    if not pseudo:
        with pytest.raises(InvalidVersionError, match="syntax error"):
            pseudo_version_rev(v)
        with pytest.raises(InvalidVersionError, match="syntax error"):
            pseudo_version_time(v)


@pytest.mark.parametrize(
    "stamp",
    [
        "20241301000000",
        "20240230000000",
        "20230229000000",
        "20240101240000",
        "20240101006000",
        "20240101000060",
    ],
)
def test_malformed_time(stamp: str) -> None:
    v = f"v0.0.0-{stamp}-{REV}"
    assert is_pseudo_version(v), v
    with pytest.raises(InvalidVersionError, match="malformed time"):
        pseudo_version_time(v)


def test_leap_day_time() -> None:
    v = f"v0.0.0-20240229235959-{REV}"
    assert pseudo_version_time(v) == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)


def test_zero_pseudo_version() -> None:
    assert zero_pseudo_version("v0") == "v0.0.0-00010101000000-000000000000"
    assert zero_pseudo_version("") == "v0.0.0-00010101000000-000000000000"
    assert zero_pseudo_version("v3") == "v3.0.0-00010101000000-000000000000"
    assert is_zero_pseudo_version("v3.0.0-00010101000000-000000000000")
    assert not is_zero_pseudo_version(f"v3.0.0-{STAMP}-{REV}")
    assert not is_zero_pseudo_version("v3.0.0")


_tags = st.one_of(
    st.just(""),
    st.builds(
        lambda a, b, c: f"v{a}.{b}.{c}", st.integers(0, 20), st.integers(0, 20), st.integers(0, 120)
    ),
    st.builds(
        lambda a, p: f"v{a}.1.2-{p}",
        st.integers(0, 5),
        st.sampled_from(["pre", "rc.1", "0", "beta.2"]),
    ),
)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))
_revs = st.text("0123456789abcdef", min_size=12, max_size=12)


@given(_tags, _times, _revs, st.booleans())
def test_pseudo_version_round_trip(older: str, t: datetime, rev: str, incompatible: bool) -> None:
    if older and incompatible:
        older += "+incompatible"
    major = semver.major(older) or "v0"
    v = pseudo_version(major, older, t, rev)
    assert is_pseudo_version(v), v
    assert pseudo_version_time(v) == t, v
    assert pseudo_version_rev(v) == rev, v
    assert pseudo_version_base(v) == older, v
    # A pseudo-version sorts after its base and before the next release.
    if older:
        assert semver.compare(v, older) > 0, (v, older)
