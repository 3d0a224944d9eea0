"""Semantic versions as the go command reads them (after golang.org/x/mod/semver).

A version is ``vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]``: the leading
``v`` is required, numbers have no leading zeros, prerelease and build are
non-empty dot-separated identifiers of ``[0-9A-Za-z-]``, and all-numeric
prerelease identifiers have no leading zeros. ``vX`` and ``vX.Y`` are
shorthands for ``vX.0.0`` and ``vX.Y.0`` and cannot carry a prerelease or
build suffix.

Every function accepts any string. Invalid versions give ``""`` (or
``False``) and compare equal to each other and below every valid version,
exactly as the go command does, so callers can feed in untrusted input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_DIGITS = frozenset("0123456789")
_IDENT_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")
_PARSE_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class _Parsed:
    major: str
    minor: str
    patch: str
    short: str  # what a shorthand lacks: ".0.0", ".0" or ""
    prerelease: str  # "-pre" or ""
    build: str  # "+meta" or ""


def _parse_int(v: str) -> tuple[str, str] | None:
    i = 0
    while i < len(v) and v[i] in _DIGITS:
        i += 1
    if i == 0 or (v[0] == "0" and i != 1):
        return None
    return v[:i], v[i:]


def _is_bad_num(ident: str) -> bool:
    return len(ident) > 1 and ident[0] == "0" and all(c in _DIGITS for c in ident)


def _valid_idents(body: str, *, check_numbers: bool) -> bool:
    for ident in body.split("."):
        if not ident or any(c not in _IDENT_CHARS for c in ident):
            return False
        if check_numbers and _is_bad_num(ident):
            return False
    return True


@lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _parse(v: str) -> _Parsed | None:
    if not v.startswith("v"):
        return None
    got = _parse_int(v[1:])
    if got is None:
        return None
    major, rest = got
    if rest == "":
        return _Parsed(major, "0", "0", ".0.0", "", "")
    if rest[0] != ".":
        return None
    got = _parse_int(rest[1:])
    if got is None:
        return None
    minor, rest = got
    if rest == "":
        return _Parsed(major, minor, "0", ".0", "", "")
    if rest[0] != ".":
        return None
    got = _parse_int(rest[1:])
    if got is None:
        return None
    patch, rest = got
    prerelease = build = ""
    if rest.startswith("-"):
        end = rest.find("+")
        prerelease = rest if end < 0 else rest[:end]
        if not _valid_idents(prerelease[1:], check_numbers=True):
            return None
        rest = rest[len(prerelease) :]
    if rest.startswith("+"):
        build = rest
        if not _valid_idents(build[1:], check_numbers=False):
            return None
        rest = ""
    if rest != "":
        return None
    return _Parsed(major, minor, patch, "", prerelease, build)


def is_valid(v: str) -> bool:
    """Whether ``v`` is a valid semantic version (shorthands included)."""
    return _parse(v) is not None


def canonical(v: str) -> str:
    """``v`` with missing parts filled in and build metadata dropped; ``""`` if invalid."""
    p = _parse(v)
    if p is None:
        return ""
    if p.build:
        return v[: len(v) - len(p.build)]
    return v + p.short


def major(v: str) -> str:
    """The major prefix: ``major("v2.1.0") == "v2"``; ``""`` if invalid."""
    p = _parse(v)
    return "" if p is None else "v" + p.major


def major_minor(v: str) -> str:
    """The major.minor prefix: ``major_minor("v2.1.0") == "v2.1"``; ``""`` if invalid."""
    p = _parse(v)
    if p is None:
        return ""
    return f"v{p.major}.{p.minor}"


def prerelease(v: str) -> str:
    """The prerelease suffix with its ``-`` (``"-pre"``), or ``""``."""
    p = _parse(v)
    return "" if p is None else p.prerelease


def build(v: str) -> str:
    """The build suffix with its ``+`` (``"+meta"``), or ``""``."""
    p = _parse(v)
    return "" if p is None else p.build


def _compare_int(x: str, y: str) -> int:
    if x == y:
        return 0
    if len(x) != len(y):
        return -1 if len(x) < len(y) else 1
    return -1 if x < y else 1


def _compare_prerelease(x: str, y: str) -> int:
    if x == y:
        return 0
    if x == "":
        return 1
    if y == "":
        return -1
    xs = x[1:].split(".")
    ys = y[1:].split(".")
    for dx, dy in zip(xs, ys, strict=False):
        if dx == dy:
            continue
        nx = dx.isdigit()
        ny = dy.isdigit()
        if nx != ny:
            return -1 if nx else 1
        if nx and len(dx) != len(dy):
            return -1 if len(dx) < len(dy) else 1
        return -1 if dx < dy else 1
    return -1 if len(xs) < len(ys) else 1


def compare(v: str, w: str) -> int:
    """-1, 0 or +1 by semantic precedence; invalid versions sort first and tie."""
    pv, pw = _parse(v), _parse(w)
    if pv is None or pw is None:
        return (pv is not None) - (pw is not None)
    for x, y in ((pv.major, pw.major), (pv.minor, pw.minor), (pv.patch, pw.patch)):
        c = _compare_int(x, y)
        if c != 0:
            return c
    return _compare_prerelease(pv.prerelease, pw.prerelease)


def max_version(v: str, w: str) -> str:
    """The greater of the canonical forms of ``v`` and ``w`` (x/mod's ``Max``)."""
    cv, cw = canonical(v), canonical(w)
    return cv if compare(cv, cw) > 0 else cw


_Ident = tuple[int, int] | tuple[int, str]
SortKey = tuple[int, int, int, int, int, tuple[_Ident, ...], str] | tuple[int, str]


def sort_key(v: str) -> SortKey:
    """A key that orders like ``compare`` with ties broken by the string itself.

    ``sorted(vs, key=sort_key)`` gives the same order as x/mod's ``semver.Sort``.
    """
    p = _parse(v)
    if p is None:
        return (0, v)
    if p.prerelease:
        idents: tuple[_Ident, ...] = tuple(
            (0, int(i)) if i.isdigit() else (1, i) for i in p.prerelease[1:].split(".")
        )
        release = 0
    else:
        idents = ()
        release = 1
    return (1, int(p.major), int(p.minor), int(p.patch), release, idents, v)


def sort_versions(versions: Iterable[str]) -> list[str]:
    """A new list of ``versions`` in semantic order (ties by string), like ``semver.Sort``."""
    return sorted(versions, key=sort_key)
