"""Strip what CI systems and docker add around a command's output lines.

A line of a build log may carry, outside in: a GitLab section marker
(``section_start:1715678463:step_script\\r``), a CI timestamp
(GitHub Actions ``2024-05-14T09:21:03.1234567Z``, GitLab's
``2024-05-14T09:21:03.123456Z 01E``, Jenkins ``[2024-05-14T09:21:03.123Z]``),
a workflow command (``##[error]``, ``##[group]``, ``::error::``), a BuildKit
step prefix (``#12 3.456``, or just ``3.456`` in the error summary), the openSUSE
build service's ``[   24s]``, a
classic docker build step (``Step 3/7 :``, leaving ``RUN go mod download``), ANSI
colors and erase codes, and carriage-return progress updates. What is left
is the text the command printed, which is what the rules match.

Normalizing is the hot path of ``diagnose`` (every line of a 50 MB log goes
through it), so each step is skipped by a cheap test when it cannot apply.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[\]_][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
"""CSI, OSC and APC sequences (Buildkite's ``ESC _bk;t=...BEL`` timestamps), and short escapes."""
_SECTION = re.compile(r"section_(?:start|end):\d+:[A-Za-z0-9_.\-\[\]=,]*\r?")
_PREFIX = re.compile(
    r"""
    (?:
        \[?\d{4}-\d\d-\d\d[T\ ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?\ ?
        (?:[0-9a-f]{2}[OE]\+?\ |(?:stdout|stderr)\ [FP]\ )?  # GitLab; Kubernetes (CRI)
      | \[\d\d:\d\d:\d\d\][WEIi]?:\s+(?:\[Step\ \d+/\d+\]\ )?  # TeamCity
      | \[?\d\d:\d\d:\d\d(?:\.\d+)?\]?\                # bare clock time
      | \#\#\[(?P<cmd>[a-z]+)\]               # GitHub workflow command
      | ::(?P<cmd2>[a-z-]+)(?:\ [^:]*)?::       # ::error file=x::message
      | (?P<step>Step\ \d+/\d+\ :\ )         # classic docker build step
      | \#\d+\ (?:\d+\.\d+\ )?                # BuildKit step (and seconds)
      | \d+\.\d{3}\                           # BuildKit error summary seconds
      | \[\ *\d+s\]\                          # openSUSE build service seconds
    )
    """,
    re.VERBOSE,
)
_PREFIX_START = frozenset("0123456789[#:S")
_INDENTS = ("\t", " ")
_MAX_PREFIXES = 4
"""Prefixes nest (a GitHub timestamp in front of a BuildKit step prefix); more is noise."""

MARK_NONE = 0
MARK_ERROR = 1
"""The CI printed the line as an error annotation (``##[error]``, ``::error::``)."""
MARK_WARNING = 2
MARK_GROUP = 3
"""A ``##[group]`` header: the text is the step's name, e.g. ``Run go mod download``."""

_MARKS = {
    "error": MARK_ERROR,
    "warning": MARK_WARNING,
    "group": MARK_GROUP,
    "section": MARK_GROUP,
    "command": MARK_GROUP,
}


class Line(NamedTuple):
    """A log line after normalization; ``indented`` is true when go printed it after a tab."""

    text: str
    mark: int
    indented: bool


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def _last_segment(text: str) -> str:
    """A terminal shows only what was written after the last carriage return."""
    for segment in reversed(text.split("\r")):
        if segment.strip():
            return segment
    return ""


def normalize(raw: str) -> Line:
    """The text of one log line (without its line ending) and the CI's mark on it."""
    return Line._make(normalize_parts(raw))


def normalize_parts(raw: str) -> tuple[str, int, bool]:
    """:func:`normalize` as a plain tuple (text, mark, indented), for the hot path."""
    text = raw.rstrip("\r\n")
    mark = MARK_NONE
    if "\r" in text:
        if "section_" in text:
            text = _SECTION.sub("", text)
        if "\r" in text:
            text = _last_segment(text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if text and text[0] in _PREFIX_START:
        for _ in range(_MAX_PREFIXES):
            found = _PREFIX.match(text)
            if found is None:
                break
            end = found.end()
            if end == 0:
                break
            kind = found.lastgroup  # the named group of the branch that matched, if any
            if kind == "step":
                mark = MARK_GROUP
            elif kind is not None:
                mark = _MARKS.get(found.group(kind), mark)
            text = text[end:]
            if not text or text[0] not in _PREFIX_START:
                break
    if "section_" in text:
        text = _SECTION.sub("", text)
    return text.strip(), mark, text[:1] in _INDENTS
