"""The audit log: every denied request and every read of a private module, as JSON lines.

Each line holds ``time``, ``identity`` (``token:<name>``, ``<issuer>:<subject>``
or ``anonymous``), ``module`` (``path@version``, or the path for list and
latest), ``decision`` (allow, deny, challenge, invalid, rate_limited),
``rule`` (what decided: ``grant:<name>``, ``token-read:<pattern>``,
``no-grant``, ...), ``status``, ``route`` and ``remote``. Credentials are never
written: an identity is a name, a failed authentication only its reason.

Records are collected in memory and written about once a second (and at
shutdown, and whenever ``FLUSH_BATCH`` are waiting), so the private-read path
costs one list append.
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

AuditRecord = tuple[float, str, str, str, str, int, str, str]
"""(wall time, identity, module[@version], decision, rule, status, route, remote)."""


class AuditLog:
    def __init__(self, stream: TextIO | None, path: Path | None = None) -> None:
        self.stream = stream
        self.path = path
        self.records: list[AuditRecord] = []
        self.written = 0

    @classmethod
    def open(cls, destination: str) -> AuditLog:
        """``-`` for stderr, ``off`` for none, else a file appended to (created 0600)."""
        if destination in ("off", "none", ""):
            return cls(None)
        if destination == "-":
            return cls(sys.stderr)
        path = Path(destination).expanduser()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        return cls(os.fdopen(fd, "a", encoding="utf-8", buffering=1 << 16), path)

    def add(self, record: AuditRecord) -> None:
        if self.stream is None:
            return
        self.records.append(record)
        if len(self.records) >= FLUSH_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.records or self.stream is None:
            return
        records, self.records = self.records, []
        lines = []
        for when, identity, module, decision, rule, status, route, remote in records:
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
