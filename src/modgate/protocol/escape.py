"""Case-encoding of module paths and versions (after x/mod ``EscapePath``).

File systems and URLs cannot be trusted to keep ``github.com/Azure`` and
``github.com/azure`` apart, so the proxy protocol and the store never use
upper-case letters: each one becomes ``!`` followed by its lower-case form
(``github.com/!azure/x``). Module paths and versions never contain ``!``, so
the encoding is unambiguous. Decoding is strict: a bare upper-case letter, a
``!`` not followed by ``a``-``z``, or any non-ASCII character is rejected, and
the decoded value is validated again, so every accepted escaped form is the
one and only escaped form of a valid path or version.
"""

from __future__ import annotations

from modgate.protocol.module import (
    InvalidPathError,
    InvalidVersionError,
    check_path,
    file_elem_problem,
)

_BANG = "!"
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


def _escape(s: str) -> str:
    if not any(c in _UPPER for c in s):
        return s
    return "".join(_BANG + c.lower() if c in _UPPER else c for c in s)


def _unescape(escaped: str) -> str | None:
    out: list[str] = []
    bang = False
    for c in escaped:
        if not c.isascii():
            return None
        if bang:
            if c not in _LOWER:
                return None
            out.append(c.upper())
            bang = False
        elif c == _BANG:
            bang = True
        elif c in _UPPER:
            return None
        else:
            out.append(c)
    if bang:
        return None
    return "".join(out)


def escape_path(path: str) -> str:
    """The escaped form of module path ``path``; InvalidPathError if the path is invalid."""
    check_path(path)
    return _escape(path)


def escape_version(version: str) -> str:
    """The escaped form of ``version``, which may be a query such as a branch name.

    The version must be a valid file name (one path element) without ``!``;
    otherwise InvalidVersionError.
    """
    if file_elem_problem(version) is not None or _BANG in version or not version.isascii():
        raise InvalidVersionError(version, "disallowed version string")
    return _escape(version)


def unescape_path(escaped: str) -> str:
    """The module path that ``escaped`` encodes; InvalidPathError if it encodes none."""
    path = _unescape(escaped)
    if path is None:
        raise InvalidPathError(
            "module",
            escaped,
            "use '!' plus a lower-case letter for each upper-case letter",
            escaped=True,
        )
    try:
        check_path(path)
    except InvalidPathError as err:
        raise InvalidPathError("module", escaped, str(err), escaped=True) from None
    return path


def unescape_version(escaped: str) -> str:
    """The version that ``escaped`` encodes; InvalidVersionError if it encodes none."""
    version = _unescape(escaped)
    if version is None:
        raise InvalidVersionError(
            escaped, "bad escaping: use '!' plus a lower-case letter for each upper-case letter"
        )
    problem = file_elem_problem(version)
    if problem is not None:
        raise InvalidVersionError(escaped, f"not a valid file name: {problem}")
    return version
