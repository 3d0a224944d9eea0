"""Print findings: JSON for scripts, text for people (colored only when asked)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from modgate.doctor.diagnose.finding import Finding

TEXT_WIDTH = 100
EVIDENCE_WIDTH = 240
"""Evidence lines longer than this are shortened in text output (JSON keeps them whole)."""
INDENT = "   "

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_RED = "\x1b[31m"
_YELLOW = "\x1b[33m"
_GREEN = "\x1b[32m"
_CYAN = "\x1b[36m"
LIKELY = 0.8
"""At or above this confidence a finding is shown as likely (red), below as possible."""


def render_json(findings: Sequence[Finding]) -> str:
    """A JSON list of findings with exactly cause, module, evidence, fix and confidence."""
    return json.dumps([finding.to_json() for finding in findings], indent=2)


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def _shorten(line: str) -> str:
    return line if len(line) <= EVIDENCE_WIDTH else line[: EVIDENCE_WIDTH - 3] + "..."


def _finding_text(number: int, finding: Finding, color: bool) -> list[str]:
    about = finding.about
    module = f"  {finding.module}" if finding.module is not None else ""
    level = _RED if finding.confidence >= LIKELY else _YELLOW
    head = (
        f"{number}. {_paint(str(finding.cause), _BOLD + level, color)}"
        f"{_paint(module, _CYAN, color)}  (confidence {finding.confidence:.2f})"
    )
    lines = [head, f"{INDENT}{about.title}"]
    if finding.evidence:
        lines.append(f"{INDENT}evidence (log line {finding.line}):")
        lines += [_paint(f"{INDENT}  | {_shorten(text)}", _DIM, color) for text in finding.evidence]
    fix = textwrap.wrap(
        about.fix,
        width=TEXT_WIDTH,
        initial_indent=f"{INDENT}fix: ",
        subsequent_indent=INDENT + "     ",
    )
    lines += fix
    lines.append(f"{INDENT}docs: {about.docs}")
    return lines


def render_text(findings: Sequence[Finding], *, color: bool = False) -> str:
    """A readable report, most likely root cause first, ending with a one-line summary."""
    if not findings:
        return _paint("no failure found", _GREEN, color)
    lines: list[str] = []
    for number, finding in enumerate(findings, start=1):
        lines += _finding_text(number, finding, color)
        lines.append("")
    count = len(findings)
    noun = "failure" if count == 1 else "failures"
    lines.append(f"{count} {noun} found; most likely cause: {findings[0].cause}")
    return "\n".join(lines)
