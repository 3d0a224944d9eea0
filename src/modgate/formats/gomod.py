"""Minimal go.mod reading: the module path, go and toolchain lines, retractions.

After golang.org/x/mod/modfile. The lexer and parser follow modfile's
exactly (``//`` comments, ``"quoted"`` and backquoted strings, ``verb (``
blocks closed by a ``)`` line), so a file the go command cannot parse fails
here too. The directives are read the way the go command reads the go.mod of
a dependency (``modfile.ParseLax``): unknown directives and blocks are
skipped, ``require`` lines are still checked, a malformed ``go`` version is
repaired where Go repairs it (``1.22.x`` reads as ``1.22``), and retractions
it cannot parse are dropped silently. The ``toolchain`` line is recorded as
written and never checked, because ParseLax ignores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modgate.formats.gomod_syntax import Block, GoModError, Line, parse_string, parse_syntax
from modgate.protocol import semver
from modgate.protocol.module import (
    InvalidVersionError,
    canonical_version,
    check_path_major,
    go_quote,
    split_path_version,
)

__all__ = [
    "GoMod",
    "GoModError",
    "VersionInterval",
    "auto_quote",
    "must_quote",
    "parse_gomod",
    "synthesize_gomod",
]

GO_VERSION_RE = re.compile(r"([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?")
_LAX_GO_VERSION_RE = re.compile(r"v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)")
_BLOCK_VERBS = frozenset(
    {"module", "godebug", "require", "exclude", "replace", "retract", "tool", "ignore"}
)


@dataclass(frozen=True, slots=True)
class VersionInterval:
    """Versions from ``low`` to ``high``, both inclusive (one version: ``low == high``)."""

    low: str
    high: str
    rationale: str = ""

    def contains(self, version: str) -> bool:
        """Whether ``version`` is retracted by this interval (semver order, as Go)."""
        return semver.compare(self.low, version) <= 0 <= semver.compare(self.high, version)


@dataclass(frozen=True, slots=True)
class GoMod:
    module: str | None = None
    go: str | None = None
    toolchain: str | None = None
    retract: tuple[VersionInterval, ...] = ()


def _rationale(line: Line, block: Block | None) -> str:
    comments = line.before + line.suffix
    if block is not None and not comments:
        comments = block.before
    return "\n".join(c.removeprefix("//").strip() for c in comments if c.startswith("//"))


def _version_interval(args: list[str], rationale: str) -> VersionInterval | None:
    try:
        if args and args[0] not in ("[", "("):
            v = parse_string(args[0])
            return VersionInterval(v, v, rationale)
        if len(args) >= 5 and args[0] == "[" and args[2] == "," and args[4] == "]":
            return VersionInterval(parse_string(args[1]), parse_string(args[3]), rationale)
    except ValueError:
        pass
    return None


class _Reader:
    def __init__(self) -> None:
        self.module: str | None = None
        self.go: str | None = None
        self.toolchain: str | None = None
        self.retract: list[VersionInterval] = []
        self.seen: set[str] = set()

    def add(self, line: Line, verb: str, args: list[str], block: Block | None) -> None:
        if verb in ("module", "go"):
            if verb in self.seen:
                raise GoModError(line.line, f"repeated {verb} statement")
            self.seen.add(verb)
        if verb == "module":
            if len(args) != 1:
                raise GoModError(line.line, "usage: module module/path")
            self.module = self._string(line, args[0])
        elif verb == "go":
            self.go = self._go_version(line, args)
        elif verb == "toolchain" and self.toolchain is None and len(args) == 1:
            self.toolchain = args[0]
        elif verb == "require":
            self._require(line, args)
        elif verb == "ignore":
            if len(args) != 1:
                raise GoModError(line.line, "ignore directive expects exactly one argument")
            self._string(line, args[0])
        elif verb == "retract":
            interval = _version_interval(args, _rationale(line, block))
            if interval is not None:
                self.retract.append(interval)

    @staticmethod
    def _string(line: Line, token: str) -> str:
        try:
            return parse_string(token)
        except ValueError as exc:
            raise GoModError(line.line, f"invalid quoted string: {exc}") from None

    @staticmethod
    def _go_version(line: Line, args: list[str]) -> str:
        if len(args) != 1:
            raise GoModError(line.line, "go directive expects exactly one argument")
        if GO_VERSION_RE.fullmatch(args[0]):
            return args[0]
        lax = _LAX_GO_VERSION_RE.fullmatch(args[0])
        if lax is None:
            raise GoModError(line.line, f"invalid go version '{args[0]}': must match format 1.23.0")
        return lax.group(1)

    def _require(self, line: Line, args: list[str]) -> None:
        if len(args) != 2:
            raise GoModError(line.line, "usage: require module/path v1.2.3")
        path = self._string(line, args[0])
        try:
            version = parse_string(args[1])
        except ValueError as exc:
            raise GoModError(
                line.line, f"require {path}: version {args[1]!r} invalid: {exc}"
            ) from None
        canonical = canonical_version(version)
        if not canonical:
            raise GoModError(
                line.line,
                f"require {path}: version {version!r} invalid: must be of the form v1.2.3",
            )
        _, path_major, ok = split_path_version(path)
        if not ok:
            raise GoModError(line.line, f"require {path}: invalid module path")
        try:
            check_path_major(canonical, path_major)
        except InvalidVersionError as exc:
            raise GoModError(line.line, f"require {path}: {exc}") from None


def parse_gomod(data: bytes) -> GoMod:
    """Read a go.mod as the go command reads a dependency's; raises :class:`GoModError`."""
    stmts = parse_syntax(data)
    reader = _Reader()
    for stmt in stmts:
        if isinstance(stmt, Line):
            reader.add(stmt, stmt.tokens[0], stmt.tokens[1:], None)
        elif len(stmt.tokens) == 1 and stmt.tokens[0] in _BLOCK_VERBS:
            for line in stmt.lines:
                reader.add(line, stmt.tokens[0], line.tokens, stmt)
    return GoMod(reader.module, reader.go, reader.toolchain, tuple(reader.retract))


def must_quote(s: str) -> bool:
    """Whether ``s`` needs quoting to be one go.mod token (modfile.MustQuote)."""
    for c in s:
        if c in " \"'`":
            return True
        if c in "()[]{},":
            if len(s) > 1:
                return True
        elif not (c.isprintable() or "\udc80" <= c <= "\udcff"):
            return True
    return s == "" or "//" in s or "/*" in s


def auto_quote(s: str) -> str:
    """``s``, or its Go quotation when it must be quoted (modfile.AutoQuote)."""
    return go_quote(s) if must_quote(s) else s


def synthesize_gomod(path: str) -> bytes:
    """The go.mod the go command serves for a module version without one."""
    return f"module {auto_quote(path)}\n".encode("utf-8", "surrogateescape")
