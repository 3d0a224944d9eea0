"""Whether other processes have the store open, so that a crash's leftovers can go at start.

Every process that opens a store holds a shared ``flock`` on
``_modgate/open.lock`` for as long as it runs (the kernel lets go when the
process dies, however it dies). Opening first tries the lock exclusively
without waiting: when that succeeds, no other process has the store open,
so every temp file in it was left by a process that is gone and can be
removed at once; the lock is then turned into a shared one. When it fails,
some other process is using the store and only old temp files are removed.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

OPEN_LOCK = "open.lock"
FILE_MODE = 0o666


def hold(state_dir: Path) -> tuple[int, bool]:
    """``(descriptor, alone)``: a shared hold on the store, and whether nobody else had one.

    The descriptor stays open for the life of the process (or until
    :func:`let_go`). Raises OSError when the lock file cannot be opened.
    """
    fd = os.open(state_dir / OPEN_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd, alone


def let_go(fd: int) -> None:
    os.close(fd)
