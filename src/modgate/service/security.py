"""Security events: evidence of tampering, re-tagging or a misbehaving checksum database.

Each one is logged at error level with ``event: security`` and its kind, and
counted in ``modgate_security_events_total{kind}``, so that alerting can
page on any increase. Events never carry key material.
"""

from __future__ import annotations

import logging

from modgate.metrics import Metrics

log = logging.getLogger("modgate.security")

SECURITY_EVENTS = "modgate_security_events_total"

CHECKSUM_MISMATCH = "checksum_mismatch"
"""Fetched content disagrees with the public checksum database."""
RETAGGED = "retagged"
"""A version already in the private log came back with other content."""
STORE_TAMPERED = "store_tampered"
"""A stored zip no longer hashes to what was verified when it was stored."""
DATABASE_MISBEHAVIOR = "sumdb_misbehavior"
"""A checksum database served inconsistent tree heads, tiles or records."""


KINDS = (CHECKSUM_MISMATCH, RETAGGED, STORE_TAMPERED, DATABASE_MISBEHAVIOR)


def declare_security_events(metrics: Metrics) -> None:
    """Export every kind at 0 from the start, so an increase() alert fires on the first event."""
    for kind in KINDS:
        metrics.declare(SECURITY_EVENTS, (("kind", kind),))


def security_event(metrics: Metrics, kind: str, subject: str, detail: str) -> None:
    metrics.inc(SECURITY_EVENTS, (("kind", kind),))
    log.error(
        "security event: %s",
        detail,
        extra={"event": "security", "kind": kind, "subject": subject, "reason": detail},
    )
