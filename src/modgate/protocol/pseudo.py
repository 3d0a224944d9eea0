"""Pseudo-versions (after golang.org/x/mod/module/pseudo.go).

A pseudo-version names an untagged commit: ``vX.0.0-yyyymmddhhmmss-rev``
with no tag below it, ``vX.Y.(Z+1)-0.yyyymmddhhmmss-rev`` after release
``vX.Y.Z``, and ``vX.Y.Z-pre.0.yyyymmddhhmmss-rev`` after prerelease
``vX.Y.Z-pre``, each optionally with build metadata such as
``+incompatible``. The time is the commit time in UTC and the revision the
first 12 hex digits of the commit hash.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from modgate.protocol import semver
from modgate.protocol.module import InvalidVersionError, go_quote

_PSEUDO_RE = re.compile(
    r"v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?",
    re.ASCII | re.DOTALL,
)
ZERO_PSEUDO_REV = "000000000000"
_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def is_pseudo_version(v: str) -> bool:
    """Whether ``v`` has the form of a pseudo-version."""
    return v.count("-") >= 2 and semver.is_valid(v) and _PSEUDO_RE.fullmatch(v) is not None


def _format_timestamp(t: datetime) -> str:
    u = t.astimezone(UTC)
    return f"{u.year:04d}{u.month:02d}{u.day:02d}{u.hour:02d}{u.minute:02d}{u.second:02d}"


def pseudo_version(major: str, older: str, t: datetime, rev: str) -> str:
    """The pseudo-version for revision ``rev`` committed at ``t`` (x/mod ``PseudoVersion``).

    ``major`` is the path's major (``""`` means ``v0``); ``older`` is the
    closest tagged ancestor (``""``, ``v1.2.3`` or ``v1.2.3-pre``, whose build
    suffix such as ``+incompatible`` is carried over). ``t`` must be aware.
    """
    if t.tzinfo is None:
        raise ValueError("pseudo_version needs a timezone-aware commit time")
    major = major or "v0"
    segment = f"{_format_timestamp(t)}-{rev}"
    build = semver.build(older)
    base = semver.canonical(older)
    if base == "":
        return f"{major}.0.0-{segment}"
    if semver.prerelease(base) != "":
        return f"{base}.0.{segment}{build}"
    i = base.rfind(".") + 1
    return f"{base[:i]}{int(base[i:]) + 1}-0.{segment}{build}"


def zero_pseudo_version(major: str) -> str:
    """A placeholder pseudo-version with zero time and revision."""
    return pseudo_version(major, "", _ZERO_TIME, ZERO_PSEUDO_REV)


def is_zero_pseudo_version(v: str) -> bool:
    return v == zero_pseudo_version(semver.major(v))


def _parse_pseudo(v: str) -> tuple[str, str, str, str]:
    """``(base, timestamp, rev, build)``; base is ``vX.0.0``, ``vX.Y.Z-0`` or ``vX.Y.Z-pre.0``."""
    if not is_pseudo_version(v):
        raise InvalidVersionError(v, "syntax error", pseudo=True)
    build = semver.build(v)
    rest = v[: len(v) - len(build)]
    rest, rev = rest.rsplit("-", 1)
    dash = rest.rfind("-")
    dot = rest.rfind(".")
    cut = dot if dot > dash else dash
    return rest[:cut], rest[cut + 1 :], rev, build


def pseudo_version_time(v: str) -> datetime:
    """The UTC commit time embedded in pseudo-version ``v``.

    Years before 1 (``0000...``), which the go command accepts, are reported
    as malformed here because ``datetime`` cannot hold them.
    """
    _, stamp, _, _ = _parse_pseudo(v)
    try:
        return datetime(
            int(stamp[0:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[8:10]),
            int(stamp[10:12]),
            int(stamp[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        raise InvalidVersionError(v, f"malformed time {go_quote(stamp)}", pseudo=True) from None


def pseudo_version_rev(v: str) -> str:
    """The revision (commit hash prefix) of pseudo-version ``v``."""
    return _parse_pseudo(v)[2]


def pseudo_version_base(v: str) -> str:
    """The tagged version ``v`` builds on (build suffix kept), or ``""`` for ``vX.0.0-...``."""
    base, _, _, build = _parse_pseudo(v)
    pre = semver.prerelease(base)
    if pre == "":
        if build:
            raise InvalidVersionError(
                v, f"lacks base version, but has build metadata {go_quote(build)}", pseudo=True
            )
        return ""
    if pre == "-0":
        release = base[: -len(pre)]
        i = release.rfind(".")
        patch = int(release[i + 1 :])
        if patch == 0:
            raise InvalidVersionError(
                v, f"version before {base} would have negative patch number", pseudo=True
            )
        return f"{release[: i + 1]}{patch - 1}{build}"
    return base[: -len(".0")] + build
