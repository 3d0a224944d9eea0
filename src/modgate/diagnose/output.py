"""Print findings: JSON for scripts, text for people (colored only when asked)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from modgate.diagnose.buildsteps import OtherFailure
from modgate.diagnose.finding import DiagnosedFailure

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
NO_MODULE_FAILURE = "no module failure found"
_KIND_NAMES = {"compile": "a compile error", "vet": "go vet", "test": "a failing test"}
LIKELY = 0.8
"""At or above this confidence a finding is shown as likely (red), below as possible."""


def render_json(findings: Sequence[DiagnosedFailure]) -> str:
    """A JSON list of findings with exactly cause, module, evidence, fix and confidence."""
    return json.dumps([finding.to_json() for finding in findings], indent=2)


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def _shorten(line: str) -> str:
    return line if len(line) <= EVIDENCE_WIDTH else line[: EVIDENCE_WIDTH - 3] + "..."


def _cause_text(finding: DiagnosedFailure, numbers: dict[int, int]) -> list[str]:
    """The causal chain: which earlier failure this one follows from."""
    root = finding.caused_by
    if root is None:
        return []
    number = numbers.get(id(root))
    which = f"#{number} " if number is not None else ""
    return textwrap.wrap(
        f"probably a consequence of {which}{root.cause} (log line {root.line}): after that "
        "failure the build went on without it (a fallback to another source, to direct "
        "fetches or to vendor/), and this is what that path broke. Fix that one first.",
        width=TEXT_WIDTH,
        initial_indent=f"{INDENT}chain: ",
        subsequent_indent=INDENT + "       ",
    )


def _finding_text(
    number: int, finding: DiagnosedFailure, color: bool, numbers: dict[int, int]
) -> list[str]:
    about = finding.about
    module = f"  {finding.module}" if finding.module is not None else ""
    level = _RED if finding.confidence >= LIKELY else _YELLOW
    head = (
        f"{number}. {_paint(str(finding.cause), _BOLD + level, color)}"
        f"{_paint(module, _CYAN, color)}  (confidence {finding.confidence:.2f})"
    )
    lines = [head, f"{INDENT}{about.title}"]
    lines += _cause_text(finding, numbers)
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


def _other_text(others: Sequence[OtherFailure], color: bool) -> str:
    """The report for a log without module failures: what else failed, if anything."""
    if not others:
        return _paint(NO_MODULE_FAILURE, _GREEN, color)
    kinds = ", ".join(_KIND_NAMES.get(other.kind, other.kind) for other in others)
    lines = [_paint(f"{NO_MODULE_FAILURE}; the build failed with {kinds}", _GREEN, color)]
    for other in others:
        lines.append(f"{INDENT}{other.kind} (log line {other.line}):")
        lines.append(_paint(f"{INDENT}  | {_shorten(other.evidence)}", _DIM, color))
    lines.append(
        f"{INDENT}no line of this log points at modules, proxies or go.sum: "
        "fix the code or the test."
    )
    return "\n".join(lines)


def render_text(
    findings: Sequence[DiagnosedFailure],
    *,
    color: bool = False,
    others: Sequence[OtherFailure] = (),
) -> str:
    """A readable report, root cause first, ending with a one-line summary.

    Without findings it says ``no module failure found`` and names the other
    failures seen (compile, vet, test) from ``others``.
    """
    if not findings:
        return _other_text(others, color)
    numbers = {id(finding): number for number, finding in enumerate(findings, start=1)}
    lines: list[str] = []
    for number, finding in enumerate(findings, start=1):
        lines += _finding_text(number, finding, color, numbers)
        lines.append("")
    count = len(findings)
    noun = "failure" if count == 1 else "failures"
    lines.append(f"{count} {noun} found; most likely cause: {findings[0].cause}")
    return "\n".join(lines)
