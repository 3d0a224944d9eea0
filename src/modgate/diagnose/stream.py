"""Read a log from a binary stream in blocks of whole lines, whatever its size or encoding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from modgate.diagnose.buildsteps import OtherFailure
from modgate.diagnose.classify import Diagnoser
from modgate.diagnose.finding import DiagnosedFailure

BLOCK_BYTES = 1024 * 1024
"""How much of the log is read at once."""
MAX_LINE_BYTES = 64 * 1024
"""A line longer than this is cut into pieces, so one huge line cannot exhaust memory."""
_NEWLINE = b"\n"


def read_blocks(stream: BinaryIO) -> Iterator[str]:
    """Text blocks of ``stream`` that end at line boundaries; bad UTF-8 becomes U+FFFD."""
    carry = b""
    while True:
        data = stream.read(BLOCK_BYTES)
        if not data:
            break
        data = carry + data
        cut = data.rfind(_NEWLINE) + 1
        if cut == 0:
            carry = data
            while len(carry) > MAX_LINE_BYTES:
                yield carry[:MAX_LINE_BYTES].decode("utf-8", "replace") + "\n"
                carry = carry[MAX_LINE_BYTES:]
            continue
        carry = data[cut:]
        # A newline byte never occurs inside a UTF-8 sequence, so the cut is safe.
        yield data[:cut].decode("utf-8", "replace")
    if carry:
        yield carry.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Report:
    """A log's module findings (root cause first) and the other failures it shows."""

    findings: list[DiagnosedFailure]
    others: list[OtherFailure]


def diagnose_report(stream: BinaryIO) -> Report:
    """The findings and the non-module failures of the log read from ``stream``."""
    diagnoser = Diagnoser()
    for block in read_blocks(stream):
        diagnoser.feed_text(block)
    return Report(diagnoser.findings(), diagnoser.other_failures())


def diagnose_stream(stream: BinaryIO) -> list[DiagnosedFailure]:
    """The ranked findings of the log read from ``stream``."""
    return diagnose_report(stream).findings
