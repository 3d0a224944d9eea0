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
(remote, method, target, status, bytes) whose part of the line is; likewise times
(by millisecond) and durations (by microsecond)."""

HEAD = '{"time":"%s.%03dZ",'
TAIL = '"duration_ms":%d.%03d,"cache":"%s"}\n'
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
        """Waiting to be written: always this one list, which the hot path appends to directly."""
        self._second = -1
        self._stamp = ""
        self._quoted: dict[str | bytes, str] = {}
        self._middles: dict[tuple[str, bytes, bytes, int, int], str] = {}
        self._heads: dict[int, str] = {}
        self._tails: dict[bool, dict[int, str]] = {True: {}, False: {}}

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
        # ``records`` stays the same list: the connections' hot path appends to it.
        records = self.records[:]
        self.records.clear()
        self.stream.write("".join(self._render(records)))
        self.stream.flush()

    def format(self, record: Record) -> str:
        """One JSON line."""
        return "".join(self._render([record]))

    def _render(self, records: list[Record]) -> list[str]:
        """The lines of ``records``, in parts.

        Hand-rolled because json.dumps per record is too slow here: each line is
        three remembered strings (the time to the millisecond; the part naming the
        client, request and answer; the duration to the microsecond, the cache
        outcome and the end of the line), so a line costs a few dictionary lookups.
        """
        parts: list[str] = []
        append = parts.append
        heads, middles = self._heads, self._middles
        hit_tails, miss_tails = self._tails[True], self._tails[False]
        for when, remote, method, target, status, nbytes, duration, hit in records:
            millis = int(when * 1000.0)
            head = heads.get(millis)
            if head is None:
                head = self._head(millis)
            key = (remote, method, target, status, nbytes)
            middle = middles.get(key)
            if middle is None:
                middle = self._middle(key)
            micros = int(duration * 1e6 + 0.5)
            tail = (hit_tails if hit else miss_tails).get(micros)
            if tail is None:
                tail = self._tail(micros, hit)
            append(head)
            append(middle)
            append(tail)
        return parts

    def _head(self, millis: int) -> str:
        second, rest = divmod(millis, 1000)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        if len(self._heads) >= QUOTED_CACHE:
            self._heads.clear()
        head = self._heads[millis] = HEAD % (self._stamp, rest)
        return head

    def _middle(self, key: tuple[str, bytes, bytes, int, int]) -> str:
        if len(self._middles) >= QUOTED_CACHE:
            self._middles.clear()
        remote, method, target, status, nbytes = key
        middle = self._middles[key] = MIDDLE % (
            self._quote(remote), self._quote(method), self._quote(target), status, nbytes
        )  # fmt: skip
        return middle

    def _tail(self, micros: int, hit: bool) -> str:
        tails = self._tails[hit]
        if len(tails) >= QUOTED_CACHE:
            tails.clear()
        millis, rest = divmod(micros, 1000)
        tail = tails[micros] = TAIL % (millis, rest, "hit" if hit else "miss")
        return tail

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
