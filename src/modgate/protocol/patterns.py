"""GOPRIVATE-style module path patterns (after x/mod ``MatchPrefixPatterns``).

A pattern list is comma-separated globs. A glob with N slashes is matched
against the first N+1 elements of a module path, so ``corp.example.com``
matches ``corp.example.com/x/y`` and ``*.corp.com`` matches ``a.corp.com/x``,
while ``*`` never crosses a ``/``.

``path_match`` is Go's ``path.Match``, byte for byte on the UTF-8 form: ``*``
(any run of non-``/``), ``?`` (one non-``/`` character), ``[...]`` classes
with ranges and ``^`` negation (Go has no ``!`` negation: ``[!a]`` is the
class of ``!`` and ``a``), and ``\\`` escapes. ``match_prefix_patterns``
behaves exactly like the go command, which skips malformed globs silently;
``parse_patterns`` is the strict front door for modgate's own settings and
rejects them instead.
"""

from __future__ import annotations

from dataclasses import dataclass

_RUNE_ERROR = 0xFFFD
_SLASH = ord("/")
_STAR = ord("*")
_QUESTION = ord("?")
_BACKSLASH = ord("\\")
_OPEN = ord("[")
_CLOSE = ord("]")
_CARET = ord("^")
_DASH = ord("-")
_SCHEME_MARK = "://"


class BadPatternError(ValueError):
    """A malformed glob (Go's ``path.ErrBadPattern``)."""

    def __init__(self, pattern: str) -> None:
        super().__init__(f"syntax error in pattern {pattern!r}")
        self.pattern = pattern


class _Bad(Exception):
    pass


def _decode_rune(b: bytes) -> tuple[int, int]:
    """Go's ``utf8.DecodeRune``: (rune, size), (RuneError, 1) for bad bytes."""
    if not b:
        return _RUNE_ERROR, 0
    lead = b[0]
    if lead < 0x80:
        return lead, 1
    if 0xC2 <= lead <= 0xDF:
        size = 2
    elif 0xE0 <= lead <= 0xEF:
        size = 3
    elif 0xF0 <= lead <= 0xF4:
        size = 4
    else:
        return _RUNE_ERROR, 1
    try:
        text = b[:size].decode("utf-8")
    except UnicodeDecodeError:
        return _RUNE_ERROR, 1
    return ord(text), size


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern and pattern[0] == _STAR:
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == _BACKSLASH:
            if i + 1 < len(pattern):
                i += 1
        elif c == _OPEN:
            in_range = True
        elif c == _CLOSE:
            in_range = False
        elif c == _STAR and not in_range:
            return star, pattern[:i], pattern[i:]
        i += 1
    return star, pattern, b""


def _get_esc(chunk: bytes) -> tuple[int, bytes]:
    if not chunk or chunk[0] in (_DASH, _CLOSE):
        raise _Bad
    if chunk[0] == _BACKSLASH:
        chunk = chunk[1:]
        if not chunk:
            raise _Bad
    r, n = _decode_rune(chunk)
    if r == _RUNE_ERROR and n == 1:
        raise _Bad
    rest = chunk[n:]
    if not rest:
        raise _Bad
    return r, rest


def _match_chunk(chunk: bytes, s: bytes) -> bytes | None:
    """The rest of ``s`` after ``chunk`` matched its start, or None; _Bad if malformed.

    After a mismatch the chunk is still read to the end to check its syntax.
    """
    failed = False
    while chunk:
        failed = failed or not s
        c = chunk[0]
        if c == _OPEN:
            r = 0
            if not failed:
                r, n = _decode_rune(s)
                s = s[n:]
            chunk = chunk[1:]
            negated = bool(chunk) and chunk[0] == _CARET
            if negated:
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk and chunk[0] == _CLOSE and ranges > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == _DASH:
                    hi, chunk = _get_esc(chunk[1:])
                matched = matched or lo <= r <= hi
                ranges += 1
            failed = failed or matched == negated
            continue
        if c == _QUESTION:
            if not failed:
                failed = s[0] == _SLASH
                s = s[_decode_rune(s)[1] :]
            chunk = chunk[1:]
            continue
        if c == _BACKSLASH:
            chunk = chunk[1:]
            if not chunk:
                raise _Bad
        if not failed:
            failed = chunk[0] != s[0]
            s = s[1:]
        chunk = chunk[1:]
    return None if failed else s


def _match(pattern: bytes, name: bytes) -> bool:
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return _SLASH not in name
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        advanced = False
        if star:
            i = 0
            while i < len(name) and name[i] != _SLASH:
                rest = _match_chunk(chunk, name[i + 1 :])
                if rest is not None and (pattern or not rest):
                    name = rest
                    advanced = True
                    break
                i += 1
        if advanced:
            continue
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, b"")
        return False
    return not name


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match(pattern, name)``; BadPatternError for a malformed pattern."""
    try:
        return _match(_utf8(pattern), _utf8(name))
    except _Bad:
        raise BadPatternError(pattern) from None


def _glob_matches(glob: str, target: str) -> bool:
    n = glob.count("/")
    prefix = target
    for i, c in enumerate(target):
        if c == "/":
            if n == 0:
                prefix = target[:i]
                break
            n -= 1
    if n > 0:
        return False
    try:
        return path_match(glob, prefix)
    except BadPatternError:
        return False


def match_prefix_patterns(globs: str, target: str) -> bool:
    """Go's ``module.MatchPrefixPatterns``: malformed and empty globs are skipped."""
    for raw in globs.split(","):
        glob = raw.removesuffix("/")
        if glob and _glob_matches(glob, target):
            return True
    return False


@dataclass(frozen=True, slots=True)
class PatternList:
    """Validated globs (trimmed, without a trailing ``/``)."""

    patterns: tuple[str, ...]

    def matches(self, module_path: str) -> bool:
        """Whether some prefix of ``module_path`` matches one of the globs."""
        return any(_glob_matches(glob, module_path) for glob in self.patterns)

    def first_match(self, module_path: str) -> str | None:
        """The first glob that matches ``module_path``, or None (to explain a decision)."""
        for glob in self.patterns:
            if _glob_matches(glob, module_path):
                return glob
        return None

    def __str__(self) -> str:
        return ",".join(self.patterns)


def _check_pattern(pattern: str) -> None:
    if _SCHEME_MARK in pattern:
        bare = pattern.split(_SCHEME_MARK, 1)[1]
        raise ValueError(
            f"pattern {pattern!r} is a URL; patterns match module paths, "
            f"so write the module path prefix without a scheme, e.g. {bare!r}"
        )
    if "" in pattern.split("/"):
        raise ValueError(
            f"pattern {pattern!r} has an empty path element, so it can never match a module path"
        )
    try:
        path_match(pattern, "")
    except BadPatternError:
        raise ValueError(
            f"pattern {pattern!r} is not a valid glob (check its [...] classes and \\ escapes)"
        ) from None


def parse_patterns(value: str) -> PatternList:
    """Parse a comma-separated GOPRIVATE-style list; ValueError echoing a bad pattern.

    Entries are trimmed of spaces and of one trailing ``/`` (as the go command
    does); empty entries are skipped.
    """
    patterns: list[str] = []
    for raw in value.split(","):
        pattern = raw.strip().removesuffix("/")
        if not pattern:
            continue
        _check_pattern(pattern)
        patterns.append(pattern)
    return PatternList(tuple(patterns))
