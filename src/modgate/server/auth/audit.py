"""The audit log: every denied request and every read of a private module, as JSON lines.

Each line holds ``time``, ``identity`` (``token:<name>``, ``<issuer>:<subject>``
or ``anonymous``), ``module`` (``path@version``, or the path for list and
latest), ``decision`` (allow, deny, challenge, invalid, rate_limited),
``rule`` (what decided: ``grant:<name>``, ``token-read:<pattern>``,
``no-grant``, ...), ``status``, ``route``, ``remote`` and ``count``. Credentials
are never written: an identity is a name, a failed authentication only its
reason.

Records are collected in memory and written about once a second (and at
shutdown, and whenever ``FLUSH_BATCH`` distinct records are waiting).
Identical records of one such interval (same identity, module@version,
decision, rule, status, route and client address) become one line whose
``count`` says how many requests it stands for and whose ``time`` is the
first of them: every request is accounted for, and a client reading one hot
private zip 50,000 times a second costs one dictionary update per read and
one line per second, not 50,000 lines.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

log = logging.getLogger("modgate.auth")

FLUSH_BATCH = 512
FILE_MODE = 0o600

AuditKey = tuple[str, str, str, str, int, str, str]
"""(identity, module[@version], decision, rule, status, route, remote)."""


def _open_append(path: Path) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1 << 16)


class AuditLog:
    def __init__(self, stream: TextIO | None, path: Path | None = None) -> None:
        self.stream = stream
        self.path = path
        self.pending: dict[AuditKey, list[float]] = {}
        """Key -> [time of the first request, count], since the last flush."""
        self.written = 0

    @classmethod
    def open(cls, destination: str) -> AuditLog:
        """``-`` for stderr, ``off`` for none, else a file appended to (created 0600)."""
        if destination in ("off", "none", ""):
            return cls(None)
        if destination == "-":
            return cls(sys.stderr)
        path = Path(destination).expanduser()
        return cls(_open_append(path), path)

    def reopen(self) -> None:
        """SIGUSR1 (log rotation): write what waits to the old file, then open the path anew.

        On ``OSError`` the old file stays in use. Nothing for stderr or off.
        """
        self.flush()
        if self.path is None or self.stream is None:
            return
        stream = _open_append(self.path)
        old, self.stream = self.stream, stream
        old.close()

    def add(self, key: AuditKey) -> None:
        if self.stream is None:
            return
        found = self.pending.get(key)
        if found is not None:
            found[1] += 1
            return
        self.pending[key] = [time.time(), 1]
        if len(self.pending) >= FLUSH_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending or self.stream is None:
            return
        pending, self.pending = self.pending, {}
        lines = []
        for (identity, module, decision, rule, status, route, remote), (when, n) in sorted(
            pending.items(), key=lambda item: item[1][0]
        ):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
            lines.append(
                json.dumps(
                    {
                        "time": f"{stamp}.{int((when % 1) * 1000):03d}Z",
                        "event": "audit",
                        "identity": identity,
                        "module": module,
                        "decision": decision,
                        "rule": rule,
                        "status": status,
                        "route": route,
                        "remote": remote,
                        "count": int(n),
                    },
                    separators=(",", ":"),
                )
                + "\n"
            )
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
            self.written += len(lines)
        except (OSError, ValueError) as err:
            log.error("audit log: cannot write (%s); %d records dropped", err, len(lines))

    def close(self) -> None:
        self.flush()
        if self.path is not None and self.stream is not None:
            self.stream.close()
            self.stream = None
