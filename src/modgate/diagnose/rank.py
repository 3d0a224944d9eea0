"""Order findings so that the most likely root cause comes first.

Causality decides first. Some failures break the path to modules (TLS, an
unreachable proxy or git host, missing credentials, a full or read-only
disk); others are what a build runs into when it goes on without that path
(a script falls back to ``GOPROXY=direct`` or to a stale ``vendor/``, a
retry asks a different source): a tag that seems not to exist, a 404, an
inconsistent ``vendor/modules.txt``, a missing go.sum line. When a failure of
the first kind shows in the log *before* one of the second, the second is
reported as its consequence and ranked after it, whatever the confidences.

Then confidence decides, then the position in the log (the first failure is
usually the cause of the ones after it). ``proxy-hung`` only explains a job
that was killed while nothing else had failed: a CI timeout after a real
error, or a ``context deadline exceeded`` next to one, is a consequence, so
it is dropped when any other cause was found.
"""

from __future__ import annotations

from collections.abc import Iterable

from modgate.diagnose.causes import CauseId
from modgate.diagnose.finding import DiagnosedFailure

_WEAK = frozenset({CauseId.PROXY_HUNG, CauseId.UNKNOWN})

ROOT_CAUSES = frozenset(
    {
        CauseId.TLS_UNKNOWN_AUTHORITY,
        CauseId.TLS_NAME_MISMATCH,
        CauseId.TLS_PROTOCOL_MISMATCH,
        CauseId.PROXY_UNREACHABLE,
        CauseId.PROXY_AUTH,
        CauseId.GIT_UNREACHABLE,
        CauseId.GIT_AUTH_REQUIRED,
        CauseId.GIT_NOT_INSTALLED,
        CauseId.GOPROXY_OFF,
        CauseId.PRIVATE_BYPASSES_INTERNAL_PROXY,
        CauseId.DISK_FULL,
        CauseId.MODULE_CACHE_NOT_WRITABLE,
    }
)
"""Failures that cut the build off from its modules."""

CONSEQUENCES = frozenset(
    {
        CauseId.UNKNOWN_REVISION,
        CauseId.PROXY_HTTP_ERROR,
        CauseId.INVALID_VERSION_OR_GOMOD,
        CauseId.INCONSISTENT_VENDORING,
        CauseId.MISSING_GOSUM_ENTRY,
        CauseId.GOMOD_NEEDS_UPDATE,
        CauseId.CHECKSUM_MISMATCH,
        CauseId.UNKNOWN,
    }
)
"""Failures a build meets when it goes on (or falls back) after losing that path."""


def _link_causes(found: list[DiagnosedFailure]) -> None:
    """Point each consequence at the first root-cause finding shown before it."""
    roots = sorted((f for f in found if f.cause in ROOT_CAUSES), key=lambda f: f.line)
    for finding in found:
        finding.caused_by = None
        if finding.cause not in CONSEQUENCES:
            continue
        for root in roots:
            if root.line < finding.line:
                finding.caused_by = root
                break


def rank(findings: Iterable[DiagnosedFailure]) -> list[DiagnosedFailure]:
    """``findings`` without the ones other findings explain, root causes first."""
    found = list(findings)
    if any(finding.cause not in _WEAK for finding in found):
        found = [finding for finding in found if finding.cause is not CauseId.PROXY_HUNG]
    _link_causes(found)
    return sorted(
        found,
        key=lambda finding: (
            finding.caused_by is not None,
            -round(finding.confidence, 2),
            finding.line,
        ),
    )
