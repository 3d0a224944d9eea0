"""Whole hot responses in memory files, sent with one ``sendfile`` and no copy.

Writing a 20 kB hot zip with ``writev`` copies it into the socket each time;
``sendfile`` from a file only references its pages. nginx sends headers with
``writev`` and the body with ``sendfile``: two system calls. Here the whole
response (status line, Date, header fields, body) sits in an anonymous
memory file (``memfd_create``), so a hit is a single ``sendfile``.

The Date changes every second. A file in flight may still be referenced by
the socket, so it is never rewritten: a response served in a new second gets
a new file and the old one is closed (the kernel keeps its pages while the
socket needs them). An entry gets its first file on its second hit within a
second, so responses asked for once in a while never pay for one.

Where a directory on a disk filesystem is given (the store's), the files of
the hottest entries (DISK_AFTER_SENDS sends from their previous file, i.e.
within one second) are unnamed files there (``O_TMPFILE``) rather than
shared memory: they stay in the page cache like any file nginx sends, and
``sendfile`` from the page cache costs the kernel less than from shared
memory (measured: the hot 20 kB zip went from 0.95x to 1.00-1.04x of nginx
with ``open_file_cache``). Making one costs more (about 35 us against 6 us
for a memory file, with a tail of a millisecond), which only an entry sent
that often pays back. They have no name, so nothing is left behind, even by
a crash, and a file closed within seconds is never written back to the
disk. Where that directory does not take such files (NFS, a full disk),
memory files are used, and the first failure is logged.

Files are bounded by total bytes; the oldest file is closed first, which,
files being renewed every second, is the least recently used to within a
second. Where ``memfd_create`` is missing or fails, nothing is sent this way
and the connection writes the response from memory as before.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

log = logging.getLogger("modgate.server")

MIN_BODY = 8 * 1024
"""Smaller bodies are written from memory: copying them costs less than the file does."""
DISK_AFTER_SENDS = 256
"""Sends from an entry's file after which its next file is an unnamed page-cache file.

Saving about 0.5 us of kernel time per send against about 35 us more to make
the file, once a second, breaks even near 100 sends a second."""
DEFAULT_BUDGET = 32 * 1024 * 1024
"""Bytes held in memory files at most (the hot set's budget is separate)."""


class Sendable(Protocol):
    """What a hot entry carries for this module (see ``hotcache.HotEntry``)."""

    data: bytes
    body_len: int
    fd: int
    fd_prefix: bytes
    seen_prefix: bytes
    sends: int


class MemFiles:
    """The memory files of hot entries, bounded by bytes, the oldest closed first."""

    def __init__(
        self, budget: int = DEFAULT_BUDGET, min_body: int = MIN_BODY, directory: Path | None = None
    ) -> None:
        self.budget = budget
        self.min_body = min_body
        self.directory = directory
        """Where unnamed page-cache files are made (None: shared memory files only)."""
        self.bytes = 0
        self.enabled = budget > 0 and hasattr(os, "memfd_create") and hasattr(os, "sendfile")
        self._held: OrderedDict[int, Sendable] = OrderedDict()  # id(entry) -> entry

    def __len__(self) -> int:
        return len(self._held)

    def fd_for(self, entry: Sendable, prefix: bytes) -> int:
        """A file holding ``prefix`` + ``entry.data`` for a GET, or -1 to write from memory."""
        if entry.fd_prefix is prefix:
            return entry.fd
        if not self.enabled or entry.body_len < self.min_body:
            return -1
        if entry.seen_prefix is not prefix:
            entry.seen_prefix = prefix  # first hit this second: not worth a file yet
            return -1
        size = len(prefix) + len(entry.data)
        if size > self.budget:
            return -1
        self.release(entry)
        while self.bytes + size > self.budget and self._held:
            _, oldest = self._held.popitem(last=False)
            self._close(oldest)
        disk = entry.sends >= DISK_AFTER_SENDS
        entry.sends = 0
        fd = self._create(prefix, entry.data, disk)
        if fd < 0:
            return -1
        entry.fd, entry.fd_prefix = fd, prefix
        self._held[id(entry)] = entry
        self.bytes += size
        return fd

    def release(self, entry: Sendable) -> None:
        """Close ``entry``'s file, if it has one (it left the hot set, or is being renewed)."""
        if entry.fd >= 0:
            self._held.pop(id(entry), None)
            self._close(entry)

    def close(self) -> None:
        while self._held:
            _, entry = self._held.popitem(last=False)
            self._close(entry)

    def _close(self, entry: Sendable) -> None:
        os.close(entry.fd)
        self.bytes -= len(entry.fd_prefix) + len(entry.data)
        entry.fd, entry.fd_prefix = -1, b""

    def _create(self, prefix: bytes, data: bytes, disk: bool) -> int:
        if disk and self.directory is not None:
            fd = self._unnamed_file()
            if fd >= 0:
                problem = _fill(fd, prefix, data)
                if problem is None:
                    return fd
                # a full disk or a quota: memory files from now on, said once
                self._no_unnamed_files(problem)
        try:
            fd = os.memfd_create("modgate-hot", os.MFD_CLOEXEC)
        except OSError as exc:
            self.enabled = False
            log.warning("memory files unavailable (%s); hot responses are written from memory", exc)
            return -1
        problem = _fill(fd, prefix, data)
        if problem is not None:
            log.warning("could not fill a memory file: %s", problem)
            return -1
        return fd

    def _unnamed_file(self) -> int:
        """An unnamed file in ``directory``, or -1 (and memory files from now on)."""
        assert self.directory is not None
        try:
            return os.open(self.directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._no_unnamed_files(exc.strerror or str(exc))
            return -1

    def _no_unnamed_files(self, problem: str) -> None:
        log.warning(
            "unnamed files unavailable in %s (%s); hot responses use memory files",
            self.directory,
            problem,
        )
        self.directory = None


def _fill(fd: int, prefix: bytes, data: bytes) -> str | None:
    """Write ``prefix`` + ``data`` at the start of ``fd``; on failure close it and say why."""
    try:
        written = os.pwritev(fd, (prefix, data), 0)
        if written == len(prefix) + len(data):
            return None
        problem = f"short write ({written} bytes)"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    os.close(fd)
    return problem
