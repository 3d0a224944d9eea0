"""A project's go.sum lines and go.mod requirements, as ``modgate verify`` reads them.

go.sum: one ``<path> <version>[/go.mod] <hash>`` per line (the go command
splits on white space and ignores blank lines). go.mod: the ``module`` and
``go`` lines, ``require`` (with ``// indirect``) and ``replace`` directives,
read with the same lexer as the rest of modgate (``gomod_syntax``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modgate.formats.gomod_syntax import Block, GoModError, Line, parse_string, parse_syntax
from modgate.protocol.module import ModuleVersion

GO_MOD_SUFFIX = "/go.mod"
INDIRECT = "// indirect"
ARROW = "=>"


@dataclass(frozen=True, slots=True)
class SumLine:
    """One go.sum line: ``gomod`` for the ``/go.mod`` hash line."""

    mv: ModuleVersion
    gomod: bool
    hash: str
    line: int

    @property
    def key(self) -> tuple[ModuleVersion, bool]:
        return self.mv, self.gomod


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    text: str


def parse_gosum(text: str) -> tuple[list[SumLine], list[BadLine]]:
    """The lines of a go.sum, and the ones that are not three fields."""
    lines: list[SumLine] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 3:
            bad.append(BadLine(number, raw))
            continue
        path, version, h = fields
        gomod = version.endswith(GO_MOD_SUFFIX)
        version = version.removesuffix(GO_MOD_SUFFIX)
        lines.append(SumLine(ModuleVersion(path, version), gomod, h, number))
    return lines, bad


@dataclass(frozen=True, slots=True)
class Requirement:
    mv: ModuleVersion
    indirect: bool
    line: int


@dataclass(frozen=True, slots=True)
class Replacement:
    """``old[@version] => new[@version]``; ``new.version`` is "" for a local directory."""

    old: ModuleVersion  # version "" replaces every version
    new: ModuleVersion
    line: int

    @property
    def local(self) -> bool:
        return self.new.version == ""


@dataclass(slots=True)
class Requirements:
    module: str | None = None
    go: str | None = None
    require: list[Requirement] = field(default_factory=list)
    replace: list[Replacement] = field(default_factory=list)

    def effective(self, mv: ModuleVersion) -> ModuleVersion | None:
        """What ``mv`` stands for after the replace directives; None for a local directory."""
        chosen: Replacement | None = None
        for r in self.replace:
            matches = r.old.path == mv.path and r.old.version in ("", mv.version)
            if matches and (chosen is None or r.old.version):  # a versioned replace wins
                chosen = r
        if chosen is None:
            return mv
        return None if chosen.local else chosen.new


def _is_indirect(line: Line) -> bool:
    return any(c.strip() == INDIRECT or c.strip().startswith(INDIRECT + ";") for c in line.suffix)


def parse_requirements(data: bytes) -> Requirements:
    """The module, go, require and replace directives of a go.mod; raises GoModError."""
    out = Requirements()
    for stmt in parse_syntax(data):
        if isinstance(stmt, Line):
            _add(out, stmt.tokens[0], stmt.tokens[1:], stmt)
        elif isinstance(stmt, Block) and len(stmt.tokens) == 1:
            for line in stmt.lines:
                _add(out, stmt.tokens[0], line.tokens, line)
    return out


def _string(line: Line, token: str) -> str:
    try:
        return parse_string(token)
    except ValueError as exc:
        raise GoModError(line.line, f"invalid quoted string: {exc}") from None


def _add(out: Requirements, verb: str, args: list[str], line: Line) -> None:
    if verb == "module" and len(args) == 1:
        out.module = _string(line, args[0])
    elif verb == "go" and len(args) == 1:
        out.go = args[0]
    elif verb == "require":
        if len(args) != 2:
            raise GoModError(line.line, "usage: require module/path v1.2.3")
        mv = ModuleVersion(_string(line, args[0]), _string(line, args[1]))
        out.require.append(Requirement(mv, _is_indirect(line), line.line))
    elif verb == "replace":
        if ARROW not in args:
            raise GoModError(line.line, "usage: replace module/path [v1.2.3] => other [v1.2.3]")
        arrow = args.index(ARROW)
        left, right = args[:arrow], args[arrow + 1 :]
        if len(left) not in (1, 2) or len(right) not in (1, 2):
            raise GoModError(line.line, "usage: replace module/path [v1.2.3] => other [v1.2.3]")
        old = ModuleVersion(
            _string(line, left[0]), _string(line, left[1]) if len(left) == 2 else ""
        )
        new_version = _string(line, right[1]) if len(right) == 2 else ""
        out.replace.append(
            Replacement(old, ModuleVersion(_string(line, right[0]), new_version), line.line)
        )
