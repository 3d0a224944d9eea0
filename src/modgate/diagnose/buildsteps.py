"""What a log shows besides module failures: the go step, test output, compile/vet/test failures.

A build log is more than go's module messages. :class:`BuildSteps` follows
the parts that matter for not raising false alarms:

- which go command runs (``go vet``, ``go test``...), from the command lines
  CI systems and shells echo (``Run go vet ./...``, ``$ go test``,
  ``RUN go build``);
- whether a line is a *test's own output*: between ``=== RUN`` (or a
  ``--- FAIL:`` header) and the package's ``ok``/``FAIL`` summary, lines are
  what the tests printed. A passing test named after a checksum mismatch, or
  one that logs ``x509: certificate signed by unknown authority`` about its own
  fixture, says nothing about modules, so rules never read those lines;
- failures that are not module problems, by kind: ``compile`` (a position
  ``file.go:L:C:`` under a ``# package`` header or from ``go build``),
  ``vet`` (under a ``# [package]`` header or from ``go vet``) and ``test`` (a
  ``--- FAIL``, ``FAIL package``, a test panic or timeout).

Everything is bounded: one command, one section, one flag, and the first
evidence line of each kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KIND_COMPILE = "compile"
KIND_VET = "vet"
KIND_TEST = "test"
KINDS = (KIND_COMPILE, KIND_VET, KIND_TEST)
"""The kinds of non-module failure, in the order they are reported."""

_COMMAND = re.compile(
    r"(?:^|\bRun |\$ |RUN |\+ |&& |; )go (?P<command>build|vet|test|install|run|generate|get|list"
    r"|mod \w+)\b"
)
_TEST_START = re.compile(r"^=== (?:RUN|CONT|PAUSE|NAME)\b|^--- (?:PASS|SKIP): ")
_TEST_FAILED = re.compile(r"^--- FAIL: ")
_PACKAGE_OK = re.compile(r"^ok\s+\S+\s")
_PACKAGE_BUILD_FAILED = re.compile(r"^FAIL\s+\S+\s+\[(?:build|setup) failed\]")
_PACKAGE_FAILED = re.compile(r"^FAIL\s+\S+\s+(?:[\d.]+s|\(cached\))")
_FAIL = "FAIL"
_PASS = re.compile(r"^PASS$")
_TEST_PANIC = re.compile(r"^panic: ")
_JSON_EVENT = re.compile(r'^\{"Time":"[^"]*","Action":"(?P<action>\w+)"')
_VET_HEADER = re.compile(r"^# \[[^\]\s]+\]$")
_PACKAGE_HEADER = re.compile(r"^# [\w.~/-]+(?: \[[^\]\s]+\])?$")
_POSITION = re.compile(r"\.go:\d+:\d+: ")
_VET_LINE = re.compile(r"^vet: ")
_TEST_LOG = re.compile(r"^\w+_test\.go:\d+: ")
_GO_MESSAGE = "go: "
TEST_MARKERS = ("=== ", "--- PASS", "--- SKIP", "ok  ", "PASS")
"""Substrings of the lines that open and close a test's output (other than FAIL lines).

They are not scan keywords (a ``go test -v`` log is mostly these lines):
:func:`last_test_marker` finds the last one in a run of skipped lines, which
is all the state needs.
"""


def has_test_marker(raw: str) -> bool:
    """True when ``raw`` may be a line that opens or closes a test's output."""
    return any(marker in raw for marker in TEST_MARKERS)


def last_test_marker(block: str, start: int, end: int) -> int:
    """Where the last :data:`TEST_MARKERS` substring in ``block[start:end]`` starts, or -1."""
    return max(block.rfind(marker, start, end) for marker in TEST_MARKERS)


@dataclass(frozen=True, slots=True)
class OtherFailure:
    """A failure that is not a module problem: its kind, where it shows first, and that line."""

    kind: str
    line: int
    evidence: str


class BuildSteps:
    """Feed it normalized lines (with their numbers); it says which ones are test output."""

    def __init__(self) -> None:
        self._command: str | None = None
        self._section: str | None = None
        self._in_test = False
        self._failures: dict[str, OtherFailure] = {}

    @property
    def failures(self) -> list[OtherFailure]:
        """The non-module failures seen, one per kind, in :data:`KINDS` order."""
        return [self._failures[kind] for kind in KINDS if kind in self._failures]

    def program_output(self, number: int, text: str) -> bool:
        """Track the steps; True when ``text`` is output of a program go built (a test).

        Such a line is never a go message, so no rule reads it.
        """
        if text.startswith(_GO_MESSAGE):
            self._in_test = False
            return False
        command = _COMMAND.search(text) if "go " in text else None
        if command is not None:
            self._command = command.group("command")
            self._section = None
            self._in_test = False
            return False
        return self._test_line(number, text)

    def marker(self, text: str) -> bool:
        """Follow a line that opens or closes test output (not a FAIL); False if it is none."""
        first = text[:1]
        if first in {"=", "-"}:
            if _TEST_START.match(text):
                self._in_test = True
                return True
        elif first in "Po" and (_PASS.match(text) or _PACKAGE_OK.match(text)):
            self._in_test = False
            return True
        return False

    def _test_line(self, number: int, text: str) -> bool:
        first = text[:1]
        if first in "=-" and (_TEST_START.match(text) or _TEST_FAILED.match(text)):
            self._in_test = True
            if _TEST_FAILED.match(text):
                self._record(KIND_TEST, number, text)
            return True
        if first == "{":
            event = _JSON_EVENT.match(text)
            if event is not None:
                if event.group("action") == "fail" and '"Test":' in text:
                    self._record(KIND_TEST, number, text)
                return True
        if first in "PFo":
            if _PASS.match(text) or _PACKAGE_OK.match(text):
                self._in_test = False
                return True
            if _PACKAGE_BUILD_FAILED.match(text):
                self._in_test = False
                return True
            if _PACKAGE_FAILED.match(text) or (text == _FAIL and self._in_test):
                self._in_test = False
                self._record(KIND_TEST, number, text)
                return True
            if text == _FAIL:
                return True
        if self._in_test or _TEST_LOG.match(text):
            if _TEST_PANIC.match(text):
                self._record(KIND_TEST, number, text)
            return True
        if first == "#":
            if _VET_HEADER.match(text):
                self._section = KIND_VET
            elif _PACKAGE_HEADER.match(text):
                self._section = KIND_COMPILE
        elif first == "p" and text.startswith("panic: test timed out"):
            self._record(KIND_TEST, number, text)
            return True
        return False

    def unexplained(self, number: int, text: str) -> None:
        """A line no rule explained: a compiler or vet position, or ``vet:``, is a failure."""
        if _VET_LINE.match(text):
            self._record(KIND_VET, number, text)
        elif _POSITION.search(text) and not text.startswith(_GO_MESSAGE):
            vet = self._section == KIND_VET or (self._section is None and self._command == "vet")
            self._record(KIND_VET if vet else KIND_COMPILE, number, text)

    def _record(self, kind: str, number: int, text: str) -> None:
        if kind not in self._failures:
            self._failures[kind] = OtherFailure(kind, number, text)
