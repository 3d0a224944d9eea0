"""What SIGHUP reloads (and SIGUSR1 reopens): named hooks run in every serving process.

SIGHUP never stops modgate. Each serving process (the only one, or every
worker: the master forwards the signal) runs the hooks in order. A hook
reads its files again and swaps the new state in only when all of it is
valid; to refuse, it raises, and its previous state stays in use. One
refused hook does not stop the others, and the failure is logged as one
line naming the hook and the reason (``str`` of the exception), so a
hook's exceptions must never carry a secret.

The TLS certificate pair is registered by ``run_server`` itself. Anything
else that should follow its files on SIGHUP (a tokens file, an auth or
grants configuration) is registered by the composition root
(``cli/serve.py``) and passed to ``run_server(..., reload_hooks=[...])``::

    ReloadHook("tokens file", auth.reload_tokens)

A log file other than the access log (an audit log) registers a hook with
``signal=SIGUSR1`` that reopens it; SIGUSR1 runs those after reopening the
access log, so logrotate can move every log file without copytruncate::

    ReloadHook("audit log", audit.reopen, signal.SIGUSR1)

Hooks run on the event loop between requests, so they should be quick
(reading a few files); a request never sees a half-swapped state.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("modgate.server")


@dataclass(frozen=True, slots=True)
class ReloadHook:
    name: str
    """What is reloaded, as the log line says it: "tls certificate", "tokens file"."""
    reload: Callable[[], None]
    """Reads the files again and swaps the result in; raises to refuse (nothing changes)."""
    signal: signal.Signals = signal.SIGHUP
    """SIGHUP for what is reloaded, SIGUSR1 for a log file that is reopened."""


def run_hooks(hooks: Sequence[ReloadHook], signum: signal.Signals = signal.SIGHUP) -> int:
    """Run the hooks of ``signum``; log each outcome; return how many refused."""
    refused = 0
    for hook in hooks:
        if hook.signal != signum:
            continue
        try:
            hook.reload()
        except Exception as exc:  # any failure keeps the old state; it must not stop serving
            refused += 1
            log.error(
                "reload of the %s refused: %s; the previous one stays in use",
                hook.name,
                exc,
                extra={"event": "reload_refused", "what": hook.name, "pid": os.getpid()},
            )
        else:
            log.info(
                "reloaded the %s",
                hook.name,
                extra={"event": "reloaded", "what": hook.name, "pid": os.getpid()},
            )
    return refused
