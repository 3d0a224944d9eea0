""".dockerignore rules (moby/patternmatcher): does the build context keep go.mod and go.sum?

Patterns are relative to the context root (a leading ``/`` is dropped and
the pattern cleaned); ``*`` and ``?`` stay inside one path element, ``**``
crosses any number of them, ``[...]`` is a class. A pattern that matches a
directory excludes everything below it. Lines starting with ``!`` re-include,
and the last matching line wins. ``#`` starts a comment line.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass

from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.catalog import (
    GM030_DOCKERIGNORE_EXCLUDES_GOMOD,
)

_GO_FILES = ("go.mod", "go.sum")


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    pattern: str
    line: int
    exclude: bool
    regex: re.Pattern[str]


def _translate(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    rules = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line if exclude else line[1:].strip()
        pattern = posixpath.normpath(pattern.lstrip("/")) if pattern.lstrip("/") else ""
        if not pattern or pattern == ".":
            continue
        rules.append(IgnoreRule(pattern, number, exclude, _translate(pattern)))
    return rules


def excluded_by(rules: list[IgnoreRule], path: str) -> IgnoreRule | None:
    """The rule that keeps ``path`` out of the context, or None when it is sent."""
    parents = [path]
    while "/" in parents[-1]:
        parents.append(parents[-1].rsplit("/", 1)[0])
    decision: IgnoreRule | None = None
    for rule in rules:
        if any(rule.regex.fullmatch(p) for p in parents):
            decision = rule if rule.exclude else None
    return decision


def _clean(source: str) -> str:
    source = source.strip()
    while source.startswith("./"):
        source = source[2:]
    source = source.lstrip("/")
    return posixpath.normpath(source) if source else "."


def _sends(source: str, relative: str, *, nested: bool) -> bool:
    """Whether a COPY of ``source`` (context-relative) copies the go file ``relative``.

    ``COPY . .`` sends a nested go.mod too, but no build uses it: a nested file counts
    only when a COPY names it or a directory above it.
    """
    source = _clean(source)
    if source in (".", "*"):
        return not nested
    if "$" in source:
        return False
    return fnmatch.fnmatchcase(relative, source) or relative.startswith(source.rstrip("/") + "/")


def _used(
    relative: str,
    go_file: str,
    copies: list[tuple[str, tuple[str, ...]]],
    context_dir: str,
    replaced: frozenset[str],
) -> bool:
    """Whether some build in this context copies ``relative`` (or a replace points at it)."""
    nested = "/" in relative
    if nested and posixpath.dirname(go_file) in replaced:
        nested = False  # the main module's local replace needs it
    for dockerfile, sources in copies:
        if context_dir and not dockerfile.startswith(context_dir + "/"):
            continue
        if any(_sends(source, relative, nested=nested) for source in sources):
            return True
    return False


def check_dockerignore(
    file: str,
    text: str,
    ctx: RepoContext,
    go_files: list[str],
    replaced: frozenset[str] = frozenset(),
) -> None:
    """``go_files``: repository paths of every go.mod and go.sum found.

    Only go files that a Dockerfile of this context copies are judged: a nested
    module that no build uses (a tool module, a docs site) may well stay out.
    ``replaced`` holds the directories that a go.mod's local ``replace`` points to.
    """
    context_dir = posixpath.dirname(file)
    rules = parse_dockerignore(text)
    if not rules:
        return
    for go_file in go_files:
        if posixpath.basename(go_file) not in _GO_FILES:
            continue
        if context_dir and not go_file.startswith(context_dir + "/"):
            continue
        relative = go_file[len(context_dir) + 1 :] if context_dir else go_file
        if not _used(relative, go_file, ctx.context_copies, context_dir, replaced):
            continue
        rule = excluded_by(rules, relative)
        if rule is not None:
            ctx.report.emit(
                GM030_DOCKERIGNORE_EXCLUDES_GOMOD,
                file,
                rule.line,
                f"'{rule.pattern}' keeps {relative} out of the build context: COPY of it fails "
                "or the build runs without it",
            )
