"""Rendering findings as text (for people) and JSON (for programs).

Text groups findings by file, one ``file:line: severity RULE message`` line
each with its fix indented below, and ends with a summary line. Color is
used only when asked for (the CLI decides: a TTY and no ``NO_COLOR``).
JSON is a list of ``{rule, severity, file, line, message, fix?}`` objects in
the same order.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

from modgate.doctor.findings import Finding, Severity

_COLORS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.NOTE: "36"}
_BOLD = "1"
_DIM = "2"


def _style(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(findings: Sequence[Finding], files_scanned: int) -> str:
    if not findings:
        return f"no findings ({_plural(files_scanned, 'file')} scanned)"
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    files = len({f.file for f in findings})
    return (
        f"{_plural(len(findings), 'finding')}: {_plural(counts[Severity.ERROR], 'error')}, "
        f"{_plural(counts[Severity.WARNING], 'warning')}, {_plural(counts[Severity.NOTE], 'note')} "
        f"in {_plural(files, 'file')} ({_plural(files_scanned, 'file')} scanned)"
    )


def render_text(findings: Sequence[Finding], files_scanned: int, *, color: bool = False) -> str:
    lines: list[str] = []
    for file, group in itertools.groupby(findings, key=lambda f: f.file):
        lines.append(_style(file, _BOLD, color))
        for finding in group:
            severity = _style(finding.severity.label, _COLORS[finding.severity], color)
            lines.append(f"  {finding.location}: {severity} {finding.rule} {finding.message}")
            if finding.fix:
                lines.append(_style(f"      fix: {finding.fix}", _DIM, color))
        lines.append("")
    lines.append(summary(findings, files_scanned))
    return "\n".join(lines) + "\n"


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_json() for f in findings], indent=2) + "\n"
