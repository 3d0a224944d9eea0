"""Which lines of a log can matter at all, found fast.

Every line that can matter holds one of :data:`KEYWORDS`: go's own errors
(nearly all start with ``go: `` or name go.mod or go.sum), git, curl and TLS
errors, CI timeout and failure markers, download activity and error-looking
lines; or a compiler error position (a pattern with a literal start, which
the regular expression engine finds fast). A line with none of them is
skipped unread, and :class:`Scanner` skips whole runs of such lines with one
search of the block for all keywords at once (a prefix tree of the words,
see :mod:`~modgate.doctor.diagnose.words`), which keeps a 50 MB log fast: in
a typical CI log most lines are test output and progress.

Every word a rule needs (:data:`~modgate.doctor.diagnose.rules.RULE_WORDS`)
is a keyword too, so a rule can match any line it is written for, wherever
go printed it (an indented line of a ``requires``/``imports`` chain, a line
another tool wrapped). The corpus test checks that reading every line finds
nothing more.
"""

from __future__ import annotations

import re

from modgate.doctor.diagnose.rules import RULE_WORDS
from modgate.doctor.diagnose.words import word_pattern

TIMEOUT_WORDS = (
    "anceled", "ANCELED", "maximum execution time", "took longer", "timed out", "Terminated",
)  # fmt: skip
KEYWORDS: tuple[str, ...] = (
    "go: ", "go.mod", "go.sum", "GO", "verifying", "checksum", "-insecure", "-mod=",
    "flag provided", "pattern ", "main module", "requires Go", "x509", "tls:", "TLS", "SSL",
    "certificate", "ssh:", "Permission denied", "remote: ", "dial tcp", "no such host", "refused",
    "unreachable", "timeout", "reset by peer", "deadline", "no space left", "quota",
    "read-only", "go mod ", "go build", "go get", "go install", "go list", "go vet",
    "go generate", "# get http", *TIMEOUT_WORDS, "exit code", "exit status", "non-zero",
    "did not complete", "FAIL", "panic", "error:", "error ", "Error:", "Error ", "ERROR",
    "rror]", "fatal", "Fatal", "FATAL", "failed", "Failed", "FAILED", "denied", "cannot",
    "unable to", "# ", "vet:",
)  # fmt: skip
COMPILER_ERROR = re.compile(r"\.go:\d+:\d+: ")
# Each starts with a literal character, like the words, so one search skips
# every position where nothing can start.
_SCAN_PATTERNS = (COMPILER_ERROR,)
_ANY_KEYWORD = re.compile(
    "|".join(
        [word_pattern((*KEYWORDS, *RULE_WORDS)), *(pattern.pattern for pattern in _SCAN_PATTERNS)]
    )
)
"""Matches where a keyword or a scan pattern starts: one search tests a whole line."""


def is_interesting(raw: str) -> bool:
    """True when ``raw`` holds one of :data:`KEYWORDS` or a compiler error position."""
    return _ANY_KEYWORD.search(raw) is not None


class Scanner:
    """Finds the next line of a block that holds a keyword, searching the block once."""

    def __init__(self, block: str) -> None:
        self.block = block

    def next_line(self, pos: int) -> int:
        """Where the first line at or after ``pos`` holding a keyword starts, or -1.

        ``pos`` is the start of a line.
        """
        found = _ANY_KEYWORD.search(self.block, pos)
        if found is None:
            return -1
        return max(self.block.rfind("\n", pos, found.start()) + 1, pos)
