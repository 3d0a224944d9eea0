"""The master process of ``--workers N``: forks the workers, forwards signals, reaps them.

Signals mean the same to the master and to every worker, and the master
handles none of them itself beyond forwarding:

- SIGTERM, SIGINT: graceful stop. Each worker stops accepting, finishes what
  is in flight (up to the grace period), flushes its logs and exits; the
  master waits for all of them, so no worker outlives it and the port is
  free once it has exited.
- SIGHUP: reload (certificates, and whatever hooks are registered).
- SIGUSR1: reopen the access log file (after logrotate moved it).

The handled signals are blocked from just before the first fork until the
master has installed its forwarding handlers, and in each worker until its
event loop has installed its own: a signal sent in between waits instead
of killing a half-started process with the default action. A worker also
asks the kernel for SIGTERM when the master dies (``PR_SET_PDEATHSIG``), so
a master killed with SIGKILL does not leave workers orphaned on the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

log = logging.getLogger("modgate.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
PR_SET_PDEATHSIG = 1
"""prctl option: the signal this process gets when its parent exits (Linux)."""


def block_handled_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)


def unblock_handled_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)


def fork_worker(serve: Callable[[], None]) -> int:
    """Fork a worker that runs ``serve`` and exits; return its pid (in the master).

    Call with the handled signals blocked: the worker's ``serve`` unblocks
    them once its event loop handles them.
    """
    master = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # not the master's forwarding handler
        _stop_with_master(master)
        serve()
    except BaseException:
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)


def _stop_with_master(master: int) -> None:
    """Have the kernel send SIGTERM to this worker when the master dies."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != master:  # the master died before prctl: stop now
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(children: list[int]) -> bool:
    """Forward the handled signals to the workers until all have exited.

    Installs the forwarding handlers, unblocks the signals, and reaps. A
    worker that exits while no stop was asked for is logged. Returns True
    when every worker exited with status 0.
    """
    alive = set(children)
    stopping = False
    clean = True

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in STOP_SIGNALS:
            stopping = True
        log.info(
            "%s: forwarded to %d workers",
            signal.Signals(signum).name,
            len(alive),
            extra={"event": "signal", "signal": signal.Signals(signum).name, "pid": os.getpid()},
        )
        for pid in list(alive):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for sig in HANDLED_SIGNALS:
        signal.signal(sig, forward)
    unblock_handled_signals()
    while alive:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid not in alive:
            continue
        alive.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            clean = False
            log.error(
                "worker %d exited with status %d; %d still serving",
                pid,
                code,
                len(alive),
                extra={"event": "worker_exit", "pid": pid, "status": code},
            )
        elif not stopping:
            log.warning(
                "worker %d exited without being asked to; %d still serving",
                pid,
                len(alive),
                extra={"event": "worker_exit", "pid": pid, "status": code},
            )
    for sig in (signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)  # nothing left to reload or reopen
    return clean
