"""The access log: one JSON object per line, written in batches.

Serving a request appends one tuple to ``records``; formatting and writing
happen in ``flush``, which runs about once a second (the server's tick),
whenever FLUSH_BATCH records are waiting, and at shutdown. Only the path
of the request target is logged: never the query string, and never any
header.

A log opened from a path (``AccessLog.open``) can be reopened (SIGUSR1):
the records waiting are written to the old file first, then the path is
opened again, so logrotate can move the file away without copytruncate and
no line is lost or split between the two files.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import TextIO

FLUSH_INTERVAL = 1.0
"""Seconds between two flushes."""

FILE_BUFFER = 1 << 16
"""Write buffer of an access log file: a flush is one write() of whole lines."""

FLUSH_BATCH = 256
"""Records that force a flush: at 100k requests a second, formatting a whole
second of records at once would stall the event loop for a few hundred ms,
and even 1,024 records (about 1 ms) showed in the p99 latency of hot hits."""

Record = tuple[float, str, bytes, bytes, int, int, float, bool]
"""(wall time, remote address, method, target, status, body bytes, duration s, hot hit)."""

QUOTED_CACHE = 4096
"""Addresses, methods and targets whose JSON form is remembered between records, and
(remote, method, target, status, bytes) whose part of the line is."""

LINE = '{"time":"%s.%03dZ",%s"duration_ms":%.3f,"cache":"%s"}\n'
MIDDLE = '"remote":%s,"method":%s,"path":%s,"status":%d,"bytes":%d,'
"""The part of a line that repeats for a client asking for the same artifact again."""

_PLAIN = re.compile(r"[\x20-\x7e]*")
"""Strings that need no JSON escaping once quotes and backslashes are excluded."""


class AccessLog:
    def __init__(self, stream: TextIO | None = None, path: Path | None = None) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.path = path
        """The file ``stream`` was opened from (None: a stream the log does not own)."""
        self.records: list[Record] = []
        self._second = -1
        self._stamp = ""
        self._quoted: dict[str | bytes, str] = {}
        self._middles: dict[tuple[str, bytes, bytes, int, int], str] = {}

    @classmethod
    def open(cls, path: Path) -> AccessLog:
        """A log appending to ``path`` (created if missing); ``OSError`` if it cannot."""
        return cls(_open_append(path), path)

    def reopen(self) -> None:
        """Flush to the current file, then open ``path`` again; nothing for a plain stream.

        On ``OSError`` the current file stays in use.
        """
        self.flush()
        if self.path is None:
            return
        stream = _open_append(self.path)
        old, self.stream = self.stream, stream
        old.close()

    def add(self, record: Record) -> None:
        self.records.append(record)
        if len(self.records) >= FLUSH_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        records, self.records = self.records, []
        self.stream.write("".join([self.format(r) for r in records]))
        self.stream.flush()

    def format(self, record: Record) -> str:
        """One JSON line; hand-rolled because json.dumps per record is too slow here."""
        when, remote, method, target, status, nbytes, duration, hit = record
        second = int(when)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        key = (remote, method, target, status, nbytes)
        middle = self._middles.get(key)
        if middle is None:
            if len(self._middles) >= QUOTED_CACHE:
                self._middles.clear()
            middle = self._middles[key] = MIDDLE % (
                self._quote(remote), self._quote(method), self._quote(target), status, nbytes
            )  # fmt: skip
        return LINE % (
            self._stamp,
            int((when - second) * 1000),
            middle,
            duration * 1000.0,
            "hit" if hit else "miss",
        )

    def _quote(self, value: str | bytes) -> str:
        """The JSON string for a remote address, a method or (the path of) a target."""
        quoted = self._quoted.get(value)
        if quoted is None:
            if len(self._quoted) >= QUOTED_CACHE:
                self._quoted.clear()
            text = value if isinstance(value, str) else log_path(value)
            quoted = self._quoted[value] = _json(text)
        return quoted


def _open_append(path: Path) -> TextIO:
    return path.open("a", encoding="utf-8", buffering=FILE_BUFFER)


def _json(text: str) -> str:
    if _PLAIN.fullmatch(text) and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def log_path(target: bytes) -> str:
    """The path part of a request target, without query or fragment."""
    path = target.split(b"?", 1)[0].split(b"#", 1)[0]
    return path.decode("latin-1")
