"""Which lines of a log can matter at all, found fast.

Every line that can matter holds one of :data:`KEYWORDS`: go's own errors
(nearly all start with ``go: `` or name go.mod or go.sum), git, curl and TLS
errors, CI timeout and failure markers, download activity and error-looking
lines; or a compiler error position (a pattern with a literal start, which
the regular expression engine finds fast). A line with none of them is
skipped unread, and :class:`Scanner` skips whole runs of such lines by
searching a block for each keyword in C (``str.find``), which keeps a 50 MB
log fast: in a typical CI log most lines are test output and progress.

The corpus test checks that reading every line finds nothing more.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Callable

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
    "unable to",
)  # fmt: skip
COMPILER_ERROR = re.compile(r"\.go:\d+:\d+: ")
_SCAN_PATTERNS = (COMPILER_ERROR,)


def is_interesting(raw: str) -> bool:
    """True when ``raw`` holds one of :data:`KEYWORDS` or a compiler error position."""
    return any(word in raw for word in KEYWORDS) or any(
        pattern.search(raw) for pattern in _SCAN_PATTERNS
    )


class Scanner:
    """Finds the next line of a block that holds a keyword, scanning the block once per keyword."""

    def __init__(self, block: str) -> None:
        self.block = block
        finders: list[Callable[[int], int]] = [
            functools.partial(block.find, word) for word in KEYWORDS
        ]
        finders += [functools.partial(_pattern_find, pattern, block) for pattern in _SCAN_PATTERNS]
        self.finders = finders
        self.heap = [(-1, index) for index in range(len(finders))]

    def next_line(self, pos: int) -> int:
        """Where the first line at or after ``pos`` holding a keyword starts, or -1."""
        heap = self.heap
        while heap and heap[0][0] < pos:
            _old, index = heapq.heappop(heap)
            hit = self.finders[index](pos)
            if hit >= 0:
                heapq.heappush(heap, (hit, index))
        if not heap:
            return -1
        return max(self.block.rfind("\n", pos, heap[0][0]) + 1, pos)


def _pattern_find(pattern: re.Pattern[str], block: str, pos: int) -> int:
    found = pattern.search(block, pos)
    return found.start() if found is not None else -1
