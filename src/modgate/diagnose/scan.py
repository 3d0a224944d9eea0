"""Which lines of a log can matter at all, found fast.

Every line that can matter holds one of :data:`KEYWORDS`: go's own errors
(nearly all start with ``go: `` or name go.mod or go.sum), git, curl and TLS
errors, CI timeout and failure markers, download activity and error-looking
lines; or a compiler error position (a pattern with a literal start, which
the regular expression engine finds fast). A line with none of them is
skipped unread, and :class:`Scanner` skips whole runs of such lines with one
search of the block for all keywords at once (a prefix tree of the words,
see :mod:`~modgate.diagnose.words`), which keeps a 50 MB log fast: in
a typical CI log most lines are test output and progress.

Every word a rule needs (:data:`~modgate.diagnose.rules.RULE_WORDS`)
is scanned for too, directly or through a phrase of the same go message
(:data:`RULE_ANCHORS`, :data:`RULE_WORDS_COVERED`), so a rule can match any
line it is written for, wherever go printed it (an indented line of a
``requires``/``imports`` chain, a line another tool wrapped). The corpus
tests check that reading every line finds nothing more.
"""

from __future__ import annotations

import re

from modgate.diagnose.rules import RULE_WORDS
from modgate.diagnose.words import word_pattern

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
RULE_ANCHORS: dict[str, str] = {
    '"git"': 'exec: "git"',
    "zip: ": "not a valid zip",
    "ziphash": "unexpected ziphash",
    "was required as": "required as: ",
    "has been modified": "modified (",
    "HTTP response to HTTPS": "server gave HTTP",
    "Client.Timeout exceeded": "Timeout exceeded",
}
"""Rule words scanned for by a longer phrase of the same go message.

A search for many words is slow when they start with many different
characters; these rule words would add a first character, so the scan looks
for a phrase of the message that starts with a character other words
already have (``zip: not a valid zip file`` is found by ``not a valid zip``).
"""
RULE_WORDS_COVERED: dict[str, str] = {
    "IP SANs": "x509",
    "in PATH": "cannot",
    "invalid": "go.mod",
    "/lookup/": "reading ",
    "build cache": "GO",
    "legacy Common Name": "x509",
    "Repository not found": "remote: ",
    "wrong version number": "SSL",
    "Host key verification": "failed",
    "inconsistent vendoring": "go: ",
}
"""Rule words not scanned for, and the scan word go prints in the same message."""
COMPILER_ERROR = re.compile(r"\.go:\d+:\d+: ")
# Each starts with a literal character, like the words, so one search skips
# every position where nothing can start.
_SCAN_PATTERNS = (COMPILER_ERROR,)
SCAN_WORDS: tuple[str, ...] = (
    *KEYWORDS,
    *RULE_ANCHORS.values(),
    *(word for word in RULE_WORDS if word not in RULE_ANCHORS and word not in RULE_WORDS_COVERED),
)
"""What the scan looks for: the keywords and (directly or by an anchor) every rule word."""
_ANY_KEYWORD = re.compile(
    "|".join([word_pattern(SCAN_WORDS), *(pattern.pattern for pattern in _SCAN_PATTERNS)])
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
