"""Structured logs: one JSON object per line on stderr.

Fields: ``time`` (RFC 3339 UTC), ``level``, ``logger``, ``msg``, ``event``
when the call named one, and every other ``extra`` field. Callers never pass
credentials; URLs in logs are the redacted ones.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

QUIET_LIBRARIES = ("httpx", "httpcore")
"""Libraries whose per-request info lines are left out of the log."""

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, (int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


def setup(level: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request it sends at info: one line per upstream fetch, written
    # while the fetch waits. modgate's own events and metrics cover upstream failures;
    # at debug level they are shown.
    quiet = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(quiet)
    logging.captureWarnings(True)
