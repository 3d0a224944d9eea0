"""go.mod rules: the go and toolchain lines, go.sum beside it, and the images that build it.

The main module's go.mod is read strictly, as the go command reads it in
the module being built: ``go 1.22.x`` is an error there (``invalid go
version '1.22.x': must match format 1.23.0``), and so is ``toolchain 1.23``.
The module paths it names (module, require, replace) are collected for the
rules about GOPRIVATE-style patterns.

A Dockerfile builds the nearest go.mod at or above its directory (or the
only go.mod of the repository). An official golang image of Go 1.21 or
later sets GOTOOLCHAIN=local, so a go line newer than the image's Go fails:
``go: go.mod requires go >= X (running go Y; GOTOOLCHAIN=local)``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import ModuleRef
from modgate.doctor.catalog import (
    GM023_GO_LINE_NEWER_THAN_IMAGE,
    GM040_GOMOD_BAD_VERSION_LINE,
    GM041_GOMOD_WITHOUT_GOSUM,
)
from modgate.doctor.parsers import goimage
from modgate.formats.gomod import GO_VERSION_RE
from modgate.formats.gomod_syntax import Block, GoModError, Line, parse_string, parse_syntax

_TOOLCHAIN_RE = re.compile("go" + GO_VERSION_RE.pattern + r"(-.+)?")
_LOCAL_PATH_PREFIXES = ("./", "../", "/")
_DEFAULT_TOOLCHAIN = "default"


@dataclass(slots=True)
class GoModFacts:
    file: str
    module: str | None = None
    go: tuple[str, int] | None = None
    toolchain: tuple[str, int] | None = None
    requires: list[ModuleRef] = field(default_factory=list)
    others: list[ModuleRef] = field(default_factory=list)
    """Replacement module paths (not requirements, but fetched all the same)."""
    local_replaces: list[str] = field(default_factory=list)
    """Directories (repository paths) that ``replace ... => ./dir`` points to."""

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.file)


def _lines(stmts: list[Line | Block]) -> list[tuple[str, Line]]:
    out: list[tuple[str, Line]] = []
    for stmt in stmts:
        if isinstance(stmt, Line):
            out.append((stmt.tokens[0], Line(stmt.tokens[1:], stmt.line)))
        elif len(stmt.tokens) == 1:
            out.extend((stmt.tokens[0], line) for line in stmt.lines)
    return out


def _path(token: str) -> str | None:
    try:
        return parse_string(token)
    except ValueError:
        return None


def read_gomod(file: str, text: str) -> GoModFacts:
    """What doctor needs from a go.mod; GoModError when the syntax itself is broken."""
    facts = GoModFacts(file)
    for verb, line in _lines(parse_syntax(text.encode("utf-8", "surrogateescape"))):
        args = line.tokens
        if verb == "module" and args:
            facts.module = _path(args[0])
        elif verb == "go" and len(args) == 1:
            facts.go = (args[0], line.line)
        elif verb == "toolchain" and len(args) == 1:
            facts.toolchain = (args[0], line.line)
        elif verb == "require" and args:
            path = _path(args[0])
            if path:
                facts.requires.append(ModuleRef(path, file, line.line))
        elif verb == "replace" and "=>" in args:
            target = args[args.index("=>") + 1 :]
            new_path = _path(target[0]) if target else None
            if new_path and not new_path.startswith(_LOCAL_PATH_PREFIXES):
                facts.others.append(ModuleRef(new_path, file, line.line))
            elif new_path and not new_path.startswith("/"):
                here = posixpath.dirname(file)
                facts.local_replaces.append(posixpath.normpath(posixpath.join(here, new_path)))
    return facts


def check_gomod(
    file: str, text: str, ctx: RepoContext, *, has_gosum: bool, has_vendor: bool
) -> GoModFacts | None:
    try:
        facts = read_gomod(file, text)
    except GoModError:
        return None  # the go command reports a broken go.mod clearly; nothing to add
    ctx.add_modules(facts.requires)
    ctx.add_modules(facts.others)
    if facts.go is not None and not GO_VERSION_RE.fullmatch(facts.go[0]):
        ctx.report.emit(
            GM040_GOMOD_BAD_VERSION_LINE,
            file,
            facts.go[1],
            f"invalid go version '{facts.go[0]}': must match format 1.23.0",
        )
    toolchain = facts.toolchain
    if (
        toolchain is not None
        and toolchain[0] != _DEFAULT_TOOLCHAIN
        and not _TOOLCHAIN_RE.fullmatch(toolchain[0])
    ):
        ctx.report.emit(
            GM040_GOMOD_BAD_VERSION_LINE,
            file,
            toolchain[1],
            f"invalid toolchain version '{toolchain[0]}': must match format go1.23.0",
        )
    if facts.requires and not has_gosum and not has_vendor:
        first = facts.requires[0]
        ctx.report.emit(
            GM041_GOMOD_WITHOUT_GOSUM,
            file,
            first.line,
            f"go.mod requires {len(facts.requires)} module(s) and there is no go.sum beside it: "
            f"go build fails with 'missing go.sum entry for module providing package'",
        )
    return facts


def builds(dockerfile: str, gomods: dict[str, GoModFacts]) -> GoModFacts | None:
    """The go.mod a Dockerfile builds: the nearest at or above it, or the only one."""
    directory = posixpath.dirname(dockerfile)
    while True:
        candidate = posixpath.join(directory, "go.mod") if directory else "go.mod"
        if candidate in gomods:
            return gomods[candidate]
        if not directory:
            break
        directory = posixpath.dirname(directory)
    return next(iter(gomods.values())) if len(gomods) == 1 else None


def check_images(gomods: dict[str, GoModFacts], ctx: RepoContext) -> None:
    for image in ctx.golang_images:
        facts = builds(image.file, gomods)
        if facts is None or facts.go is None:
            continue
        needed = goimage.go_version_key(facts.go[0])
        newest = goimage.newest_in_tag(image.version)
        if needed is None or newest is None or needed <= newest:
            continue
        ctx.report.emit(
            GM023_GO_LINE_NEWER_THAN_IMAGE,
            facts.file,
            facts.go[1],
            f"go {facts.go[0]} is newer than {image.reference} ({image.file}:{image.line}), "
            f"which sets GOTOOLCHAIN=local: 'go: go.mod requires go >= {facts.go[0]} "
            f"(running go {image.version}...; GOTOOLCHAIN=local)'",
        )
