"""Module paths and versions (after golang.org/x/mod/module).

The rules here decide which module paths and versions modgate accepts at
all, so they match the go command exactly: a path the go command would
reject is rejected here with the same reason, and the reverse. Module paths
are ASCII and their first element is a lower-case domain name, which is what
keeps escaped paths (``escape.py``) safe as file and URL path elements.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from dataclasses import dataclass

from modgate.protocol import semver
from modgate.protocol.errors import InvalidRequestError

_CONTROL_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_SURROGATE_ESCAPE_LO = 0xDC80  # bytes 0x80-0xff decoded with "surrogateescape"
_SURROGATE_ESCAPE_HI = 0xDCFF


def _quote_char(c: str, delim: str) -> str:
    if c in (delim, "\\"):
        return "\\" + c
    if c in _CONTROL_ESCAPES:
        return _CONTROL_ESCAPES[c]
    cp = ord(c)
    if _SURROGATE_ESCAPE_LO <= cp <= _SURROGATE_ESCAPE_HI:
        return f"\\x{cp - 0xDC00:02x}"
    if c.isprintable():
        return c
    if cp < 0x80:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def go_quote(s: str) -> str:
    """``s`` in double quotes with Go's escapes (``%q``): always one printable line."""
    return '"' + "".join(_quote_char(c, '"') for c in s) + '"'


def _quote_rune(c: str) -> str:
    return "'" + _quote_char(c, "'") + "'"


class InvalidPathError(InvalidRequestError):
    """A module, import or file path breaks the naming rules.

    ``str()`` reads like the go command: ``malformed module path "x": missing
    dot in first path element``.
    """

    def __init__(self, kind: str, path: str, detail: str, *, escaped: bool = False) -> None:
        if escaped:
            text = f"invalid escaped {kind} path {go_quote(path)}"
            text = f"{text}: {detail}" if detail else text
        else:
            text = f"malformed {kind} path {go_quote(path)}: {detail}"
        super().__init__(path, text)
        self.kind = kind
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return self.reason


class InvalidVersionError(InvalidRequestError):
    """A version is malformed or does not fit its module path.

    With a path, ``str()`` is ``path@version: invalid version: detail`` (as
    x/mod's ``ModuleError``); without, ``version "v" invalid: detail``.
    """

    def __init__(self, version: str, detail: str, *, path: str = "", pseudo: bool = False) -> None:
        noun = "pseudo-version" if pseudo else "version"
        if path:
            subject = f"{_printable(path)}@{_printable(version)}"
            text = f"invalid {noun}: {detail}"
        else:
            subject = ""
            text = f"{noun} {go_quote(version)} invalid: {detail}"
        super().__init__(subject, text)
        self.version = version
        self.path = path
        self.pseudo = pseudo
        self.detail = detail

    def with_path(self, path: str) -> InvalidVersionError:
        """The same error naming the module path."""
        return InvalidVersionError(self.version, self.detail, path=path, pseudo=self.pseudo)


def _printable(s: str) -> str:
    return go_quote(s)[1:-1]


@dataclass(frozen=True, slots=True, order=True)
class ModuleVersion:
    """A module path and a version, both unescaped. ``str()`` is ``path@version``."""

    path: str
    version: str

    def __str__(self) -> str:
        return f"{self.path}@{self.version}"


class _Kind(enum.Enum):
    MODULE = "module"
    IMPORT = "import"
    FILE = "file"


_ASCII_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_MODULE_CHARS = _ASCII_ALNUM | frozenset("-._~")
_IMPORT_CHARS = _MODULE_CHARS | frozenset("+")
_FILE_ASCII_CHARS = _ASCII_ALNUM | frozenset("!#$%&()+,-.=@[]^_{}~ ")
_BAD_ASCII = {
    kind: re.compile("[^" + re.escape("".join(sorted(chars))) + "]")
    for kind, chars in (
        (_Kind.MODULE, _MODULE_CHARS),
        (_Kind.IMPORT, _IMPORT_CHARS),
        (_Kind.FILE, _FILE_ASCII_CHARS),
    )
}
"""The first character of an ASCII element that ``_char_ok`` refuses, found in one C call."""
_FIRST_ELEM_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-.")
_DIGITS = frozenset("0123456789")
WINDOWS_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{n}" for n in range(1, 10)]
    + [f"LPT{n}" for n in range(1, 10)]
)
GOPKG_IN_PREFIX = "gopkg.in/"
_UNSTABLE = "-unstable"
INCOMPATIBLE = "+incompatible"


def _char_ok(c: str, kind: _Kind) -> bool:
    if kind is _Kind.MODULE:
        return c in _MODULE_CHARS
    if kind is _Kind.IMPORT:
        return c in _IMPORT_CHARS
    if c.isascii():
        return c in _FILE_ASCII_CHARS
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo")


def _elem_problem(elem: str, kind: _Kind) -> str | None:
    if elem == "":
        return "empty path element"
    if elem.count(".") == len(elem):
        return f"invalid path element {go_quote(elem)}"
    if elem[0] == "." and kind is _Kind.MODULE:
        return "leading dot in path element"
    if elem[-1] == ".":
        return "trailing dot in path element"
    if elem.isascii():
        bad = _BAD_ASCII[kind].search(elem)
        if bad is not None:
            return f"invalid char {_quote_rune(bad.group())}"
    else:
        for c in elem:
            if not _char_ok(c, kind):
                return f"invalid char {_quote_rune(c)}"
    short = elem.split(".", 1)[0]
    if short.isascii() and short.upper() in WINDOWS_RESERVED_NAMES:
        return f"{go_quote(short)} disallowed as path element component on Windows"
    if kind is _Kind.FILE:
        return None
    tilde = short.rfind("~")
    if 0 <= tilde < len(short) - 1 and all(c in _DIGITS for c in short[tilde + 1 :]):
        return "trailing tilde and digits in path element"
    return None


def _is_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CACHED_PATH_CHARS = 200
"""Paths up to this long have their verdict cached, so the cache holds at most a few MB."""


def _path_problem(path: str, kind: _Kind) -> str | None:
    if len(path) <= _CACHED_PATH_CHARS:
        return _cached_path_problem(path, kind)
    return _uncached_path_problem(path, kind)


@functools.lru_cache(maxsize=8192)
def _cached_path_problem(path: str, kind: _Kind) -> str | None:
    # The files of a module's versions mostly share their names.
    return _uncached_path_problem(path, kind)


def _uncached_path_problem(path: str, kind: _Kind) -> str | None:
    if not _is_utf8(path):
        return "invalid UTF-8"
    if path == "":
        return "empty string"
    if path[0] == "-" and kind is not _Kind.FILE:
        return "leading dash"
    if "//" in path:
        return "double slash"
    if path[-1] == "/":
        return "trailing slash"
    for elem in path.split("/"):
        problem = _elem_problem(elem, kind)
        if problem is not None:
            return problem
    return None


def file_elem_problem(elem: str) -> str | None:
    """Why ``elem`` is not a valid file name (one path element), or None."""
    if not _is_utf8(elem):
        return "invalid UTF-8"
    return _elem_problem(elem, _Kind.FILE)


def _module_path_problem(path: str) -> str | None:
    problem = _path_problem(path, _Kind.MODULE)
    if problem is not None:
        return problem
    first = path.split("/", 1)[0]
    if first == "":
        return "leading slash"
    if "." not in first:
        return "missing dot in first path element"
    if path[0] == "-":
        return "leading dash in first path element"
    for c in first:
        if c not in _FIRST_ELEM_CHARS:
            return f"invalid char {_quote_rune(c)} in first path element"
    if not split_path_version(path)[2]:
        return "invalid version"
    return None


def check_path(path: str) -> None:
    """Raise InvalidPathError unless ``path`` is a valid module path (x/mod ``CheckPath``)."""
    problem = _module_path_problem(path)
    if problem is not None:
        raise InvalidPathError("module", path, problem)


def check_import_path(path: str) -> None:
    """Raise InvalidPathError unless ``path`` is a valid package import path."""
    problem = _path_problem(path, _Kind.IMPORT)
    if problem is not None:
        raise InvalidPathError("import", path, problem)


def check_file_path(path: str) -> None:
    """Raise InvalidPathError unless ``path`` is a valid slash-separated file path (in a zip)."""
    problem = _path_problem(path, _Kind.FILE)
    if problem is not None:
        raise InvalidPathError("file", path, problem)


def split_path_version(path: str) -> tuple[str, str, bool]:
    """``(prefix, path_major, ok)`` with ``prefix + path_major == path``.

    ``path_major`` is ``""`` or ``/vN`` for N >= 2; gopkg.in paths use ``.vN``
    (``.v0`` and ``.v1`` included, optionally followed by ``-unstable``).
    ``ok`` is false when the last element is a malformed major suffix such
    as ``/v1``, ``/v02`` or ``/v1.2``.
    """
    if path.startswith(GOPKG_IN_PREFIX):
        return _split_gopkg_in(path)
    i = len(path)
    dot = False
    while i > 0 and (path[i - 1] in _DIGITS or path[i - 1] == "."):
        dot = dot or path[i - 1] == "."
        i -= 1
    if i <= 1 or i == len(path) or path[i - 1] != "v" or path[i - 2] != "/":
        return path, "", True
    prefix, path_major = path[: i - 2], path[i - 2 :]
    if dot or len(path_major) <= 2 or path_major[2] == "0" or path_major == "/v1":
        return path, "", False
    return prefix, path_major, True


def _split_gopkg_in(path: str) -> tuple[str, str, bool]:
    i = len(path)
    if path.endswith(_UNSTABLE):
        i -= len(_UNSTABLE)
    while i > 0 and path[i - 1] in _DIGITS:
        i -= 1
    if i <= 1 or path[i - 1] != "v" or path[i - 2] != ".":
        return path, "", False
    prefix, path_major = path[: i - 2], path[i - 2 :]
    if len(path_major) <= 2 or (path_major[2] == "0" and path_major != ".v0"):
        return path, "", False
    return prefix, path_major, True


def check_path_major(version: str, path_major: str) -> None:
    """Raise InvalidVersionError unless ``version``'s major fits ``path_major`` (x/mod rules)."""
    if path_major.startswith(".v") and path_major.endswith(_UNSTABLE):
        path_major = path_major[: -len(_UNSTABLE)]
    if version.startswith("v0.0.0-") and path_major == ".v1":
        # Early pseudo-versions of gopkg.in/x.v1 modules used v0; they stay valid.
        return
    got = semver.major(version)
    want = path_major
    if path_major == "":
        if got in ("v0", "v1") or semver.build(version) == INCOMPATIBLE:
            return
        want = "v0 or v1"
    elif path_major[0] in "/.":
        if got == path_major[1:]:
            return
        want = path_major[1:]
    raise InvalidVersionError(version, f"should be {want}, not {got}")


def match_path_major(version: str, path_major: str) -> bool:
    """Whether ``check_path_major`` accepts the pair."""
    try:
        check_path_major(version, path_major)
    except InvalidVersionError:
        return False
    return True


def path_major_prefix(path_major: str) -> str:
    """The tag major (``"v2"``) that ``path_major`` (``"/v2"``, ``".v2-unstable"``) implies."""
    if path_major == "":
        return ""
    if path_major[0] not in "/.":
        raise ValueError(f"path major {go_quote(path_major)} lacks its '/' or '.' separator")
    if path_major.startswith(".v") and path_major.endswith(_UNSTABLE):
        path_major = path_major[: -len(_UNSTABLE)]
    m = path_major[1:]
    if m != semver.major(m):
        raise ValueError(f"path major {go_quote(path_major)} is not a valid major version")
    return m


def canonical_version(v: str) -> str:
    """``semver.canonical`` that keeps a ``+incompatible`` suffix; ``""`` if invalid."""
    cv = semver.canonical(v)
    if semver.build(v) == INCOMPATIBLE:
        cv += INCOMPATIBLE
    return cv


def check(path: str, version: str) -> None:
    """Raise unless ``path@version`` names a module version that can exist.

    The path must be valid, the version canonical (``+incompatible`` kept),
    its major must fit the path's major suffix, and ``+incompatible`` is
    allowed only on paths without a suffix and for majors >= 2 (the go
    command refuses the others when it resolves a version).
    """
    check_path(path)
    if not semver.is_valid(version):
        raise InvalidVersionError(version, "not a semantic version", path=path)
    cv = canonical_version(version)
    if cv != version:
        raise InvalidVersionError(version, f"not a canonical version (use {cv})", path=path)
    path_major = split_path_version(path)[1]
    try:
        check_path_major(version, path_major)
    except InvalidVersionError as err:
        raise err.with_path(path) from None
    got = semver.major(version)
    if semver.build(version) == INCOMPATIBLE and (path_major != "" or got in ("v0", "v1")):
        raise InvalidVersionError(
            version,
            f"+incompatible suffix not allowed: major version {got} is compatible",
            path=path,
        )
