"""Makefiles: exported Go settings and the go commands of recipes.

make passes a variable to the commands of recipes only when it is exported
(``export GOPROXY=...``, ``export GOPROXY`` after an assignment, or every
variable with ``.EXPORT_ALL_VARIABLES:``); a plain ``GOPROXY := x`` stays a
make variable. Exported settings are judged like any other setting, at the
line that sets them. Each recipe line (a line starting with a tab, joined
with its ``\\`` continuations) runs in its own shell, so it is checked as a
script of its own with the exported settings in force; ``$(VAR)`` and
``${VAR}`` are make expansions, which doctor treats as unknown values, and
``$$`` is the shell's ``$``.
"""

from __future__ import annotations

import re

from modgate.doctor.analyzers import goenv
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Scope, Setting
from modgate.doctor.analyzers.shell import check_script

_ASSIGN_RE = re.compile(
    r"^(?P<export>export\s+|override\s+)*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?P<op>[:?+!]?=|::=)\s*(?P<value>.*)$"
)
_EXPORT_NAMES_RE = re.compile(r"^export\s+([A-Za-z_][A-Za-z0-9_\s]*)$")
_MAKE_EXPANSION_RE = re.compile(r"\$[({]")
_EXPORT_ALL = ".EXPORT_ALL_VARIABLES"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash-newline continuations joined."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        out.append((start, "\n".join(pending) if raw.startswith("\t") else " ".join(pending)))
        pending = []
    if pending:
        out.append((start, " ".join(pending)))
    return out


def check_makefile(file: str, text: str, ctx: RepoContext) -> None:
    export_all = _EXPORT_ALL in text
    assigned: dict[str, Setting] = {}
    exported: set[str] = set()
    scope = Scope()
    recipes: list[tuple[int, str]] = []
    for number, line in _logical_lines(text):
        if line.startswith("\t"):
            recipes.append((number, line[1:]))
            continue
        stripped = line.split("#", 1)[0].strip()
        names = _EXPORT_NAMES_RE.match(stripped)
        if names is not None:
            for name in names.group(1).split():
                exported.add(name)
                if name in assigned:
                    _apply(assigned[name], scope, ctx)
            continue
        m = _ASSIGN_RE.match(stripped)
        if m is None or m.group("name") not in goenv.WATCHED:
            continue
        name, value = m.group("name"), m.group("value").strip()
        setting = Setting(name, value, file, number, known=_MAKE_EXPANSION_RE.search(value) is None)
        assigned[name] = setting
        if "export" in (m.group("export") or "") or export_all or name in exported:
            exported.add(name)
            _apply(setting, scope, ctx)
    goenv.check_scope(scope, ctx.report)
    for number, recipe in recipes:
        script = recipe.lstrip("@-+ \t").replace("$$", "$")
        run = check_script(script, number, file, scope, ctx)
        for _, call_scope in run.go_calls:
            goenv.check_scope(call_scope, ctx.report)


def _apply(setting: Setting, scope: Scope, ctx: RepoContext) -> None:
    goenv.check_setting(setting, ctx.modules, ctx.report)
    scope.settings[setting.name] = setting
