"""Lock files that are removed when released, safely for every process that shares them.

A lock is ``flock(LOCK_EX)`` on a file of its own. Leaving the file behind
after each use would let a client create one file per name it can think of,
so the holder removes it when it lets go. Removing a file that others may
have opened needs a rule, because a waiter may already hold a descriptor of
the old file and would get the lock on a file nobody else can find:

- only the holder removes the file, while it still holds the lock, and only
  at the end of its critical section;
- whoever takes the lock then checks that the path still names the file it
  locked (same device and inode); if not (it was removed, or removed and
  created again), it lets go and starts over with the file the path names now.

So at any time at most one process holds a lock on the file the path
names, which is what mutual exclusion needs. A crashed holder leaves a file
that nobody holds: :func:`sweep` removes those under the same rule.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_SUFFIX = ".lock"
FILE_MODE = 0o666


def acquire(path: Path, *, wait: bool = True) -> int | None:
    """An open descriptor holding the lock on ``path`` (created if needed).

    Without ``wait``, None when another holder has it. Raises OSError when
    the file cannot be opened.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _still_named(fd, path):
            return fd
        os.close(fd)  # the holder before us removed it: lock the file the path names now


def release(fd: int, path: Path) -> None:
    """Remove ``path`` (still holding its lock), then let go of the lock."""
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock on ``path`` for the ``with`` block (blocks: keep it off the event loop)."""
    fd = acquire(path)
    assert fd is not None
    try:
        yield
    finally:
        release(fd, path)


def sweep(directory: Path, limit: int | None = None) -> int:
    """Remove the lock files in ``directory`` that nobody holds; returns how many.

    ``limit`` bounds the directory entries looked at.
    """
    removed = 0
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return 0
    with entries:
        for seen, entry in enumerate(entries):
            if limit is not None and seen >= limit:
                break
            if not entry.name.endswith(LOCK_SUFFIX) or not entry.is_file(follow_symlinks=False):
                continue
            path = Path(entry.path)
            try:
                fd = acquire(path, wait=False)
            except OSError:
                continue
            if fd is not None:
                release(fd, path)
                removed += 1
    return removed


def _still_named(fd: int, path: Path) -> bool:
    try:
        named = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (
        stat.S_ISREG(named.st_mode) and named.st_ino == held.st_ino and named.st_dev == held.st_dev
    )
